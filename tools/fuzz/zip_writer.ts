/**
 * Writes minimal zip archives (stored or already-deflated entries, no data
 * descriptors, no ZIP64), enough to rebuild a PyTorch checkpoint around a
 * mutated pickle with correct CRCs, so pickle mutations reach the unpickler
 * instead of stopping at the zip's CRC check.
 *
 * @example
 * ```ts
 * import { writeZip } from "./zip_writer.ts";
 * const zip = writeZip([{ name: "archive/data.pkl", data: new Uint8Array([0x80, 2, 0x4e, 0x2e]) }]);
 * console.log(zip[0] === 0x50); // true ("PK")
 * ```
 *
 * @module
 */

import { crc32 } from "../../lib/weights/zip.ts";

/** One archive member: its uncompressed bytes and, to store it deflated, the raw deflate stream. */
export interface ZipMember {
  /** Path inside the archive. */
  name: string;
  /** Uncompressed contents (for the CRC and size). */
  data: Uint8Array;
  /** When given, written with method 8 instead of stored. */
  deflated?: Uint8Array;
}

class Writer {
  readonly bytes: number[] = [];
  u16(v: number): this {
    this.bytes.push(v & 0xff, (v >>> 8) & 0xff);
    return this;
  }
  u32(v: number): this {
    return this.u16(v & 0xffff).u16(v >>> 16);
  }
  raw(b: Uint8Array): this {
    for (const x of b) this.bytes.push(x);
    return this;
  }
}

/**
 * The archive holding `members`, in order.
 *
 * @example
 * ```ts
 * import { writeZip } from "./zip_writer.ts";
 * console.log(writeZip([]).length); // 22: just the end record
 * ```
 */
export function writeZip(members: readonly ZipMember[]): Uint8Array {
  const w = new Writer();
  const central = new Writer();
  for (const m of members) {
    const name = new TextEncoder().encode(m.name);
    const body = m.deflated ?? m.data;
    const method = m.deflated ? 8 : 0;
    const crc = crc32(m.data);
    const offset = w.bytes.length;
    w.u32(0x04034b50).u16(20).u16(0).u16(method).u16(0).u16(0).u32(crc).u32(body.length)
      .u32(m.data.length).u16(name.length).u16(0).raw(name).raw(body);
    central.u32(0x02014b50).u16(20).u16(20).u16(0).u16(method).u16(0).u16(0).u32(crc)
      .u32(body.length).u32(m.data.length).u16(name.length).u16(0).u16(0).u16(0).u16(0)
      .u32(0).u32(offset).raw(name);
  }
  const dirOffset = w.bytes.length;
  w.bytes.push(...central.bytes);
  w.u32(0x06054b50).u16(0).u16(0).u16(members.length).u16(members.length)
    .u32(central.bytes.length).u32(dirOffset).u16(0);
  return new Uint8Array(w.bytes);
}

/**
 * Raw deflate of `data` (for seeds; asynchronous, so not used per input).
 *
 * @example
 * ```ts
 * import { deflateRaw } from "./zip_writer.ts";
 * console.log((await deflateRaw(new Uint8Array(1000))).length < 1000); // true
 * ```
 */
export async function deflateRaw(data: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([data as Uint8Array<ArrayBuffer>]).stream()
    .pipeThrough(new CompressionStream("deflate-raw"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}
