/**
 * The Hugging Face cache on disk, in huggingface_hub's layout, so a cache
 * filled by Python is reused here and the other way round:
 *
 * ```text
 * <cacheDir>/models--owner--name/
 *   blobs/<etag>                       file contents (git sha1 or LFS sha256)
 *   refs/<revision>                    the commit a branch or tag resolved to
 *   snapshots/<commit>/<path>          -> ../../blobs/<etag> (relative symlink)
 * ```
 *
 * Blobs are written to `blobs/<etag>.<random>.incomplete`, flushed, and
 * renamed only after the caller verified them; snapshot links are made only
 * to complete blobs. Deno only, but `Deno.*` and `node:crypto` are reached
 * at run time, so importing this module is safe in a browser.
 *
 * @example
 * ```ts
 * import { createFsStorage } from "./fs_storage.ts";
 * const storage = createFsStorage("/tmp/hf-cache");
 * console.log(await storage.readRef("google/ddpm-cifar10-32", "main"));
 * ```
 *
 * @module
 */

import { HubError } from "../errors.ts";
import { writeTextFileAtomic } from "../fs.ts";
import { defaultCacheDir } from "./settings.ts";
import {
  blobLinkTarget,
  checkCommit,
  checkEtag,
  checkRevision,
  COMMIT_HASH,
  normalizeRepoPath,
  repoFolderName,
} from "./paths.ts";
import type { BlobWriter, HubStorage } from "./storage.ts";

/**
 * A {@link HubStorage} over the Hugging Face cache folder `cacheDir`
 * (default: {@link defaultCacheDir}, looked up on first use; created on
 * first write).
 *
 * @example
 * ```ts
 * import { createFsStorage } from "./fs_storage.ts";
 * const storage = createFsStorage(`${Deno.env.get("HOME")}/.cache/huggingface/hub`);
 * console.log(storage.location);
 * ```
 */
export function createFsStorage(cacheDir?: string): HubStorage {
  // Looked up lazily: a local model folder needs no cache (nor a HOME).
  const root = (): string => cacheDir ??= defaultCacheDir();
  const repoDir = (repoId: string): string => `${root()}/${repoFolderName(repoId)}`;
  const snapshotDir = (repoId: string, commit: string): string =>
    `${repoDir(repoId)}/snapshots/${checkCommit(commit)}`;
  const blobPath = (repoId: string, etag: string): string =>
    `${repoDir(repoId)}/blobs/${checkEtag(etag)}`;
  const refPath = (repoId: string, revision: string): string =>
    `${repoDir(repoId)}/refs/${checkRevision(revision)}`;
  const readRef = async (repoId: string, revision: string): Promise<string | undefined> => {
    let text: string;
    try {
      text = await Deno.readTextFile(refPath(repoId, revision));
    } catch (e) {
      if (
        e instanceof Deno.errors.NotFound || e instanceof Deno.errors.IsADirectory ||
        e instanceof Deno.errors.NotADirectory
      ) return undefined;
      throw e;
    }
    const commit = text.trim();
    return COMMIT_HASH.test(commit) ? commit : undefined;
  };

  return {
    get location() {
      return root();
    },
    async isDirectory(path) {
      return (await statOrUndefined(path))?.isDirectory ?? false;
    },
    async listFolder(dir) {
      const files: string[] = [];
      await walk(dir, "", files);
      return files.sort();
    },
    async readTextFile(path) {
      try {
        return await Deno.readTextFile(path);
      } catch (e) {
        if (e instanceof Deno.errors.NotFound) return undefined;
        throw e;
      }
    },
    readRef,
    async writeRef(repoId, revision, commit) {
      const path = refPath(repoId, revision);
      // Like huggingface_hub, write only on change: a read-only shared cache stays usable.
      if (await readRef(repoId, revision) === checkCommit(commit)) return;
      await inCache(root(), async () => {
        await Deno.mkdir(parentOf(path), { recursive: true });
        await writeTextFileAtomic(path, commit);
      });
    },
    snapshotDir,
    async hasFile(repoId, commit, path) {
      const full = `${snapshotDir(repoId, commit)}/${normalizeRepoPath(path)}`;
      return (await statOrUndefined(full))?.isFile ?? false;
    },
    async hasBlob(repoId, etag) {
      return (await statOrUndefined(blobPath(repoId, etag)))?.isFile ?? false;
    },
    createBlob(repoId, etag) {
      const path = blobPath(repoId, etag);
      return inCache(root(), () => openBlobWriter(path, root()));
    },
    linkFile(repoId, commit, path, etag) {
      const clean = normalizeRepoPath(path);
      const link = `${snapshotDir(repoId, commit)}/${clean}`;
      const target = blobLinkTarget(clean, checkEtag(etag));
      return inCache(root(), async () => {
        await Deno.mkdir(parentOf(link), { recursive: true });
        await replaceSymlink(target, link);
      });
    },
  };
}

