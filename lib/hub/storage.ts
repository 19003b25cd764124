/**
 * The storage the Hub client caches into, as an interface so the download
 * logic never touches a file system itself. `fs_storage.ts` is the
 * Hugging Face cache on disk (shared with Python); a browser backend (Cache
 * API or OPFS) can implement the same methods with `repoId`, `commit`,
 * `path` and `etag` as keys.
 *
 * Contract: a blob becomes visible only through {@link BlobWriter.commit},
 * after the caller has checked its size and digest; a snapshot entry only
 * through {@link HubStorage.linkFile}, after its blob is visible. So a reader
 * that finds a snapshot file can trust it is complete.
 *
 * @example
 * ```ts
 * import type { HubStorage } from "./storage.ts";
 * async function cachedCommit(storage: HubStorage, repo: string): Promise<string | undefined> {
 *   return await storage.readRef(repo, "main");
 * }
 * ```
 *
 * @module
 */

/** A blob being written: invisible to readers until {@link BlobWriter.commit}. */
export interface BlobWriter {
  /** Bytes written so far. */
  readonly size: number;
  /** Appends a chunk. */
  write(chunk: Uint8Array): Promise<void>;
  /** Drops everything written (the server restarted the body from byte 0). */
  reset(): Promise<void>;
  /** Lowercase hex sha256 of the bytes written so far. */
  sha256(): Promise<string>;
  /** Publishes the blob under its etag; the writer is finished. */
  commit(): Promise<void>;
  /** Discards the partial blob; the writer is finished. Never throws. */
  abort(): Promise<void>;
}

/** Where Hub files are cached and how local model folders are read. */
export interface HubStorage {
  /** A human-readable location of the cache, for error messages. */
  readonly location: string;
  /** Whether `path` is an existing local directory (a model folder used as is). */
  isDirectory(path: string): Promise<boolean>;
  /**
   * The files under a folder (a local model folder or a {@link snapshotDir}),
   * as sorted `/`-joined relative paths, skipping hidden folders such as
   * `.git`; empty when the folder does not exist.
   */
  listFolder(dir: string): Promise<string[]>;
  /** The text of a small local file (the token file), or `undefined` if it does not exist. */
  readTextFile(path: string): Promise<string | undefined>;
  /** The commit a branch or tag last resolved to, or `undefined`. */
  readRef(repoId: string, revision: string): Promise<string | undefined>;
  /** Records that `revision` resolved to `commit`. */
  writeRef(repoId: string, revision: string, commit: string): Promise<void>;
  /** The folder (or base URL) under which a snapshot's files can be read. */
  snapshotDir(repoId: string, commit: string): string;
  /** Whether a snapshot holds `path` (a complete file). */
  hasFile(repoId: string, commit: string, path: string): Promise<boolean>;
  /** Whether a complete blob with this etag is stored. */
  hasBlob(repoId: string, etag: string): Promise<boolean>;
  /** Starts writing the blob `etag`. */
  createBlob(repoId: string, etag: string): Promise<BlobWriter>;
  /** Makes `path` in snapshot `commit` point at blob `etag` (replacing any old entry). */
  linkFile(repoId: string, commit: string, path: string, etag: string): Promise<void>;
}
