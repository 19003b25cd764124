/**
 * Random-access byte sources: the one interface the weight readers use, so
 * a checkpoint can be read from bytes already in memory (a browser `fetch`)
 * or by range from a local file without loading all of it (a 3.4 GB
 * Stable Diffusion UNet). File access uses Deno at call time only, so
 * importing this module is safe in a browser.
 *
 * @example
 * ```ts
 * import { bytesSource } from "./byte_source.ts";
 * const src = bytesSource(new Uint8Array([1, 2, 3, 4]));
 * console.log(await src.read(1, 2)); // Uint8Array [2, 3]
 * ```
 *
 * @module
 */

import { WeightsError } from "../errors.ts";

/** Bytes that can be read by range. */
export interface ByteSource {
  /** Total size in bytes. */
  readonly size: number;
  /**
   * Reads exactly `length` bytes at `offset` (the caller has checked the
   * range against `size`). The result may be a view that must not be written.
   */
  read(offset: number, length: number): Promise<Uint8Array>;
  /** Releases the underlying file, if any; later reads fail. */
  close(): void;
}

/** A read outside the source is a bug in the caller's validation, reported as bad input anyway. */
function checkRange(offset: number, length: number, size: number, file: string): void {
  if (
    !Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 ||
    offset + length > size
  ) {
    throw new WeightsError(
      `read of ${length} bytes at ${offset} is outside the ${size}-byte file`,
      {
        file,
      },
    );
  }
}

/**
 * A source over bytes in memory; reads are zero-copy views. `file` names
 * the bytes in error messages.
 *
 * @example
 * ```ts
 * import { bytesSource } from "./byte_source.ts";
 * console.log(bytesSource(new Uint8Array(10)).size); // 10
 * ```
 */
export function bytesSource(bytes: Uint8Array, file = "<memory>"): ByteSource {
  return {
    size: bytes.byteLength,
    read(offset, length) {
      checkRange(offset, length, bytes.byteLength, file);
      return Promise.resolve(bytes.subarray(offset, offset + length));
    },
    close: () => {},
  };
}

/**
 * Opens a local file as a source (Deno only). Reads are serialised, since a
 * seek and the read after it must not interleave with another read's.
 *
 * @example
 * ```ts
 * import { fileSource } from "./byte_source.ts";
 * const src = await fileSource("/tmp/x.safetensors");
 * try {
 *   console.log(await src.read(0, 8));
 * } finally {
 *   src.close();
 * }
 * ```
 */
export async function fileSource(path: string): Promise<ByteSource> {
  const file = await Deno.open(path, { read: true });
  let size: number;
  try {
    size = (await file.stat()).size;
  } catch (e) {
    file.close();
    throw e;
  }
  let queue: Promise<unknown> = Promise.resolve();
  const readAt = async (offset: number, length: number): Promise<Uint8Array> => {
    checkRange(offset, length, size, path);
    const out = new Uint8Array(length);
    await file.seek(offset, Deno.SeekMode.Start);
    let done = 0;
    while (done < length) {
      const n = await file.read(out.subarray(done));
      if (n === null) {
        throw new WeightsError(`file ended at byte ${offset + done} (reading ${length} bytes)`, {
          file: path,
        });
      }
      done += n;
    }
    return out;
  };
  return {
    size,
    read(offset, length) {
      const result = queue.then(() => readAt(offset, length));
      queue = result.catch(() => {});
      return result;
    },
    close: () => file.close(),
  };
}
