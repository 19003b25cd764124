/**
 * A minimal, defensive ZIP reader for PyTorch checkpoints. `torch.save`
 * writes an uncompressed ("stored") zip with data descriptors and, always, a
 * ZIP64 end-of-central-directory record; other tools may deflate entries.
 *
 * Everything is checked before an entry is read: the end record is searched
 * for only in the last 64 KiB, the central directory must lie inside the
 * file, every local header must agree with its central entry, entries must
 * not overlap each other or the directory, and names must be plain relative
 * paths. A malformed or truncated file raises {@link WeightsError} naming the
 * file; nothing is allocated beyond what the file holds (a deflated entry
 * may grow only to its declared size, and that size must be one deflate
 * could produce from its compressed size).
 *
 * @example
 * ```ts
 * import { readZipDirectory, readZipEntry } from "./zip.ts";
 * import { bytesSource } from "./byte_source.ts";
 * const src = bytesSource(await Deno.readFile("model.bin"));
 * const zip = await readZipDirectory(src, "model.bin");
 * const pkl = await readZipEntry(src, zip.entries.get("archive/data.pkl")!, "model.bin");
 * ```
 *
 * @module
 */

import { WeightsError } from "../errors.ts";
import type { ByteSource } from "./byte_source.ts";

/** One file inside a zip archive, as its central directory describes it. */
export interface ZipEntry {
  /** The entry's path inside the archive. */
  readonly name: string;
  /** 0 = stored, 8 = deflate. */
  readonly method: 0 | 8;
  /** CRC-32 of the uncompressed data. */
  readonly crc32: number;
  /** Size of the stored (possibly compressed) data. */
  readonly compressedSize: number;
  /** Size of the uncompressed data. */
  readonly size: number;
  /** Absolute offset of the first data byte (after the local header). */
  readonly dataOffset: number;
}

/** A validated central directory. */
export interface ZipDirectory {
  /** Entries by name, in directory order. */
  readonly entries: ReadonlyMap<string, ZipEntry>;
}

const EOCD_SIG = 0x06054b50;
const ZIP64_LOCATOR_SIG = 0x07064b50;
const ZIP64_EOCD_SIG = 0x06064b50;
const CENTRAL_SIG = 0x02014b50;
const LOCAL_SIG = 0x04034b50;
const EOCD_SIZE = 22;
const ZIP64_LOCATOR_SIZE = 20;
const ZIP64_EOCD_SIZE = 56;
const CENTRAL_SIZE = 46;
const LOCAL_SIZE = 30;
const MAX_COMMENT = 0xffff;
/** Far larger than any real checkpoint's directory, small enough to read at once. */
const MAX_DIRECTORY_BYTES = 256 * 2 ** 20;
/** Deflate cannot expand data by more than about 1032:1. */
const MAX_DEFLATE_RATIO = 1032;
const U16_MAX = 0xffff;
const U32_MAX = 0xffffffff;

function fail(message: string, file: string, key?: string): never {
  throw new WeightsError(message, key === undefined ? { file } : { file, key });
}

