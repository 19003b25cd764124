/**
 * File writes that never leave a half-written file: data goes to a unique
 * temporary name beside the target, is flushed, and is renamed over the
 * target only when complete. Deno only; called at run time, so importing
 * this module is safe in a browser.
 *
 * @example
 * ```ts
 * import { writeFileAtomic } from "./fs.ts";
 * await writeFileAtomic("/tmp/out.bin", new Uint8Array([1, 2, 3]));
 * ```
 *
 * @module
 */

/**
 * Writes `data` to `path` atomically (temp file + fsync + rename). On any
 * error the temporary file is removed and the target is left as it was.
 *
 * @example
 * ```ts
 * import { writeFileAtomic } from "./fs.ts";
 * await writeFileAtomic("/tmp/x.safetensors", new Uint8Array(8));
 * ```
 */
export async function writeFileAtomic(path: string, data: Uint8Array): Promise<void> {
  const tmp = `${path}.${crypto.randomUUID().slice(0, 8)}.tmp`;
  try {
    const file = await Deno.open(tmp, { write: true, createNew: true });
    try {
      let written = 0;
      while (written < data.byteLength) written += await file.write(data.subarray(written));
      await file.sync();
    } finally {
      file.close();
    }
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}

/**
 * Writes UTF-8 text to `path` atomically.
 *
 * @example
 * ```ts
 * import { writeTextFileAtomic } from "./fs.ts";
 * await writeTextFileAtomic("/tmp/config.json", "{}");
 * ```
 */
export function writeTextFileAtomic(path: string, text: string): Promise<void> {
  return writeFileAtomic(path, new TextEncoder().encode(text));
}
