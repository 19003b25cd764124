/**
 * The safetensors format: an 8-byte little-endian header length N, N bytes of
 * JSON (`{name: {dtype, shape, data_offsets}, "__metadata__": {...}}`), then
 * the raw little-endian tensor data.
 *
 * Everything in the header is validated before any tensor is touched: the
 * header length, the dtypes, the shapes, that every tensor's byte size equals
 * dtype size × element count, and that the offsets tile the data section with
 * no gap and no overlap (the rules of the reference Rust implementation). A
 * malformed file raises {@link SafetensorsError}; nothing is allocated beyond
 * what the file itself holds.
 *
 * @example
 * ```ts
 * import { parseSafetensors, serializeSafetensors, toFloat32 } from "./safetensors.ts";
 * const bytes = serializeSafetensors({
 *   w: { dtype: "F32", shape: [2], data: new Float32Array([1, 2]) },
 * });
 * const file = parseSafetensors(bytes);
 * console.log(toFloat32(file.tensors.get("w")!)); // Float32Array [1, 2]
 * ```
 *
 * @module
 */

import { SafetensorsError } from "../errors.ts";
import { bfloat16ToFloat32, float16ToFloat32, float32ToFloat16 } from "./half.ts";

/** The dtypes this reader understands. */
export type SafetensorsDType =
  | "F64"
  | "F32"
  | "F16"
  | "BF16"
  | "I64"
  | "I32"
  | "I16"
  | "I8"
  | "U8"
  | "BOOL";

const DTYPE_SIZE: Readonly<Record<SafetensorsDType, number>> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

/** The safetensors specification caps the JSON header at 100 MB. */
const MAX_HEADER_BYTES = 100_000_000;

/** One tensor's header entry, with offsets made absolute within the file. */
export interface SafetensorsHeaderEntry {
  /** Element type as written in the file. */
  readonly dtype: SafetensorsDType;
  /** Shape; `[]` for a 0-d tensor. */
  readonly shape: readonly number[];
  /** Absolute byte offset of the first data byte in the file. */
  readonly begin: number;
  /** Absolute byte offset one past the last data byte in the file. */
  readonly end: number;
}

/** A validated header: tensor entries by name (file order of offsets) and metadata. */
export interface SafetensorsHeader {
  /** The `__metadata__` string map (empty when absent). */
  readonly metadata: Readonly<Record<string, string>>;
  /** Entries by tensor name. */
  readonly entries: ReadonlyMap<string, SafetensorsHeaderEntry>;
  /** Byte length of the whole file as the header describes it. */
  readonly fileSize: number;
}

/** One tensor of a parsed file: its header fields and a view of its raw bytes. */
export interface SafetensorsTensor {
  /** Element type as written in the file. */
  readonly dtype: SafetensorsDType;
  /** Shape; `[]` for a 0-d tensor. */
  readonly shape: readonly number[];
  /** The raw little-endian bytes (a view into the file, not a copy). */
  readonly bytes: Uint8Array;
  /** The tensor's name, for error messages. */
  readonly name: string;
  /** The file it came from, for error messages. */
  readonly file: string;
}

/** A parsed safetensors file. */
export interface SafetensorsFile {
  /** The `__metadata__` string map (empty when absent). */
  readonly metadata: Readonly<Record<string, string>>;
  /** Tensors by name. */
  readonly tensors: ReadonlyMap<string, SafetensorsTensor>;
}

/** Any typed array that safetensors can store. */
export type TensorData =
  | Float64Array
  | Float32Array
  | Uint16Array
  | BigInt64Array
  | Int32Array
  | Int16Array
  | Int8Array
  | Uint8Array;

/** A host tensor to write: dtype, shape and data (for F16/BF16, the raw 16-bit words or float32 values to narrow). */
export interface TensorToWrite {
  /** Element type to store. */
  dtype: SafetensorsDType;
  /** Shape; `[]` for a 0-d tensor. */
  shape: readonly number[];
  /** Elements in row-major order. F16 accepts Float32Array (narrowed) or Uint16Array (raw). */
  data: TensorData;
}

