/**
 * Model id → local files. A local folder is used as is; a Hub id
 * (`owner/name`) is resolved against the Hugging Face Hub (or `HF_ENDPOINT`)
 * into the standard Hugging Face cache, so a cache filled by Python's
 * huggingface_hub / diffusers is reused and the other way round.
 *
 * - Only the files asked for are downloaded: exact paths (`files`), globs
 *   (`allowPatterns`), or, with neither, the whole repo (or `subfolder`).
 * - A second call for exact files already cached makes no request at all
 *   (the cached `refs/<revision>` decides the commit, so a branch that moved
 *   on the Hub is noticed only when a file is missing; pin `revision` to a
 *   commit hash for reproducible runs). A listing (`allowPatterns`, or no
 *   `files`) costs one request.
 * - Offline (`HF_HUB_OFFLINE=1` or `localFilesOnly`) never opens a socket:
 *   files come from the cache by revision, or a `NotInCacheError` says
 *   what to do.
 * - Downloads are verified (size; sha256 for LFS files) and atomic; network
 *   failures are retried with backoff; errors are typed (`NotFoundError`,
 *   `GatedRepoError`, `HubError`, `PathEscapeError` from `errors.ts`).
 * - The token (`token`, `HF_TOKEN`, ...) is sent only to the endpoint, never
 *   to the CDN it redirects to, never logged or cached.
 *
 * Importing this module touches neither `Deno` nor `node:*`; the file
 * system is reached only when a call needs it, through {@link HubStorage}.
 *
 * @example
 * ```ts
 * import { resolveModel } from "./hub.ts";
 * const index = await resolveModel("google/ddpm-cifar10-32", { files: ["model_index.json"] });
 * const unet = await resolveModel("google/ddpm-cifar10-32", {
 *   subfolder: "unet",
 *   files: ["config.json", "diffusion_pytorch_model.safetensors"],
 *   onProgress: ({ file, loaded, total }) => console.error(file, loaded, "/", total),
 * });
 * console.log(index.dir, unet.dir);
 * ```
 *
 * @module
 */

import { ArgumentError, NotFoundError, NotInCacheError } from "./errors.ts";
import { downloadBlob, type ProgressCallback } from "./hub/download.ts";
import { createFsStorage } from "./hub/fs_storage.ts";
import type { HubConnection } from "./hub/http.ts";
import { fetchFileMetadata, fetchRepoListing, type RepoListing } from "./hub/metadata.ts";
import {
  checkRevision,
  COMMIT_HASH,
  isRepoId,
  joinRepoPath,
  normalizeRepoPath,
} from "./hub/paths.ts";
import { matchesAny } from "./hub/patterns.ts";
import { type RetryPolicy, withRetries } from "./hub/retry.ts";
import { findToken, hubEndpoint, hubTimeoutMs, isOffline } from "./hub/settings.ts";
import type { HubStorage } from "./hub/storage.ts";

export type { DownloadProgress, ProgressCallback } from "./hub/download.ts";
export type { RepoFile, RepoListing } from "./hub/metadata.ts";
export type { BlobWriter, HubStorage } from "./hub/storage.ts";
export { createFsStorage } from "./hub/fs_storage.ts";
export { isRepoId } from "./hub/paths.ts";
export { defaultCacheDir } from "./hub/settings.ts";

/** Options shared by every Hub call. */
export interface HubOptions {
  /** Branch, tag or commit hash. Default `"main"`. */
  revision?: string;
  /** Access token; `false` sends none. Default: `HF_TOKEN`, `HF_HUB_TOKEN`, then `$HF_HOME/token`. */
  token?: string | false;
  /** Never use the network (as `HF_HUB_OFFLINE=1`). */
  localFilesOnly?: boolean;
  /** The hub cache folder. Default: `HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`. */
  cacheDir?: string;
  /** The Hub endpoint. Default: `HF_ENDPOINT`, else `https://huggingface.co`. */
  endpoint?: string;
  /** Called as each file downloads (not for files already cached). */
  onProgress?: ProgressCallback;
  /** Idle timeout per request in ms. Default: `HF_HUB_DOWNLOAD_TIMEOUT` s, else 10 s. */
  timeoutMs?: number;
  /** Retries after a dropped connection or a 5xx. Default 5. */
  retries?: number;
  /** First backoff delay in ms (doubling, up to 8 s). Default 500. */
  retryDelayMs?: number;
  /** Where to cache; default the Hugging Face cache on disk ({@link createFsStorage}). */
  storage?: HubStorage;
}

/** What {@link resolveModel} should make available. */
export interface ResolveOptions extends HubOptions {
  /** A folder inside the model; `files` and `allowPatterns` are relative to it. */
  subfolder?: string;
  /** Exact files to fetch; a missing one is a {@link NotFoundError}. */
  files?: readonly string[];
  /** fnmatch globs (`*.json`, `unet/`) selecting files from the repo listing. */
  allowPatterns?: readonly string[];
  /**
   * Picks files from the listing (paths relative to `subfolder`), e.g. the
   * weight files diffusers would load. Offline, it sees the cached files.
   */
  select?: (files: readonly string[]) => readonly string[];
}