function dataView(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function u64(view: DataView, at: number, what: string, file: string): number {
  const v = view.getBigUint64(at, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail(`${what} ${v} is too large`, file);
  return Number(v);
}

/** Where the central directory is, from the (ZIP64) end record. */
interface DirectoryLocation {
  readonly offset: number;
  readonly size: number;
  readonly count: number;
  /** Entry data must end at or before this offset (the directory's start). */
  readonly dataEnd: number;
}

async function locateDirectory(src: ByteSource, file: string): Promise<DirectoryLocation> {
  if (src.size < EOCD_SIZE) fail(`file is ${src.size} bytes, too short to be a zip`, file);
  // The end record is followed only by its comment (at most 64 KiB), so it
  // lies within the last 22 + 65535 bytes: search only there.
  const tailStart = Math.max(0, src.size - EOCD_SIZE - MAX_COMMENT);
  const tail = await src.read(tailStart, src.size - tailStart);
  const tv = dataView(tail);
  let at = -1;
  for (let i = tail.byteLength - EOCD_SIZE; i >= 0; i--) {
    if (
      tv.getUint32(i, true) === EOCD_SIG &&
      i + EOCD_SIZE + tv.getUint16(i + 20, true) === tail.byteLength
    ) {
      at = i;
      break;
    }
  }
  if (at < 0) fail("no zip end-of-central-directory record (truncated or not a zip)", file);
  const eocd = tailStart + at;
  if (tv.getUint16(at + 4, true) !== 0 || tv.getUint16(at + 6, true) !== 0) {
    fail("multi-disk zip archives are not supported", file);
  }
  let count = tv.getUint16(at + 10, true);
  let size = tv.getUint32(at + 12, true);
  let offset = tv.getUint32(at + 16, true);
  let end = eocd;
  let zip64 = false;
  const locAt = eocd - ZIP64_LOCATOR_SIZE;
  if (locAt >= 0) {
    const loc = dataView(await src.read(locAt, ZIP64_LOCATOR_SIZE));
    if (loc.getUint32(0, true) === ZIP64_LOCATOR_SIG) {
      zip64 = true;
      const recAt = u64(loc, 8, "ZIP64 end record offset", file);
      if (recAt + ZIP64_EOCD_SIZE > locAt) fail("ZIP64 end record is outside the file", file);
      const rec = dataView(await src.read(recAt, ZIP64_EOCD_SIZE));
      if (rec.getUint32(0, true) !== ZIP64_EOCD_SIG) fail("bad ZIP64 end record signature", file);
      if (rec.getUint32(16, true) !== 0 || rec.getUint32(20, true) !== 0) {
        fail("multi-disk zip archives are not supported", file);
      }
      count = u64(rec, 32, "entry count", file);
      size = u64(rec, 40, "central directory size", file);
      offset = u64(rec, 48, "central directory offset", file);
      end = recAt;
    }
  }
  if (!zip64 && (count === U16_MAX || size === U32_MAX || offset === U32_MAX)) {
    fail("ZIP64 archive without a ZIP64 end record locator", file);
  }
  if (offset + size > end) {
    fail(`central directory [${offset}, ${offset + size}) is outside the file`, file);
  }
  if (size > MAX_DIRECTORY_BYTES) fail(`central directory of ${size} bytes is too large`, file);
  if (count * CENTRAL_SIZE > size) {
    fail(`${count} entries cannot fit a ${size}-byte central directory`, file);
  }
  return { offset, size, count, dataEnd: offset };
}

function checkName(name: string, file: string): void {
  const segments = name.split("/");
  const bad = name === "" || name.includes("\\") || name.includes("\0") ||
    /^[A-Za-z]:/.test(name) ||
    segments.some((s, i) => s === ".." || s === "." || (s === "" && i !== segments.length - 1));
  if (bad) fail(`entry name ${JSON.stringify(name)} is not a plain relative path`, file);
}

/** Sizes and offset with ZIP64 extra-field values substituted where the 32-bit field is saturated. */
function zip64Values(
  extra: DataView,
  fields: { size: number; compressedSize: number; offset: number },
  file: string,
  name: string,
): { size: number; compressedSize: number; offset: number } {
  const need = [fields.size, fields.compressedSize, fields.offset].filter((v) => v === U32_MAX);
  if (need.length === 0) return fields;
  for (let p = 0; p + 4 <= extra.byteLength;) {
    const id = extra.getUint16(p, true);
    const len = extra.getUint16(p + 2, true);
    if (p + 4 + len > extra.byteLength) break;
    if (id === 0x0001) {
      if (len < 8 * need.length) fail("ZIP64 extra field is too short", file, name);
      let q = p + 4;
      const next = (v: number, what: string): number => {
        if (v !== U32_MAX) return v;
        const r = u64(extra, q, what, file);
        q += 8;
        return r;
      };
      // The order is fixed by the spec: size, compressed size, offset.
      const size = next(fields.size, "entry size");
      const compressedSize = next(fields.compressedSize, "compressed size");
      return { size, compressedSize, offset: next(fields.offset, "local header offset") };
    }
    p += 4 + len;
  }
  return fail("sizes need a ZIP64 extra field, which is missing", file, name);
}

/** A central entry before its local header has been checked. */
interface CentralEntry {
  readonly name: string;
  readonly nameBytes: Uint8Array;
  readonly method: 0 | 8;
  readonly crc32: number;
  readonly compressedSize: number;
  readonly size: number;
  readonly headerOffset: number;
}

function parseCentral(dir: Uint8Array, count: number, file: string): CentralEntry[] {
  const view = dataView(dir);
  const decoder = new TextDecoder("utf-8", { fatal: true });
  const out: CentralEntry[] = [];
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (p + CENTRAL_SIZE > dir.byteLength || view.getUint32(p, true) !== CENTRAL_SIG) {
      fail(`central directory entry ${i} is truncated or has a bad signature`, file);
    }
    const nameLen = view.getUint16(p + 28, true);
    const extraLen = view.getUint16(p + 30, true);
    const commentLen = view.getUint16(p + 32, true);
    const next = p + CENTRAL_SIZE + nameLen + extraLen + commentLen;
    if (next > dir.byteLength) fail(`central directory entry ${i} overruns the directory`, file);
    const nameBytes = dir.subarray(p + CENTRAL_SIZE, p + CENTRAL_SIZE + nameLen);
    let name: string;
    try {
      name = decoder.decode(nameBytes);
    } catch (cause) {
      throw new WeightsError(`central directory entry ${i} has a name that is not UTF-8`, {
        file,
        cause,
      });
    }
    checkName(name, file);
    if (view.getUint16(p + 8, true) & 0x41) fail("encrypted entries are not supported", file, name);
    const method = view.getUint16(p + 10, true);
    if (method !== 0 && method !== 8) {
      fail(`compression method ${method} is not supported (only stored and deflate)`, file, name);
    }
    if (view.getUint16(p + 34, true) !== 0 && view.getUint16(p + 34, true) !== U16_MAX) {
      fail("entry on another disk", file, name);
    }
    const extra = new DataView(dir.buffer, dir.byteOffset + p + CENTRAL_SIZE + nameLen, extraLen);
    const v = zip64Values(
      extra,
      {
        size: view.getUint32(p + 24, true),
        compressedSize: view.getUint32(p + 20, true),
        offset: view.getUint32(p + 42, true),
      },
      file,
      name,
    );
    out.push({
      name,
      nameBytes,
      method,
      crc32: view.getUint32(p + 16, true),
      compressedSize: v.compressedSize,
      size: v.size,
      headerOffset: v.offset,
    });
    p = next;
  }
  if (p !== dir.byteLength) {
    fail(`central directory has ${dir.byteLength - p} bytes after its ${count} entries`, file);
  }
  return out;
}

async function checkLocal(
  src: ByteSource,
  c: CentralEntry,
  limit: number,
  file: string,
): Promise<ZipEntry> {
  const headerEnd = c.headerOffset + LOCAL_SIZE + c.nameBytes.byteLength;
  if (headerEnd > limit) fail("local header runs into the central directory", file, c.name);
  // One read for the fixed header and the name it should repeat.
  const headBytes = await src.read(c.headerOffset, headerEnd - c.headerOffset);
  const head = dataView(headBytes);
  if (head.getUint32(0, true) !== LOCAL_SIG) fail("bad local header signature", file, c.name);
  const nameLen = head.getUint16(26, true);
  const extraLen = head.getUint16(28, true);
  const dataOffset = c.headerOffset + LOCAL_SIZE + nameLen + extraLen;
  if (dataOffset + c.compressedSize > limit) {
    fail(
      `data [${dataOffset}, ${dataOffset + c.compressedSize}) runs past the archive`,
      file,
      c.name,
    );
  }
  const localName = headBytes.subarray(LOCAL_SIZE);
  if (nameLen !== c.nameBytes.byteLength || localName.some((b, i) => b !== c.nameBytes[i])) {
    fail("local header name differs from the central directory", file, c.name);
  }
  if (head.getUint16(8, true) !== c.method) {
    fail("local header compression method differs from the central directory", file, c.name);
  }
  // Without a data descriptor (flag bit 3) the local header carries the
  // real CRC and sizes, which must agree (ZIP64 sizes live in the extra field).
  if (!(head.getUint16(6, true) & 0x08)) {
    const crc = head.getUint32(14, true);
    const comp = head.getUint32(18, true);
    const size = head.getUint32(22, true);
    const sizesOk = (comp === U32_MAX || comp === c.compressedSize) &&
      (size === U32_MAX || size === c.size);
    if (crc !== c.crc32 || !sizesOk) {
      fail("local header CRC or sizes differ from the central directory", file, c.name);
    }
  }
  return {
    name: c.name,
    method: c.method,
    crc32: c.crc32,
    compressedSize: c.compressedSize,
    size: c.size,
    dataOffset,
  };
}

/**
 * Reads and validates a zip's central directory and every local header.
 *
 * @example
 * ```ts
 * import { readZipDirectory } from "./zip.ts";
 * import { bytesSource } from "./byte_source.ts";
 * const zip = await readZipDirectory(bytesSource(await Deno.readFile("model.bin")), "model.bin");
 * console.log([...zip.entries.keys()]);
 * ```
 */
export async function readZipDirectory(src: ByteSource, file: string): Promise<ZipDirectory> {
  const loc = await locateDirectory(src, file);
  const central = parseCentral(await src.read(loc.offset, loc.size), loc.count, file);
  const entries = new Map<string, ZipEntry>();
  const spans: [number, number, string][] = [];
  for (const c of central) {
    if (entries.has(c.name)) fail("duplicate entry name", file, c.name);
    if (c.method === 0 && c.compressedSize !== c.size) {
      fail(`stored entry has compressed size ${c.compressedSize} but size ${c.size}`, file, c.name);
    }
    if (c.method === 8 && c.size > c.compressedSize * MAX_DEFLATE_RATIO + 64) {
      fail(
        `declared size ${c.size} is more than deflate can expand ${c.compressedSize} bytes to`,
        file,
        c.name,
      );
    }
    const e = await checkLocal(src, c, loc.dataEnd, file);
    entries.set(c.name, e);
    spans.push([c.headerOffset, e.dataOffset + e.compressedSize, c.name]);
  }
  spans.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < spans.length; i++) {
    if (spans[i]![0] < spans[i - 1]![1]) {
      fail("entry overlaps the previous entry", file, spans[i]![2]);
    }
  }
  return { entries };
}

