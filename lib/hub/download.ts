/**
 * Downloads one blob into a {@link HubStorage}: streams it into a
 * {@link BlobWriter}, resumes with a `Range` request after a dropped
 * connection, checks the size (and the sha256 when the etag is one, i.e. for
 * LFS files), and only then commits it. Any failure discards the partial
 * blob, so nothing incomplete ever becomes visible.
 *
 * @example
 * ```ts
 * import { downloadBlob } from "./download.ts";
 * import { fetchFileMetadata } from "./metadata.ts";
 * import { createFsStorage } from "./fs_storage.ts";
 * const connection = { endpoint: "https://huggingface.co", timeoutMs: 10_000 };
 * const subject = { repoId: "google/ddpm-cifar10-32", revision: "main", file: "model_index.json" };
 * const meta = await fetchFileMetadata(connection, subject);
 * await downloadBlob({ ...connection, retries: 3, retryDelayMs: 500 }, createFsStorage(), subject, meta);
 * ```
 *
 * @module
 */

import { HubError } from "../errors.ts";
import { type HubConnection, hubFetch, type HubResponse } from "./http.ts";
import type { FileMetadata } from "./metadata.ts";
import { SHA256_HEX } from "./paths.ts";
import { type RetryPolicy, withRetries } from "./retry.ts";
import { type RequestSubject, statusError } from "./status.ts";
import type { BlobWriter, HubStorage } from "./storage.ts";

/** Progress of one file's download. */
export interface DownloadProgress {
  /** The repo-relative path being downloaded. */
  file: string;
  /** Bytes received so far (drops back if the server restarts the body). */
  loaded: number;
  /** The file's size in bytes. */
  total: number;
}

/** Receives {@link DownloadProgress} updates; called often, so keep it cheap. */
export type ProgressCallback = (progress: DownloadProgress) => void;

/**
 * Downloads the blob described by `meta` into `storage` (retrying network
 * failures as `policy` allows), verifies it and commits it.
 *
 * @example
 * ```ts
 * import { downloadBlob } from "./download.ts";
 * import type { HubStorage } from "./storage.ts";
 * declare const storage: HubStorage;
 * await downloadBlob(
 *   { endpoint: "https://huggingface.co", timeoutMs: 10_000, retries: 3, retryDelayMs: 500 },
 *   storage,
 *   { repoId: "a/b", revision: "main", file: "config.json" },
 *   { commit: "0".repeat(40), etag: "1".repeat(40), size: 2, location: "https://huggingface.co/a/b/resolve/main/config.json", redirected: false },
 *   (p) => console.log(p.loaded, p.total),
 * );
 * ```
 */
export async function downloadBlob(
  connection: HubConnection & RetryPolicy,
  storage: HubStorage,
  subject: Required<RequestSubject>,
  meta: FileMetadata,
  onProgress?: ProgressCallback,
): Promise<void> {
  const { repoId, file } = subject;
  const writer = await storage.createBlob(repoId, meta.etag);
  try {
    await withRetries(connection, `${repoId}/${file}`, async () => {
      const resumeAt = writer.size;
      const response = await hubFetch(connection, meta.location, {
        headers: {
          "Accept-Encoding": "identity",
          ...(resumeAt > 0 ? { Range: `bytes=${resumeAt}-` } : {}),
        },
        // The token goes to the Hub's resolve URL, never to the CDN it redirected to.
        auth: !meta.redirected,
      });
      try {
        await receive(response, writer, subject, meta, resumeAt, onProgress);
      } finally {
        await response.close();
      }
    });
    await verify(writer, file, meta);
    await writer.commit();
  } catch (e) {
    await writer.abort();
    throw e;
  }
}

async function receive(
  response: HubResponse,
  writer: BlobWriter,
  subject: Required<RequestSubject>,
  meta: FileMetadata,
  resumeAt: number,
  onProgress?: ProgressCallback,
): Promise<void> {
  if (response.status >= 300) throw statusError(response.response, subject);
  if (response.status === 206) {
    if (rangeStart(response) !== resumeAt) {
      // Not the range we asked for: start over from byte 0 on the next attempt.
      await writer.reset();
      throw new Error(`unexpected Content-Range ${response.headers.get("Content-Range")}`);
    }
  } else if (writer.size > 0) {
    // The server ignored the Range header and sent the whole file.
    await writer.reset();
  }
  onProgress?.({ file: subject.file, loaded: writer.size, total: meta.size });
  for await (const chunk of response.chunks()) {
    await writer.write(chunk);
    if (writer.size > meta.size) {
      throw new HubError(`got more than the expected ${meta.size} bytes`, { file: subject.file });
    }
    onProgress?.({ file: subject.file, loaded: writer.size, total: meta.size });
  }
}

function rangeStart(response: HubResponse): number | undefined {
  const match = /^bytes (\d+)-/.exec(response.headers.get("Content-Range") ?? "");
  return match ? Number(match[1]) : undefined;
}

async function verify(writer: BlobWriter, file: string, meta: FileMetadata): Promise<void> {
  if (writer.size !== meta.size) {
    throw new HubError(
      `size mismatch: expected ${meta.size} bytes, got ${writer.size}; the download was ` +
        "discarded, try again",
      { file },
    );
  }
  if (SHA256_HEX.test(meta.etag)) {
    const digest = await writer.sha256();
    if (digest !== meta.etag) {
      throw new HubError(
        `sha256 mismatch: expected ${meta.etag}, got ${digest}; the download was discarded, ` +
          "try again",
        { file },
      );
    }
  }
}