/** A model made available locally. */
export interface ResolvedModel {
  /** The model folder: the local folder, or the cache's `snapshots/<commit>`. */
  root: string;
  /** `root`, plus `subfolder` when one was given: where `files` are. */
  dir: string;
  /** The resolved files, relative to `dir`, sorted. */
  files: string[];
  /** The Hub id, when the model came from the Hub. */
  repoId?: string;
  /** The commit the revision resolved to, when the model came from the Hub. */
  commit?: string;
}

const OFFLINE_HINT = "offline mode is on (HF_HUB_OFFLINE=1 or localFilesOnly): download it " +
  "once with network access, or pass a local model folder";

/**
 * Makes a model's files available locally and says where they are. A local
 * folder is used as is (no network); a Hub id is resolved into the cache.
 *
 * @example
 * ```ts
 * import { resolveModel } from "./hub.ts";
 * const model = await resolveModel("google/ddpm-cifar10-32", {
 *   subfolder: "scheduler",
 *   files: ["scheduler_config.json"],
 *   revision: "main",
 * });
 * console.log(`${model.dir}/${model.files[0]}`);
 * ```
 */
export async function resolveModel(
  idOrDir: string,
  options: ResolveOptions = {},
): Promise<ResolvedModel> {
  const storage = options.storage ?? createFsStorage(options.cacheDir);
  const sub = normalizeRepoPath(options.subfolder ?? "", "subfolder");
  const exact = (options.files ?? []).map((file) => joinRepoPath(sub, file));
  if (
    options.files !== undefined && exact.length === 0 && !options.allowPatterns && !options.select
  ) {
    throw new ArgumentError("resolveModel: `files` is empty; list files or leave it out");
  }
  // The files asked for among `available`: the exact ones plus what patterns or `select` pick.
  const select = (available: readonly string[]): string[] => [
    ...new Set([...exact, ...pickFiles(available, sub, options)]),
  ];
  if (await storage.isDirectory(idOrDir)) {
    const available = await storage.listFolder(idOrDir);
    const missing = exact.filter((file) => !available.includes(file));
    if (missing.length > 0) {
      throw new NotFoundError(`not in the local model folder ${idOrDir}`, {
        file: missing.join(", "),
      });
    }
    return result(idOrDir, sub, select(available));
  }
  if (!isRepoId(idOrDir)) {
    throw new NotFoundError(
      `${JSON.stringify(idOrDir)} is neither a local folder nor a Hub model id (owner/name)`,
    );
  }
  return await resolveFromHub(idOrDir, storage, sub, exact, options, select);
}

async function resolveFromHub(
  repoId: string,
  storage: HubStorage,
  sub: string,
  exact: string[],
  options: ResolveOptions,
  select: (available: readonly string[]) => string[],
): Promise<ResolvedModel> {
  const revision = checkRevision(options.revision ?? "main");
  const needsListing = options.files === undefined || options.allowPatterns !== undefined ||
    options.select !== undefined;
  const cached = COMMIT_HASH.test(revision) ? revision : await storage.readRef(repoId, revision);
  const hub = (commit: string, files: string[]): ResolvedModel => ({
    ...result(storage.snapshotDir(repoId, commit), sub, files),
    repoId,
    commit,
  });

  if (isOffline(options.localFilesOnly)) {
    if (cached === undefined) {
      throw new NotInCacheError(
        `${repoId} (revision ${revision}) is not in the Hugging Face cache at ` +
          `${storage.location}; ${OFFLINE_HINT}`,
      );
    }
    const available = await storage.listFolder(storage.snapshotDir(repoId, cached));
    const missing = exact.filter((file) => !available.includes(file));
    const files = select(available);
    if (missing.length > 0 || files.length === 0) {
      throw new NotInCacheError(
        `not in the Hugging Face cache for ${repoId} at revision ${revision} ` +
          `(${storage.location}); ${OFFLINE_HINT}`,
        { file: missing.length > 0 ? missing.join(", ") : sub || repoId },
      );
    }
    return hub(cached, files);
  }
  // Exact files already in the cache for this revision: no request at all.
  if (!needsListing && cached !== undefined && await allCached(storage, repoId, cached, exact)) {
    return hub(cached, exact);
  }

  const connection = await connect(storage, options);
  let commit: string | undefined;
  let wanted = exact;
  if (needsListing) {
    const listing = await withRetries(
      connection,
      repoId,
      () => fetchRepoListing(connection, { repoId, revision }),
    );
    commit = listing.commit;
    wanted = select(listing.files.map((f) => f.path));
  }
  for (const file of wanted) {
    commit = await fetchFile(connection, storage, { repoId, revision, file }, commit, options);
  }
  // Set by the listing, or by the first file: without a listing `exact` is not empty.
  const resolved = commit!;
  if (resolved !== revision) await storage.writeRef(repoId, revision, resolved);
  return hub(resolved, wanted);
}