/**
 * Reads the 8-byte prefix of a safetensors file and returns the JSON header
 * length, checked against the file size.
 *
 * @example
 * ```ts
 * import { headerLength } from "./safetensors.ts";
 * const prefix = new Uint8Array(8); prefix[0] = 2;
 * console.log(headerLength(prefix, 16, "x.safetensors")); // 2
 * ```
 */
export function headerLength(prefix: Uint8Array, fileSize: number, file: string): number {
  if (prefix.byteLength < 8 || fileSize < 8) {
    throw new SafetensorsError(`file is ${fileSize} bytes, shorter than the 8-byte header length`, {
      file,
    });
  }
  const n = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES)) {
    throw new SafetensorsError(`header length ${n} exceeds the 100 MB limit`, { file });
  }
  if (n > BigInt(fileSize - 8)) {
    throw new SafetensorsError(`header length ${n} exceeds the file size ${fileSize}`, { file });
  }
  return Number(n);
}

function isDType(v: unknown): v is SafetensorsDType {
  return typeof v === "string" && Object.hasOwn(DTYPE_SIZE, v);
}

function isNonNegativeInteger(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

/**
 * Validates a JSON header (the N bytes after the length prefix) against the
 * file size and returns entries with absolute offsets.
 *
 * @example
 * ```ts
 * import { parseSafetensorsHeader } from "./safetensors.ts";
 * const json = new TextEncoder().encode('{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}');
 * const h = parseSafetensorsHeader(json, 8 + json.length + 2, "x.safetensors");
 * console.log(h.entries.get("a")!.begin); // 8 + json.length
 * ```
 */
export function parseSafetensorsHeader(
  headerBytes: Uint8Array,
  fileSize: number,
  file: string,
): SafetensorsHeader {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(headerBytes));
  } catch (cause) {
    throw new SafetensorsError("header is not valid UTF-8 JSON", { file, cause });
  }
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    throw new SafetensorsError("header is not a JSON object", { file });
  }
  const dataStart = 8 + headerBytes.byteLength;
  const dataSize = fileSize - dataStart;
  let metadata: Record<string, string> = {};
  const raw: [string, SafetensorsHeaderEntry][] = [];
  for (const [name, value] of Object.entries(json as Record<string, unknown>)) {
    if (name === "__metadata__") {
      metadata = checkMetadata(value, file);
      continue;
    }
    raw.push([name, checkEntry(name, value, dataStart, dataSize, file)]);
  }
  // The data section must be tiled exactly: sorted by offset, each tensor
  // starts where the previous ended, and the last ends at the end of file.
  const sorted = [...raw].sort((a, b) => a[1].begin - b[1].begin || a[1].end - b[1].end);
  let cursor = dataStart;
  for (const [name, e] of sorted) {
    if (e.begin !== cursor) {
      const what = e.begin < cursor ? "overlaps the previous tensor" : "leaves a gap before it";
      throw new SafetensorsError(`data_offsets ${what}`, { file, key: name });
    }
    cursor = e.end;
  }
  if (cursor !== fileSize) {
    throw new SafetensorsError(
      `tensors cover ${cursor - dataStart} data bytes but the file has ${dataSize}`,
      { file },
    );
  }
  return { metadata, entries: new Map(raw), fileSize };
}

function checkMetadata(value: unknown, file: string): Record<string, string> {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new SafetensorsError("__metadata__ is not an object", { file, key: "__metadata__" });
  }
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== "string") {
      throw new SafetensorsError(`__metadata__ value is not a string`, { file, key: k });
    }
  }
  return value as Record<string, string>;
}

