/**
 * PyTorch checkpoints (`pytorch_model.bin`, `diffusion_pytorch_model.bin`)
 * as `torch.save` has written them since 1.6: a zip holding
 * `<archive>/data.pkl` (the pickled state dict) and one record
 * `<archive>/data/<key>` of raw little-endian bytes per storage.
 *
 * The pickle is read by the restricted unpickler with exactly the
 * allow-list of `torch.load(weights_only=True)` for state dicts:
 * `collections.OrderedDict`, `torch._utils._rebuild_tensor_v2`,
 * `_rebuild_tensor`, `_rebuild_parameter`, `torch.Size` and the typed
 * storage classes, with persistent ids `('storage', type, key, location,
 * numel)`. Anything else is refused before it can run. Every tensor's
 * layout is checked against its storage, so reading it cannot go out of
 * bounds, and a strided (e.g. transposed) tensor is copied to row-major.
 *
 * Tensors come out as {@link SafetensorsTensor}s, so the decoders of
 * `safetensors.ts` (`toFloat32`, `toInt32`, ...) serve both formats. The
 * legacy pre-1.6 (non-zip) format is refused with a clear error.
 *
 * @example
 * ```ts
 * import { parseTorchCheckpoint } from "./torch_bin.ts";
 * import { toFloat32 } from "./safetensors.ts";
 * const file = "unet/diffusion_pytorch_model.bin";
 * const tensors = await parseTorchCheckpoint(await Deno.readFile(file), file);
 * console.log(toFloat32(tensors.get("conv_in.bias")!).length);
 * ```
 *
 * @module
 */

import { NotFoundError, PickleError, WeightsError } from "../errors.ts";
import { type ByteSource, bytesSource } from "./byte_source.ts";
import { type PickleFunction, PyDict, PyGlobal, PyTuple, unpickle } from "./pickle.ts";
import type { SafetensorsDType, SafetensorsTensor } from "./safetensors.ts";
import { gatherStrided, isContiguous } from "./strided.ts";
import { readZipDirectory, readZipEntry, readZipRange, type ZipEntry } from "./zip.ts";

/** Where a tensor's elements live in its checkpoint (PyTorch's view of a storage). */
export interface TorchLayout {
  /** The storage record's key (`<archive>/data/<key>`). */
  readonly storageKey: string;
  /** Offset of the first element in the storage, in elements. */
  readonly storageOffset: number;
  /** Stride of each dimension, in elements. */
  readonly stride: readonly number[];
}

/** A tensor as the checkpoint declares it, before its data is read. */
export interface TorchTensorInfo {
  /** The state-dict key. */
  readonly name: string;
  /** Element type. */
  readonly dtype: SafetensorsDType;
  /** Shape; `[]` for a 0-d tensor. */
  readonly shape: readonly number[];
  /** Its place in its storage. */
  readonly layout: TorchLayout;
}

/** A tensor read from a checkpoint: `bytes` is always row-major, whatever `layout.stride` was. */
export interface TorchTensor extends SafetensorsTensor {
  /** Its place in its storage, as written. */
  readonly layout: TorchLayout;
}

/** An opened checkpoint: the declared tensors, read one at a time on demand. */
export interface TorchCheckpoint {
  /** The file, for messages. */
  readonly file: string;
  /** Every tensor, by state-dict key, in pickle order. */
  readonly tensors: ReadonlyMap<string, TorchTensorInfo>;
  /** Reads one tensor's data (only the bytes it needs, when its storage is not compressed). */
  read(name: string): Promise<TorchTensor>;
}

/** The typed storages `weights_only` accepts, with the dtype each holds. */
const STORAGE_TYPES: Readonly<Record<string, readonly [SafetensorsDType, number]>> = {
  "torch.DoubleStorage": ["F64", 8],
  "torch.FloatStorage": ["F32", 4],
  "torch.HalfStorage": ["F16", 2],
  "torch.BFloat16Storage": ["BF16", 2],
  "torch.LongStorage": ["I64", 8],
  "torch.IntStorage": ["I32", 4],
  "torch.ShortStorage": ["I16", 2],
  "torch.CharStorage": ["I8", 1],
  "torch.ByteStorage": ["U8", 1],
  "torch.BoolStorage": ["BOOL", 1],
};