/**
 * Lists a Hub repo's files at a revision (with sizes when online). Offline,
 * lists the cached snapshot of that revision instead.
 *
 * @example
 * ```ts
 * import { listRepoFiles } from "./hub.ts";
 * const { commit, files } = await listRepoFiles("google/ddpm-cifar10-32");
 * console.log(commit, files.filter((f) => f.path.endsWith(".safetensors")));
 * ```
 */
export async function listRepoFiles(
  repoId: string,
  options: HubOptions = {},
): Promise<RepoListing> {
  if (!isRepoId(repoId)) {
    throw new NotFoundError(`${JSON.stringify(repoId)} is not a Hub model id (owner/name)`);
  }
  const revision = checkRevision(options.revision ?? "main");
  const storage = options.storage ?? createFsStorage(options.cacheDir);
  if (isOffline(options.localFilesOnly)) {
    const commit = COMMIT_HASH.test(revision) ? revision : await storage.readRef(repoId, revision);
    const paths = commit === undefined
      ? []
      : await storage.listFolder(storage.snapshotDir(repoId, commit));
    if (commit === undefined || paths.length === 0) {
      throw new NotInCacheError(
        `${repoId} (revision ${revision}) is not in the Hugging Face cache at ` +
          `${storage.location}; ${OFFLINE_HINT}`,
      );
    }
    return { commit, files: paths.map((path) => ({ path })) };
  }
  const connection = await connect(storage, options);
  return await withRetries(
    connection,
    repoId,
    () => fetchRepoListing(connection, { repoId, revision }),
  );
}

async function connect(
  storage: HubStorage,
  options: HubOptions,
): Promise<HubConnection & RetryPolicy> {
  const token = await findToken(options.token, (path) => storage.readTextFile(path));
  return {
    endpoint: hubEndpoint(options.endpoint),
    ...(token === undefined ? {} : { token }),
    timeoutMs: hubTimeoutMs(options.timeoutMs),
    retries: options.retries ?? 5,
    retryDelayMs: options.retryDelayMs ?? 500,
  };
}

/**
 * Makes one file available in snapshot `commit` (or, before the commit is
 * known, at `subject.revision`) and returns the commit it belongs to.
 */
async function fetchFile(
  connection: HubConnection & RetryPolicy,
  storage: HubStorage,
  subject: { repoId: string; revision: string; file: string },
  commit: string | undefined,
  options: HubOptions,
): Promise<string> {
  const { repoId, file } = subject;
  if (commit !== undefined && await storage.hasFile(repoId, commit, file)) return commit;
  // Once the commit is known, ask for it, not the branch: one consistent snapshot.
  const at = { ...subject, revision: commit ?? subject.revision };
  const meta = await withRetries(
    connection,
    `${repoId}/${file}`,
    () => fetchFileMetadata(connection, at),
  );
  if (!await storage.hasFile(repoId, meta.commit, file)) {
    if (!await storage.hasBlob(repoId, meta.etag)) {
      await downloadBlob(connection, storage, at, meta, options.onProgress);
    }
    await storage.linkFile(repoId, meta.commit, file, meta.etag);
  }
  return meta.commit;
}

async function allCached(
  storage: HubStorage,
  repoId: string,
  commit: string,
  files: readonly string[],
): Promise<boolean> {
  for (const file of files) {
    if (!await storage.hasFile(repoId, commit, file)) return false;
  }
  return true;
}

/**
 * The files of `available` (repo-relative) that `allowPatterns` or
 * `select` pick under `sub`; everything under `sub` when the options name
 * no files at all.
 */
function pickFiles(available: readonly string[], sub: string, options: ResolveOptions): string[] {
  const prefix = sub === "" ? "" : `${sub}/`;
  const under = available.filter((path) => path.startsWith(prefix));
  const { files, allowPatterns, select } = options;
  if (files === undefined && allowPatterns === undefined && select === undefined) return under;
  const picked = new Set(select?.(under.map((path) => path.slice(prefix.length))));
  return under.filter((path) => {
    const rel = path.slice(prefix.length);
    return picked.has(rel) || (allowPatterns !== undefined && matchesAny(rel, allowPatterns));
  });
}

function result(root: string, sub: string, files: readonly string[]): ResolvedModel {
  const prefix = sub === "" ? "" : `${sub}/`;
  return {
    root,
    dir: sub === "" ? root : `${root}/${sub}`,
    files: files.map((file) => file.slice(prefix.length)).sort(),
  };
}