/** Slice-by-8 tables: 8 × 256 entries, built on first use. */
let crcTables: Uint32Array | undefined;

function crcTablesOnce(): Uint32Array {
  if (crcTables) return crcTables;
  const t = new Uint32Array(8 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  for (let n = 0; n < 256; n++) {
    for (let k = 1; k < 8; k++) {
      t[k * 256 + n] = (t[(k - 1) * 256 + n]! >>> 8) ^ t[t[(k - 1) * 256 + n]! & 0xff]!;
    }
  }
  return (crcTables = t);
}

/**
 * CRC-32 (IEEE, as zip uses) of `bytes`. Slice-by-8, since every byte of a
 * multi-gigabyte checkpoint goes through it.
 *
 * @example
 * ```ts
 * import { crc32 } from "./zip.ts";
 * console.log(crc32(new TextEncoder().encode("123456789")).toString(16)); // "cbf43926"
 * ```
 */
export function crc32(bytes: Uint8Array): number {
  const t = crcTablesOnce();
  let c = 0xffffffff;
  let i = 0;
  for (const end = bytes.length - 8; i <= end; i += 8) {
    const lo =
      (c ^ (bytes[i]! | bytes[i + 1]! << 8 | bytes[i + 2]! << 16 | bytes[i + 3]! << 24)) >>> 0;
    c = t[1792 + (lo & 0xff)]! ^ t[1536 + ((lo >>> 8) & 0xff)]! ^ t[1280 + ((lo >>> 16) & 0xff)]! ^
      t[1024 + (lo >>> 24)]! ^ t[768 + bytes[i + 4]!]! ^ t[512 + bytes[i + 5]!]! ^
      t[256 + bytes[i + 6]!]! ^ t[bytes[i + 7]!]!;
  }
  for (; i < bytes.length; i++) c = t[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

async function inflate(
  data: Uint8Array,
  size: number,
  file: string,
  name: string,
): Promise<Uint8Array> {
  const stream = new Blob([data as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
    new DecompressionStream("deflate-raw"),
  );
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for await (const chunk of stream) {
      total += chunk.byteLength;
      // Stop as soon as the data outgrows its declared size: no bomb gets further.
      if (total > size) fail(`deflated data is larger than its declared ${size} bytes`, file, name);
      chunks.push(chunk);
    }
  } catch (cause) {
    if (cause instanceof WeightsError) throw cause;
    throw new WeightsError("deflated data is corrupt", { file, key: name, cause });
  }
  if (total !== size) fail(`deflated data is ${total} bytes, not the declared ${size}`, file, name);
  const out = new Uint8Array(size);
  let p = 0;
  for (const c of chunks) {
    out.set(c, p);
    p += c.byteLength;
  }
  return out;
}

/**
 * Reads a whole entry (inflating it if deflated) and checks its CRC-32.
 *
 * @example
 * ```ts
 * import { readZipDirectory, readZipEntry } from "./zip.ts";
 * import { bytesSource } from "./byte_source.ts";
 * const src = bytesSource(await Deno.readFile("model.bin"));
 * const zip = await readZipDirectory(src, "model.bin");
 * const version = await readZipEntry(src, zip.entries.get("archive/version")!, "model.bin");
 * ```
 */
export async function readZipEntry(
  src: ByteSource,
  entry: ZipEntry,
  file: string,
): Promise<Uint8Array> {
  const raw = await src.read(entry.dataOffset, entry.compressedSize);
  const data = entry.method === 0 ? raw : await inflate(raw, entry.size, file, entry.name);
  if (crc32(data) !== entry.crc32) fail("CRC-32 mismatch (the file is corrupt)", file, entry.name);
  return data;
}

/**
 * Reads `length` bytes at `offset` within an entry's uncompressed data. A
 * stored entry is read by range (no CRC check, as only part is read); a
 * deflated one is read whole and sliced.
 *
 * @example
 * ```ts
 * import { readZipDirectory, readZipRange } from "./zip.ts";
 * import { bytesSource } from "./byte_source.ts";
 * const src = bytesSource(await Deno.readFile("model.bin"));
 * const zip = await readZipDirectory(src, "model.bin");
 * const head = await readZipRange(src, zip.entries.get("archive/data/0")!, 0, 16, "model.bin");
 * ```
 */
export async function readZipRange(
  src: ByteSource,
  entry: ZipEntry,
  offset: number,
  length: number,
  file: string,
): Promise<Uint8Array> {
  if (!(offset >= 0 && length >= 0 && offset + length <= entry.size)) {
    fail(
      `range [${offset}, ${offset + length}) is outside the ${entry.size}-byte entry`,
      file,
      entry.name,
    );
  }
  if (offset === 0 && length === entry.size) return readZipEntry(src, entry, file);
  if (entry.method === 0) return src.read(entry.dataOffset + offset, length);
  return (await readZipEntry(src, entry, file)).subarray(offset, offset + length);
}