/**
 * Views larger than their storage (stride 0 repeats elements) are copied out
 * when read; all of them together may come to this much, so a tiny file
 * naming many broadcast tensors cannot demand gigabytes.
 */
const MAX_EXPANDED_BYTES = 64 * 2 ** 20;

/** A storage named by a persistent id. */
class Storage {
  constructor(
    readonly key: string,
    readonly dtype: SafetensorsDType,
    readonly itemSize: number,
    readonly numel: number,
    readonly entry: ZipEntry,
  ) {}
}

/** What `_rebuild_tensor_v2` returns here: a checked view of a storage. */
class TensorRef {
  constructor(
    readonly storage: Storage,
    readonly offset: number,
    readonly shape: readonly number[],
    readonly stride: readonly number[],
  ) {}

  /** Index (in elements) of the last element, relative to the storage. */
  lastIndex(): number {
    return this.shape.reduce((acc, n, d) => acc + (n - 1) * this.stride[d]!, this.offset);
  }
}

function isCount(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

/** The rebuild functions and persistent-id loader for one archive. */
function torchGlobals(
  entries: ReadonlyMap<string, ZipEntry>,
  prefix: string,
  file: string,
): { globals: Record<string, PickleFunction | null>; persistentLoad: (pid: unknown) => Storage } {
  function bad(message: string): never {
    throw new PickleError(message, { file });
  }
  const counts = (v: unknown, what: string): number[] => {
    if (!(v instanceof PyTuple) || !v.items.every(isCount)) bad(`${what} is not a tuple of sizes`);
    return v.items as number[];
  };
  let expanded = 0n;
  const rebuild = (
    storage: unknown,
    offset: unknown,
    size: unknown,
    stride: unknown,
  ): TensorRef => {
    if (!(storage instanceof Storage)) bad("tensor storage is not a persistent storage");
    if (!isCount(offset)) bad("tensor storage offset is not a size");
    const shape = counts(size, "tensor size");
    const strides = counts(stride, "tensor stride");
    if (shape.length !== strides.length) bad("tensor size and stride differ in length");
    const t = new TensorRef(storage, offset, shape, strides);
    // Checked in BigInt: a hostile shape must not overflow into range.
    const n = shape.reduce((a, b) => a * BigInt(b), 1n);
    if (n === 0n) return t;
    const last = shape.reduce((a, s, d) => a + BigInt(s - 1) * BigInt(strides[d]!), BigInt(offset));
    if (last >= BigInt(storage.numel)) {
      bad(`tensor view reaches element ${last} of a ${storage.numel}-element storage`);
    }
    const bytes = n * BigInt(storage.itemSize);
    if (bytes > BigInt(storage.entry.size)) {
      expanded += bytes;
      if (expanded > BigInt(MAX_EXPANDED_BYTES)) {
        bad(
          `tensor view of ${bytes} bytes repeats its ${storage.entry.size}-byte storage: views ` +
            `larger than their storage come to more than ${MAX_EXPANDED_BYTES} bytes`,
        );
      }
    }
    return t;
  };
  const args = (
    a: readonly unknown[],
    lengths: readonly number[],
    fn: string,
  ): readonly unknown[] => {
    if (!lengths.includes(a.length)) bad(`${fn} called with ${a.length} arguments`);
    return a;
  };
  const globals: Record<string, PickleFunction | null> = {
    "collections.OrderedDict": (a) => {
      const d = new PyDict();
      const [items] = args(a, [0, 1], "OrderedDict");
      if (items === undefined) return d;
      if (!Array.isArray(items)) bad("OrderedDict argument is not a list of pairs");
      for (const pair of items) {
        if (!(pair instanceof PyTuple) || pair.items.length !== 2) {
          bad("OrderedDict item is not a (key, value) pair");
        }
        const [key, value] = pair.items;
        if (typeof key !== "string") bad("OrderedDict key is not a string");
        d.map.set(key, value);
      }
      return d;
    },
    "torch._utils._rebuild_tensor_v2": (a) => {
      // (storage, offset, size, stride, requires_grad, backward_hooks[, metadata]): only the layout matters.
      const [s, o, size, stride] = args(a, [6, 7], "_rebuild_tensor_v2");
      return rebuild(s, o, size, stride);
    },
    "torch._utils._rebuild_tensor": (a) => {
      const [s, o, size, stride] = args(a, [4], "_rebuild_tensor");
      return rebuild(s, o, size, stride);
    },
    "torch._utils._rebuild_parameter": (a) => {
      const [data] = args(a, [3], "_rebuild_parameter");
      if (!(data instanceof TensorRef)) bad("parameter data is not a tensor");
      return data;
    },
    "torch.Size": (a) => {
      const [sizes] = args(a, [1], "torch.Size");
      counts(sizes, "torch.Size argument");
      return sizes;
    },
  };
  for (const name of Object.keys(STORAGE_TYPES)) globals[name] = null;

  const persistentLoad = (pid: unknown): Storage => {
    if (!(pid instanceof PyTuple) || pid.items.length !== 5 || pid.items[0] !== "storage") {
      bad("persistent id is not ('storage', type, key, location, numel)");
    }
    const [, type, key, location, numel] = pid.items;
    if (!(type instanceof PyGlobal) || !Object.hasOwn(STORAGE_TYPES, type.name)) {
      bad("persistent id names an unsupported storage type");
    }
    if (typeof key !== "string" || !/^[A-Za-z0-9_.-]+$/.test(key) || key === "." || key === "..") {
      bad(`storage key ${JSON.stringify(key)} is not a plain name`);
    }
    if (typeof location !== "string" || !isCount(numel)) {
      bad("malformed storage persistent id");
    }
    const entry = entries.get(`${prefix}/data/${key}`);
    if (!entry) bad(`storage record ${prefix}/data/${key} is missing`);
    const [dtype, itemSize] = STORAGE_TYPES[type.name]!;
    if (entry.size !== numel * itemSize) {
      bad(`storage ${key} holds ${entry.size} bytes, not ${numel} × ${itemSize}`);
    }
    return new Storage(key, dtype, itemSize, numel, entry);
  };
  return { globals, persistentLoad };
}

/** Reads the state dict pickle and checks it maps names to tensors. */
function stateDict(
  pickle: Uint8Array,
  entries: ReadonlyMap<string, ZipEntry>,
  prefix: string,
  file: string,
): Map<string, TensorRef> {
  const { globals, persistentLoad } = torchGlobals(entries, prefix, file);
  const root = unpickle(pickle, { globals, persistentLoad, file });
  if (!(root instanceof PyDict)) {
    throw new WeightsError("checkpoint is not a state dict (a dict of tensors)", { file });
  }
  const out = new Map<string, TensorRef>();
  for (const [key, value] of root.map) {
    if (typeof key !== "string") {
      throw new WeightsError(`state dict key ${String(key)} is not a string`, { file });
    }
    if (!(value instanceof TensorRef)) {
      const what = "state dict value is not a tensor (nested checkpoints are not supported)";
      throw new WeightsError(what, { file, key });
    }
    out.set(key, value);
  }
  return out;
}

/** The archive folder name: torch names every record `<archive>/...` after the first entry's. */
function archivePrefix(entries: ReadonlyMap<string, ZipEntry>, file: string): string {
  const first = entries.keys().next().value;
  const slash = first?.indexOf("/") ?? -1;
  if (first === undefined || slash <= 0 || !entries.has(`${first.slice(0, slash)}/data.pkl`)) {
    throw new WeightsError("zip has no <archive>/data.pkl: not a PyTorch checkpoint", { file });
  }
  return first.slice(0, slash);
}

async function refuseLegacy(src: ByteSource, file: string): Promise<void> {
  const head = await src.read(0, Math.min(src.size, 262));
  const tar = head.byteLength >= 262 &&
    new TextDecoder().decode(head.subarray(257, 262)) === "ustar";
  // A pickle (protocol >= 2 starts with 0x80) or a tar is the pre-1.6 format.
  if (head[0] === 0x80 || tar) {
    throw new WeightsError(
      "legacy (pre-1.6, non-zip) PyTorch checkpoints are not supported; re-save it with " +
        "torch >= 1.6 or convert it to safetensors with Python",
      { file },
    );
  }
}

/**
 * Opens a checkpoint: validates the zip, unpickles the state dict and checks
 * every tensor's layout, without reading any tensor data.
 *
 * @example
 * ```ts
 * import { openTorchCheckpoint } from "./torch_bin.ts";
 * import { fileSource } from "./byte_source.ts";
 * const src = await fileSource("pytorch_model.bin");
 * const ckpt = await openTorchCheckpoint(src, "pytorch_model.bin");
 * for (const [name, info] of ckpt.tensors) console.log(name, info.dtype, info.shape);
 * src.close();
 * ```
 */
export async function openTorchCheckpoint(src: ByteSource, file: string): Promise<TorchCheckpoint> {
  await refuseLegacy(src, file);
  const { entries } = await readZipDirectory(src, file);
  const prefix = archivePrefix(entries, file);
  const order = entries.get(`${prefix}/byteorder`);
  if (order && new TextDecoder().decode(await readZipEntry(src, order, file)) !== "little") {
    throw new WeightsError("big-endian checkpoints are not supported", { file });
  }
  const pickle = await readZipEntry(src, entries.get(`${prefix}/data.pkl`)!, file);
  const refs = stateDict(pickle, entries, prefix, file);
  const tensors = new Map<string, TorchTensorInfo>();
  for (const [name, t] of refs) {
    const layout = { storageKey: t.storage.key, storageOffset: t.offset, stride: t.stride };
    tensors.set(name, { name, dtype: t.storage.dtype, shape: t.shape, layout });
  }
  // A deflated storage is inflated once, however many tensors view it: inflating
  // it again for each view would let a small file cost gigabytes.
  const inflated = new Map<ZipEntry, Promise<Uint8Array>>();
  const storageRange = async (entry: ZipEntry, offset: number, length: number) => {
    if (entry.method === 0) return readZipRange(src, entry, offset, length, file);
    let whole = inflated.get(entry);
    if (!whole) inflated.set(entry, whole = readZipEntry(src, entry, file));
    return (await whole).subarray(offset, offset + length);
  };
  return {
    file,
    tensors,
    async read(name: string): Promise<TorchTensor> {
      const t = refs.get(name);
      const info = tensors.get(name);
      if (!t || !info) {
        throw new NotFoundError("no such tensor in the checkpoint", { file, key: name });
      }
      const { entry, itemSize } = t.storage;
      const n = t.shape.reduce((a, b) => a * b, 1);
      let bytes: Uint8Array;
      if (n === 0) {
        bytes = new Uint8Array(0);
      } else if (isContiguous(t.shape, t.stride)) {
        bytes = await storageRange(entry, t.offset * itemSize, n * itemSize);
      } else {
        // Read the span the view touches, then copy its elements out in row-major order.
        const span = await storageRange(
          entry,
          t.offset * itemSize,
          (t.lastIndex() - t.offset + 1) * itemSize,
        );
        bytes = gatherStrided(span, itemSize, t.shape, t.stride, 0);
      }
      return { dtype: info.dtype, shape: info.shape, bytes, name, file, layout: info.layout };
    },
  };
}

/**
 * Parses a whole checkpoint held in memory into tensors by name. Contiguous
 * tensors are views into `bytes` (tensors sharing a storage share bytes).
 *
 * @example
 * ```ts
 * import { parseTorchCheckpoint } from "./torch_bin.ts";
 * const tensors = await parseTorchCheckpoint(await Deno.readFile("pytorch_model.bin"), "pytorch_model.bin");
 * console.log([...tensors.keys()]);
 * ```
 */
export async function parseTorchCheckpoint(
  bytes: Uint8Array,
  file = "<memory>",
): Promise<Map<string, TorchTensor>> {
  const ckpt = await openTorchCheckpoint(bytesSource(bytes, file), file);
  const out = new Map<string, TorchTensor>();
  for (const name of ckpt.tensors.keys()) out.set(name, await ckpt.read(name));
  return out;
}