function parentOf(path: string): string {
  return path.slice(0, path.lastIndexOf("/"));
}

async function statOrUndefined(path: string): Promise<Deno.FileInfo | undefined> {
  try {
    return await Deno.stat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) {
      return undefined;
    }
    throw e;
  }
}

/** Runs a cache write, turning file-system failures into one clear {@link HubError}. */
async function inCache<T>(cacheDir: string, write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (e) {
    if (e instanceof HubError) throw e;
    throw new HubError(
      `cannot write to the Hugging Face cache at ${cacheDir} (${(e as Error).message}); ` +
        "set HF_HUB_CACHE (or pass cacheDir) to a writable folder",
      { cause: e },
    );
  }
}

/** Collects the files under `dir` (following snapshot symlinks; not hidden folders). */
async function walk(dir: string, prefix: string, out: string[], depth = 0): Promise<void> {
  // A symlink loop in a local folder must not recurse forever.
  if (depth > 32) throw new HubError(`folders nested too deeply (a symlink loop?) at ${dir}`);
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(dir));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return;
    throw e;
  }
  for (const entry of entries) {
    const rel = prefix + entry.name;
    const info = entry.isSymlink ? await statOrUndefined(`${dir}/${entry.name}`) : entry;
    if (info?.isDirectory) {
      if (!entry.name.startsWith(".")) {
        await walk(`${dir}/${entry.name}`, `${rel}/`, out, depth + 1);
      }
    } else if (info?.isFile) out.push(rel);
  }
}

/** Points `link` at `target`, tolerating a concurrent writer that made the same link. */
async function replaceSymlink(target: string, link: string): Promise<void> {
  try {
    await Deno.symlink(target, link, { type: "file" });
  } catch (e) {
    if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
    if (await Deno.readLink(link).catch(() => undefined) === target) return;
    await Deno.remove(link);
    await Deno.symlink(target, link, { type: "file" });
  }
}

async function openBlobWriter(finalPath: string, cacheDir: string): Promise<BlobWriter> {
  const { createHash } = await import("node:crypto");
  await Deno.mkdir(parentOf(finalPath), { recursive: true });
  // A unique name per writer: two processes downloading the same blob never share a file.
  const tmp = `${finalPath}.${crypto.randomUUID().slice(0, 8)}.incomplete`;
  const file = await Deno.open(tmp, { write: true, createNew: true });
  let hash = createHash("sha256");
  let size = 0;
  let open = true;
  const close = (): void => {
    if (open) file.close();
    open = false;
  };
  return {
    get size() {
      return size;
    },
    write(chunk) {
      return inCache(cacheDir, async () => {
        for (let done = 0; done < chunk.byteLength;) {
          done += await file.write(chunk.subarray(done));
        }
        hash.update(chunk);
        size += chunk.byteLength;
      });
    },
    reset() {
      return inCache(cacheDir, async () => {
        await file.truncate(0);
        await file.seek(0, Deno.SeekMode.Start);
        hash = createHash("sha256");
        size = 0;
      });
    },
    sha256() {
      return Promise.resolve(hash.copy().digest("hex"));
    },
    commit() {
      return inCache(cacheDir, async () => {
        try {
          await file.syncData();
          close();
          await Deno.rename(tmp, finalPath);
        } catch (e) {
          close();
          await Deno.remove(tmp).catch(() => {});
          throw e;
        }
      });
    },
    async abort() {
      close();
      await Deno.remove(tmp).catch(() => {});
    },
  };
}