function checkEntry(
  name: string,
  value: unknown,
  dataStart: number,
  dataSize: number,
  file: string,
): SafetensorsHeaderEntry {
  const ctx = { file, key: name };
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new SafetensorsError("tensor entry is not an object", ctx);
  }
  const { dtype, shape, data_offsets: offsets } = value as Record<string, unknown>;
  if (!isDType(dtype)) {
    throw new SafetensorsError(`unsupported dtype ${JSON.stringify(dtype)}`, ctx);
  }
  if (!Array.isArray(shape) || !shape.every(isNonNegativeInteger)) {
    throw new SafetensorsError(`shape ${JSON.stringify(shape)} is not a list of sizes`, ctx);
  }
  if (
    !Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isNonNegativeInteger)
  ) {
    throw new SafetensorsError(`data_offsets ${JSON.stringify(offsets)} is not [begin, end]`, ctx);
  }
  const [begin, end] = offsets as [number, number];
  if (begin > end || end > dataSize) {
    throw new SafetensorsError(
      `data_offsets [${begin}, ${end}] do not fit the ${dataSize}-byte data section`,
      ctx,
    );
  }
  // Count elements in BigInt so a hostile shape cannot overflow to a small number.
  const numel = (shape as number[]).reduce((acc, d) => acc * BigInt(d), 1n);
  const expected = numel * BigInt(DTYPE_SIZE[dtype]);
  if (expected !== BigInt(end - begin)) {
    throw new SafetensorsError(
      `shape [${shape.join(", ")}] of ${dtype} needs ${expected} bytes but data_offsets give ${
        end - begin
      }`,
      ctx,
    );
  }
  return { dtype, shape: shape as number[], begin: dataStart + begin, end: dataStart + end };
}

/**
 * Parses and validates a whole safetensors file held in memory. Tensor bytes
 * are views into `bytes`.
 *
 * @example
 * ```ts
 * import { parseSafetensors, serializeSafetensors } from "./safetensors.ts";
 * const bytes = serializeSafetensors({ x: { dtype: "I32", shape: [], data: new Int32Array([7]) } });
 * console.log(parseSafetensors(bytes).tensors.get("x")!.shape); // []
 * ```
 */
export function parseSafetensors(bytes: Uint8Array, file = "<memory>"): SafetensorsFile {
  const n = headerLength(bytes, bytes.byteLength, file);
  const header = parseSafetensorsHeader(bytes.subarray(8, 8 + n), bytes.byteLength, file);
  const tensors = new Map<string, SafetensorsTensor>();
  for (const [name, e] of header.entries) {
    tensors.set(name, {
      dtype: e.dtype,
      shape: e.shape,
      bytes: bytes.subarray(e.begin, e.end),
      name,
      file,
    });
  }
  return { metadata: header.metadata, tensors };
}

/** Number of elements of a shape (1 for `[]`). */
export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** A typed-array view of `bytes` when aligned, else a copy, so it never throws on odd offsets. */
function view<T>(
  bytes: Uint8Array,
  ctor: { new (buffer: ArrayBuffer, offset: number, length: number): T; BYTES_PER_ELEMENT: number },
): T {
  const size = ctor.BYTES_PER_ELEMENT;
  const aligned = bytes.byteOffset % size === 0 ? bytes : bytes.slice();
  return new ctor(aligned.buffer as ArrayBuffer, aligned.byteOffset, aligned.byteLength / size);
}

/**
 * Decodes any numeric tensor to float32 (F16 and BF16 widened, F64 rounded,
 * integers converted).
 *
 * @example
 * ```ts
 * import { parseSafetensors, serializeSafetensors, toFloat32 } from "./safetensors.ts";
 * const f = parseSafetensors(serializeSafetensors({
 *   h: { dtype: "F16", shape: [1], data: new Float32Array([0.5]) },
 * }));
 * console.log(toFloat32(f.tensors.get("h")!)[0]); // 0.5
 * ```
 */
export function toFloat32(t: SafetensorsTensor): Float32Array {
  switch (t.dtype) {
    case "F32":
      return view(t.bytes, Float32Array);
    case "F16":
      return float16ToFloat32(view(t.bytes, Uint16Array));
    case "BF16":
      return bfloat16ToFloat32(view(t.bytes, Uint16Array));
    default:
      return Float32Array.from(toFloat64(t));
  }
}

/**
 * Decodes any numeric tensor to float64 (exact for F64, F32, F16, BF16 and
 * integers up to 2^53).
 *
 * @example
 * ```ts
 * import { parseSafetensors, serializeSafetensors, toFloat64 } from "./safetensors.ts";
 * const f = parseSafetensors(serializeSafetensors({
 *   t: { dtype: "I64", shape: [2], data: new BigInt64Array([999n, 0n]) },
 * }));
 * console.log(toFloat64(f.tensors.get("t")!)); // Float64Array [999, 0]
 * ```
 */
