/**
 * What the Hub says about a repo and its files, read the way
 * huggingface_hub reads it:
 *
 * - a file: `HEAD {endpoint}/{repo}/resolve/{revision}/{path}` with
 *   `Accept-Encoding: identity`, not following an absolute redirect (the
 *   CDN); commit from `X-Repo-Commit`, etag from `X-Linked-Etag` (the LFS
 *   sha256) or `ETag` (git sha1), size from `X-Linked-Size` or
 *   `Content-Length`, download location from `Location`.
 * - the file list: `GET {endpoint}/api/models/{repo}/revision/{revision}`
 *   with `blobs=true`: `sha` and `siblings[].rfilename` / `size`.
 *
 * Every name that comes back is checked before it is used as a path.
 *
 * @example
 * ```ts
 * import { fileUrl } from "./metadata.ts";
 * console.log(fileUrl("https://huggingface.co", "owner/name", "main", "unet/config.json"));
 * // https://huggingface.co/owner/name/resolve/main/unet/config.json
 * ```
 *
 * @module
 */

import { HubError } from "../errors.ts";
import { type HubConnection, hubFetch } from "./http.ts";
import { checkCommit, checkEtag, normalizeRepoPath } from "./paths.ts";
import { type RequestSubject, statusError } from "./status.ts";

/** A file's metadata at a revision. */
export interface FileMetadata {
  /** The commit the revision resolved to. */
  commit: string;
  /** The blob name: LFS sha256 or git sha1 (lowercase hex). */
  etag: string;
  /** The file size in bytes. */
  size: number;
  /** Where to download it. */
  location: string;
  /** Whether `location` is a redirect target (a CDN): it must not get the token. */
  redirected: boolean;
}

/** One file in a repo listing. */
export interface RepoFile {
  /** Repo-relative path, `/`-separated. */
  path: string;
  /** Size in bytes, when known. */
  size?: number;
}

/** A repo's files at one commit. */
export interface RepoListing {
  /** The commit the revision resolved to. */
  commit: string;
  /** The files, sorted by path. */
  files: RepoFile[];
}

/**
 * The `resolve` URL of a file (revision and path segments URL-encoded).
 *
 * @example
 * ```ts
 * import { fileUrl } from "./metadata.ts";
 * console.log(fileUrl("http://h", "a/b", "refs/pr/1", "x y.json")); // http://h/a/b/resolve/refs%2Fpr%2F1/x%20y.json
 * ```
 */
export function fileUrl(endpoint: string, repoId: string, revision: string, path: string): string {
  const encoded = path.split("/").map(encodeURIComponent).join("/");
  return `${endpoint}/${repoId}/resolve/${encodeURIComponent(revision)}/${encoded}`;
}

/** Strips the quotes (and a weak `W/` prefix) the HTTP spec puts around an etag. */
function normalizeEtag(etag: string): string {
  return etag.replace(/^W\//, "").replace(/^"|"$/g, "");
}

/**
 * Reads a file's metadata with a `HEAD` request.
 *
 * @example
 * ```ts
 * import { fetchFileMetadata } from "./metadata.ts";
 * const meta = await fetchFileMetadata({ endpoint: "https://huggingface.co", timeoutMs: 10_000 }, {
 *   repoId: "google/ddpm-cifar10-32", revision: "main", file: "model_index.json",
 * });
 * console.log(meta.commit, meta.size);
 * ```
 */
export async function fetchFileMetadata(
  connection: HubConnection,
  subject: Required<RequestSubject>,
): Promise<FileMetadata> {
  const { repoId, revision, file } = subject;
  const url = fileUrl(connection.endpoint, repoId, revision, file);
  const response = await hubFetch(connection, url, {
    method: "HEAD",
    headers: { "Accept-Encoding": "identity" },
    stopAtAbsoluteRedirect: true,
  });
  try {
    if (response.status >= 400) throw statusError(response.response, subject);
    const headers = response.headers;
    const commit = headers.get("X-Repo-Commit");
    const etag = headers.get("X-Linked-Etag") ?? headers.get("ETag");
    const size = Number(headers.get("X-Linked-Size") ?? headers.get("Content-Length") ?? NaN);
    if (commit === null || etag === null || !Number.isSafeInteger(size) || size < 0) {
      throw new HubError(
        `the server at ${connection.endpoint} did not send X-Repo-Commit, ETag and a size for ` +
          `${repoId}; is HF_ENDPOINT a Hugging Face Hub?`,
        { file, status: response.status },
      );
    }
    const location = headers.get("Location");
    return {
      commit: checkCommit(commit),
      etag: checkEtag(normalizeEtag(etag)),
      size,
      location: location === null ? response.url : new URL(location, response.url).href,
      redirected: location !== null,
    };
  } finally {
    await response.close();
  }
}

interface ApiModelInfo {
  sha?: unknown;
  siblings?: { rfilename?: unknown; size?: unknown }[];
}

/**
 * Lists a repo's files at a revision with the model-info API.
 *
 * @example
 * ```ts
 * import { fetchRepoListing } from "./metadata.ts";
 * const listing = await fetchRepoListing({ endpoint: "https://huggingface.co", timeoutMs: 10_000 }, {
 *   repoId: "google/ddpm-cifar10-32", revision: "main",
 * });
 * console.log(listing.commit, listing.files.map((f) => f.path));
 * ```
 */
export async function fetchRepoListing(
  connection: HubConnection,
  subject: RequestSubject,
): Promise<RepoListing> {
  const { repoId, revision } = subject;
  const url = `${connection.endpoint}/api/models/${repoId}/revision/${
    encodeURIComponent(revision)
  }?blobs=true`;
  const response = await hubFetch(connection, url);
  try {
    if (response.status >= 300) throw statusError(response.response, subject);
    const info = await response.json() as ApiModelInfo;
    if (typeof info.sha !== "string" || !Array.isArray(info.siblings)) {
      throw new HubError(`the model-info API of ${connection.endpoint} sent no sha/siblings`, {
        file: repoId,
      });
    }
    const files = info.siblings.map((sibling): RepoFile => {
      if (typeof sibling.rfilename !== "string") {
        throw new HubError(`a sibling of ${repoId} has no rfilename`, { file: repoId });
      }
      const path = normalizeRepoPath(sibling.rfilename);
      return typeof sibling.size === "number" ? { path, size: sibling.size } : { path };
    });
    return { commit: checkCommit(info.sha), files: files.sort((a, b) => cmp(a.path, b.path)) };
  } finally {
    await response.close();
  }
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
