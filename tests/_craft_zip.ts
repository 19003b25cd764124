/**
 * Test helper: writes small zip archives laid out like `torch.save`'s
 * (data descriptors, optional ZIP64 records and deflate), and reports where
 * each structure landed so tests can corrupt it precisely.
 *
 * @module
 */

import { crc32 } from "../lib/weights/zip.ts";

/** How to write the archive. */
export interface ZipOptions {
  /** Deflate every entry (default: stored). */
  deflate?: boolean;
  /** Write ZIP64 extra fields (saturated 32-bit fields) and ZIP64 end records, as torch does for big files. */
  zip64?: boolean;
}

/** The archive and the offsets of its structures. */
export interface CraftedZip {
  bytes: Uint8Array;
  /** Offset of each entry's local header. */
  local: number[];
  /** Offset of each entry's central directory header. */
  central: number[];
  /** Offset of the end-of-central-directory record. */
  eocd: number;
}

async function deflate(data: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([data as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
    new CompressionStream("deflate-raw"),
  );
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

class Out {
  parts: number[] = [];
  get length(): number {
    return this.parts.length;
  }
  u16(v: number): this {
    this.parts.push(v & 0xff, (v >>> 8) & 0xff);
    return this;
  }
  u32(v: number): this {
    return this.u16(v & 0xffff).u16(v >>> 16);
  }
  u64(v: number): this {
    return this.u32(v % 2 ** 32).u32(Math.floor(v / 2 ** 32));
  }
  bytes(b: Uint8Array): this {
    for (const x of b) this.parts.push(x);
    return this;
  }
}

/** Writes `entries` (name, uncompressed data) as a zip. */
export async function craftZip(
  entries: readonly (readonly [string, Uint8Array])[],
  options: ZipOptions = {},
): Promise<CraftedZip> {
  const out = new Out();
  const rows: { name: Uint8Array; crc: number; comp: number; size: number; offset: number }[] = [];
  const local: number[] = [];
  const method = options.deflate ? 8 : 0;
  for (const [nameText, data] of entries) {
    const name = new TextEncoder().encode(nameText);
    const stored = options.deflate ? await deflate(data) : data;
    const crc = crc32(data);
    local.push(out.length);
    rows.push({ name, crc, comp: stored.byteLength, size: data.byteLength, offset: out.length });
    // Local header with bit 3 set: CRC and sizes follow the data, as torch writes them.
    out.u32(0x04034b50).u16(45).u16(0x0808).u16(method).u16(0).u16(0x21).u32(0).u32(0).u32(0)
      .u16(name.byteLength).u16(0).bytes(name).bytes(stored);
    out.u32(0x08074b50).u32(crc).u32(stored.byteLength).u32(data.byteLength);
  }
  const cdStart = out.length;
  const central: number[] = [];
  for (const r of rows) {
    central.push(out.length);
    const sat = options.zip64 ? 0xffffffff : -1;
    out.u32(0x02014b50).u16(45).u16(45).u16(0x0808).u16(method).u16(0).u16(0x21).u32(r.crc);
    out.u32(sat >= 0 ? sat : r.comp).u32(sat >= 0 ? sat : r.size).u16(r.name.byteLength);
    out.u16(options.zip64 ? 28 : 0).u16(0).u16(0).u16(0).u32(0).u32(sat >= 0 ? sat : r.offset);
    out.bytes(r.name);
    if (options.zip64) out.u16(1).u16(24).u64(r.size).u64(r.comp).u64(r.offset);
  }
  const cdSize = out.length - cdStart;
  if (options.zip64) {
    const rec = out.length;
    out.u32(0x06064b50).u64(44).u16(45).u16(45).u32(0).u32(0).u64(rows.length).u64(rows.length)
      .u64(cdSize).u64(cdStart);
    out.u32(0x07064b50).u32(0).u64(rec).u32(1);
  }
  const eocd = out.length;
  const z = options.zip64;
  out.u32(0x06054b50).u16(0).u16(0).u16(z ? 0xffff : rows.length).u16(z ? 0xffff : rows.length)
    .u32(z ? 0xffffffff : cdSize).u32(z ? 0xffffffff : cdStart).u16(0);
  return { bytes: new Uint8Array(out.parts), local, central, eocd };
}