export function toFloat64(t: SafetensorsTensor): Float64Array {
  switch (t.dtype) {
    case "F64":
      return view(t.bytes, Float64Array);
    case "F32":
    case "F16":
    case "BF16":
      return Float64Array.from(toFloat32(t));
    case "I64":
      return Float64Array.from(view(t.bytes, BigInt64Array), (v) => Number(v));
    case "I32":
      return Float64Array.from(view(t.bytes, Int32Array));
    case "I16":
      return Float64Array.from(view(t.bytes, Int16Array));
    case "I8":
      return Float64Array.from(view(t.bytes, Int8Array));
    case "U8":
    case "BOOL":
      return Float64Array.from(t.bytes);
  }
}

/**
 * Decodes an integer (or boolean) tensor to int32; an I64 value outside the
 * int32 range is an error naming the tensor.
 *
 * @example
 * ```ts
 * import { parseSafetensors, serializeSafetensors, toInt32 } from "./safetensors.ts";
 * const f = parseSafetensors(serializeSafetensors({
 *   ids: { dtype: "I64", shape: [2], data: new BigInt64Array([49406n, 49407n]) },
 * }));
 * console.log(toInt32(f.tensors.get("ids")!)); // Int32Array [49406, 49407]
 * ```
 */
export function toInt32(t: SafetensorsTensor): Int32Array {
  switch (t.dtype) {
    case "I32":
      return view(t.bytes, Int32Array);
    case "I64": {
      const src = view(t.bytes, BigInt64Array);
      const out = new Int32Array(src.length);
      for (let i = 0; i < src.length; i++) {
        const v = src[i]!;
        if (v > 2147483647n || v < -2147483648n) {
          throw new SafetensorsError(`value ${v} at index ${i} does not fit int32`, {
            file: t.file,
            key: t.name,
          });
        }
        out[i] = Number(v);
      }
      return out;
    }
    case "I16":
      return Int32Array.from(view(t.bytes, Int16Array));
    case "I8":
      return Int32Array.from(view(t.bytes, Int8Array));
    case "U8":
    case "BOOL":
      return Int32Array.from(t.bytes);
    default:
      throw new SafetensorsError(`expected an integer tensor, found ${t.dtype}`, {
        file: t.file,
        key: t.name,
      });
  }
}

function encodeData(name: string, t: TensorToWrite): Uint8Array {
  const n = numel(t.shape);
  let data: TensorData = t.data;
  if ((t.dtype === "F16" || t.dtype === "BF16") && data instanceof Float32Array) {
    if (t.dtype === "BF16") {
      throw new SafetensorsError("BF16 data must be given as raw Uint16Array words", { key: name });
    }
    data = float32ToFloat16(data);
  }
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (bytes.byteLength !== n * DTYPE_SIZE[t.dtype]) {
    throw new SafetensorsError(
      `data has ${bytes.byteLength} bytes but shape [${t.shape.join(", ")}] of ${t.dtype} needs ${
        n * DTYPE_SIZE[t.dtype]
      }`,
      { key: name },
    );
  }
  return bytes;
}

/**
 * Serialises tensors to safetensors bytes: keys sorted, header padded with
 * spaces to a multiple of 8, data contiguous in key order.
 *
 * @example
 * ```ts
 * import { serializeSafetensors } from "./safetensors.ts";
 * const bytes = serializeSafetensors({ a: { dtype: "F32", shape: [1], data: new Float32Array([1]) } },
 *   { format: "pt" });
 * console.log(bytes.byteLength % 8); // 4 (8-byte prefix + padded header + 4 data bytes)
 * ```
 */
export function serializeSafetensors(
  tensors: Readonly<Record<string, TensorToWrite>>,
  metadata?: Readonly<Record<string, string>>,
): Uint8Array {
  const names = Object.keys(tensors).sort();
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const name of names) {
    const t = tensors[name]!;
    const bytes = encodeData(name, t);
    header[name] = {
      dtype: t.dtype,
      shape: [...t.shape],
      data_offsets: [offset, offset + bytes.byteLength],
    };
    chunks.push(bytes);
    offset += bytes.byteLength;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (new TextEncoder().encode(json).byteLength % 8)) % 8);
  const headerBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerBytes.byteLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.byteLength), true);
  out.set(headerBytes, 8);
  let pos = 8 + headerBytes.byteLength;
  for (const c of chunks) {
    out.set(c, pos);
    pos += c.byteLength;
  }
  return out;
}
