/**
 * Reading model files by "path": a local path (Deno, at call time) or an
 * `http(s)://` URL (any runtime with `fetch`; in a browser the responses are
 * kept in the Cache API store `diffusers-tfjs`, so a model downloads once).
 * Nothing here touches `Deno` at module load, so pages can import it.
 *
 * @example
 * ```ts
 * import { readText } from "./files.ts";
 * const index = await readText("http://127.0.0.1:8000/models/ddim_tiny/model_index.json");
 * ```
 *
 * @module
 */

import { NotFoundError } from "./errors.ts";
import { bytesSource } from "./weights/byte_source.ts";
import { folderWeightFiles, type WeightFiles } from "./weights/weight_files.ts";
import type { TokenizerSource } from "./tokenizers/files.ts";
import type { ProgressCallback } from "./hub/download.ts";

/** The Cache API store that keeps fetched model files in a browser. */
export const CACHE_NAME = "diffusers-tfjs";

/**
 * True when `path` is an `http://` or `https://` URL rather than a local path.
 *
 * @example
 * ```ts
 * import { isUrl } from "./files.ts";
 * isUrl("https://huggingface.co/x/y/resolve/main/model_index.json"); // true
 * isUrl("/models/ddim_tiny"); // false
 * ```
 */
export function isUrl(path: string): boolean {
  return /^https?:\/\//i.test(path);
}

/**
 * True when `e` says a file is missing: a {@link NotFoundError} (URLs) or
 * Deno's `NotFound` (local paths).
 *
 * @example
 * ```ts
 * import { isNotFound, readText } from "./files.ts";
 * const text = await readText("maybe.json").catch((e) => isNotFound(e) ? undefined : Promise.reject(e));
 * ```
 */
export function isNotFound(e: unknown): boolean {
  if (e instanceof NotFoundError) return true;
  const deno = (globalThis as { Deno?: typeof Deno }).Deno;
  return deno !== undefined && e instanceof deno.errors.NotFound;
}

/** Opens the cache in a browser; undefined where the Cache API is absent (Deno without --location). */
async function openCache(): Promise<Cache | undefined> {
  const store = (globalThis as { caches?: CacheStorage }).caches;
  if (!store) return undefined;
  try {
    return await store.open(CACHE_NAME);
  } catch {
    // Opaque origins and some private modes refuse the Cache API: fetch without it.
    return undefined;
  }
}

/** Reads a response body, reporting progress as it arrives. */
async function readBody(
  response: Response,
  file: string,
  onProgress: ProgressCallback | undefined,
): Promise<Uint8Array<ArrayBuffer>> {
  if (!onProgress || !response.body) return new Uint8Array(await response.arrayBuffer());
  const total = Number(response.headers.get("content-length") ?? 0);
  const chunks: Uint8Array[] = [];
  let loaded = 0;
  for await (const chunk of response.body) {
    chunks.push(chunk);
    loaded += chunk.byteLength;
    onProgress({ file, loaded, total: Math.max(total, loaded) });
  }
  const bytes = new Uint8Array(loaded);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.byteLength;
  }
  return bytes;
}

/** A URL's body, from the cache when it was fetched before; 404 is a NotFoundError. */
async function fetchBytes(
  url: string,
  onProgress?: ProgressCallback,
): Promise<Uint8Array<ArrayBuffer>> {
  const cache = await openCache();
  const hit = await cache?.match(url);
  if (hit) return new Uint8Array(await hit.arrayBuffer());
  const response = await fetch(url);
  if (response.status === 404) {
    await response.body?.cancel();
    throw new NotFoundError("no such file", { file: url });
  }
  if (!response.ok) {
    await response.body?.cancel();
    throw new NotFoundError(`HTTP ${response.status} ${response.statusText}`, { file: url });
  }
  const bytes = await readBody(response, url, onProgress);
  await cache?.put(url, new Response(bytes, { headers: response.headers }));
  return bytes;
}

/**
 * The bytes of a local file or URL (`onProgress` sees a URL's download).
 *
 * @example
 * ```ts
 * import { readBytes } from "./files.ts";
 * const bytes = await readBytes("http://127.0.0.1:8000/models/ddim_tiny/unet/diffusion_pytorch_model.safetensors");
 * ```
 */
export function readBytes(path: string, onProgress?: ProgressCallback): Promise<Uint8Array> {
  return isUrl(path) ? fetchBytes(path, onProgress) : Deno.readFile(path);
}

/**
 * The UTF-8 text of a local file or URL.
 *
 * @example
 * ```ts
 * import { readText } from "./files.ts";
 * const config = JSON.parse(await readText("/models/ddim_tiny/unet/config.json"));
 * ```
 */
export async function readText(path: string): Promise<string> {
  return isUrl(path) ? new TextDecoder().decode(await fetchBytes(path)) : Deno.readTextFile(path);
}

/**
 * True when `path` names a folder. A URL counts as a folder (the base URL of
 * a diffusers model folder): its files are found, or not, when fetched.
 *
 * @example
 * ```ts
 * import { isDirectory } from "./files.ts";
 * await isDirectory("http://127.0.0.1:8000/models/ddim_tiny"); // true
 * ```
 */
export async function isDirectory(path: string): Promise<boolean> {
  if (isUrl(path)) return true;
  try {
    return (await Deno.stat(path)).isDirectory;
  } catch {
    return false;
  }
}

/**
 * The weight files of a model folder: {@link folderWeightFiles} for a local
 * folder, whole-file fetches (cached; `onProgress` sees each download) for a
 * base URL.
 *
 * @example
 * ```ts
 * import { weightFilesAt } from "./files.ts";
 * const files = weightFilesAt("http://127.0.0.1:8000/models/ddim_tiny/unet");
 * console.log(await files.has("diffusion_pytorch_model.safetensors"));
 * ```
 */
export function weightFilesAt(dir: string, onProgress?: ProgressCallback): WeightFiles {
  if (!isUrl(dir)) return folderWeightFiles(dir);
  const base = dir.replace(/\/+$/, "");
  const describe = (name: string): string => `${base}/${name}`;
  return {
    location: base,
    describe,
    async has(name) {
      try {
        await fetchBytes(describe(name), onProgress);
        return true;
      } catch (e) {
        if (e instanceof NotFoundError) return false;
        throw e;
      }
    },
    async open(name) {
      return bytesSource(await fetchBytes(describe(name), onProgress), describe(name));
    },
  };
}

/**
 * A tokenizer folder for `loadTokenizer`: the path itself for a local folder,
 * a fetching reader (missing files are undefined) for a base URL.
 *
 * @example
 * ```ts
 * import { tokenizerSourceAt } from "./files.ts";
 * const source = tokenizerSourceAt("http://127.0.0.1:8000/models/emoji-sd-tiny/tokenizer");
 * ```
 */
export function tokenizerSourceAt(dir: string): TokenizerSource {
  if (!isUrl(dir)) return dir;
  const base = dir.replace(/\/+$/, "");
  return (name) =>
    readText(`${base}/${name}`).catch((e) => {
      if (e instanceof NotFoundError) return undefined;
      throw e;
    });
}
