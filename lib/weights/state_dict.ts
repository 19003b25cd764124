/**
 * The weights loader models call: finds a model folder's weight files the
 * way diffusers does and gives lazy access to the tensors.
 *
 * Search order (first hit wins), with `.<variant>` inserted before the
 * last extension when a variant is asked for (diffusers' `_add_variant`):
 * `diffusion_pytorch_model.safetensors`, its sharded index
 * `diffusion_pytorch_model.safetensors.index.json`, `model.safetensors`,
 * `model.safetensors.index.json`, then the PyTorch files
 * `diffusion_pytorch_model.bin`, `diffusion_pytorch_model.bin.index.json`,
 * `pytorch_model.bin`, `pytorch_model.bin.index.json`. A variant that is
 * absent is an error, not a silent fallback. Shard names from an index's
 * `weight_map` must stay inside the folder ({@link PathEscapeError}).
 *
 * Nothing is read up front but headers: each tensor is read by range when
 * asked for, so a 3.4 GB UNet is never held twice. Files are sniffed, not
 * judged by extension: a zip is a PyTorch checkpoint, anything else must be
 * safetensors.
 *
 * @example
 * ```ts
 * import { loadStateDict } from "./state_dict.ts";
 * const sd = await loadStateDict("/models/sd/unet", { variant: "fp16" });
 * try {
 *   const w = await sd.get("conv_in.weight");
 *   console.log(w.dtype, w.shape); // "float32" [320, 4, 3, 3]
 * } finally {
 *   sd.close();
 * }
 * ```
 *
 * @module
 */

import { ArgumentError, NotFoundError, PathEscapeError, WeightsError } from "../errors.ts";
import { type ByteSource, fileSource } from "./byte_source.ts";
import {
  headerLength,
  parseSafetensorsHeader,
  type SafetensorsDType,
  type SafetensorsTensor,
  toFloat32,
  toInt32,
} from "./safetensors.ts";
import { openTorchCheckpoint } from "./torch_bin.ts";
import {
  checkRelativeName,
  type FolderOptions,
  folderWeightFiles,
  type WeightFiles,
} from "./weight_files.ts";

/** A decoded tensor: floats widened to float32, integers and booleans as int32. */
export interface HostTensor {
  /** The tfjs dtype of `data`. */
  readonly dtype: "float32" | "int32";
  /** Shape; `[]` for a 0-d tensor. */
  readonly shape: readonly number[];
  /** Row-major elements (may share memory with bytes the caller passed in). */
  readonly data: Float32Array | Int32Array;
}

/** A tensor's header: what it is and where it lives. */
export interface StateDictEntry {
  /** Element type as stored. */
  readonly dtype: SafetensorsDType;
  /** Shape; `[]` for a 0-d tensor. */
  readonly shape: readonly number[];
  /** The file that holds it. */
  readonly file: string;
}

/** Lazy access to a model's tensors. Call {@link StateDict.close} when done. */
export interface StateDict {
  /** The weight files, in load order. */
  readonly files: readonly string[];
  /** Every tensor's header, by name. */
  readonly entries: ReadonlyMap<string, StateDictEntry>;
  /** Reads a tensor's raw stored bytes (for fp16-aware callers and converters). */
  readRaw(name: string): Promise<SafetensorsTensor>;
  /** Reads and decodes a tensor. */
  get(name: string): Promise<HostTensor>;
  /** Closes the files. */
  close(): void;
}

/** Which files hold a folder's weights. */
export interface WeightsPlan {
  /** `safetensors` or PyTorch `bin`. */
  readonly format: "safetensors" | "bin";
  /** The weight files, relative to the folder. */
  readonly files: readonly string[];
  /** For a sharded checkpoint: its index file and `weight_map` (tensor → shard). */
  readonly index?: { readonly file: string; readonly weightMap: ReadonlyMap<string, string> };
}

/** Options of {@link findWeights} and {@link loadStateDict}. */
export interface LoadStateDictOptions extends FolderOptions {
  /** A weights variant such as `"fp16"` (`diffusion_pytorch_model.fp16.safetensors`). */
  readonly variant?: string;
}

/** Index files are small JSON; refuse anything absurd before reading it. */
const MAX_INDEX_BYTES = 64 * 2 ** 20;

const SEARCH: readonly (readonly [WeightsPlan["format"], string])[] = [
  ["safetensors", "diffusion_pytorch_model.safetensors"],
  ["safetensors", "model.safetensors"],
  ["bin", "diffusion_pytorch_model.bin"],
  ["bin", "pytorch_model.bin"],
];

/**
 * Inserts a variant before the last extension, as diffusers' `_add_variant`.
 *
 * @example
 * ```ts
 * import { addVariant } from "./state_dict.ts";
 * console.log(addVariant("model.safetensors.index.json", "fp16")); // "model.safetensors.index.fp16.json"
 * ```
 */
export function addVariant(name: string, variant?: string): string {
  if (variant === undefined) return name;
  const parts = name.split(".");
  parts.splice(parts.length - 1, 0, variant);
  return parts.join(".");
}

async function readIndex(
  files: WeightFiles,
  name: string,
): Promise<{ file: string; weightMap: Map<string, string>; shards: string[] }> {
  const where = files.describe(name);
  const src = await files.open(name);
  let json: unknown;
  try {
    if (src.size > MAX_INDEX_BYTES) {
      throw new WeightsError("index file is too large", { file: where });
    }
    json = JSON.parse(new TextDecoder().decode(await src.read(0, src.size)));
  } catch (cause) {
    if (cause instanceof WeightsError) throw cause;
    throw new WeightsError("index is not valid JSON", { file: where, cause });
  } finally {
    src.close();
  }
  const map = (json as { weight_map?: unknown } | null)?.weight_map;
  if (map === null || typeof map !== "object" || Array.isArray(map)) {
    throw new WeightsError("index has no weight_map object", { file: where });
  }
  const weightMap = new Map<string, string>();
  for (const [tensor, shard] of Object.entries(map)) {
    if (typeof shard !== "string") {
      throw new WeightsError("shard name is not a string", { file: where, key: tensor });
    }
    try {
      checkRelativeName(shard, files.location);
    } catch (cause) {
      const message = `weight_map sends ${tensor} to ${JSON.stringify(shard)}, outside the folder`;
      throw new PathEscapeError(message, { file: where, cause });
    }
    weightMap.set(tensor, shard);
  }
  return { file: name, weightMap, shards: [...new Set(weightMap.values())] };
}

/**
 * Finds which files hold a folder's weights (see the module doc for the
 * order), or throws {@link NotFoundError} listing every name looked for.
 *
 * @example
 * ```ts
 * import { findWeights } from "./state_dict.ts";
 * import { folderWeightFiles } from "./weight_files.ts";
 * const plan = await findWeights(folderWeightFiles("/models/sd/unet"));
 * console.log(plan.format, plan.files); // "safetensors" ["diffusion_pytorch_model.safetensors"]
 * ```
 */
export async function findWeights(
  files: WeightFiles,
  options: LoadStateDictOptions = {},
): Promise<WeightsPlan> {
  const { variant } = options;
  if (variant !== undefined && !/^[A-Za-z0-9_-]+$/.test(variant)) {
    throw new ArgumentError(
      `variant ${JSON.stringify(variant)} must be letters, digits, "_" or "-"`,
    );
  }
  const tried: string[] = [];
  for (const [format, base] of SEARCH) {
    const single = addVariant(base, variant);
    tried.push(single);
    if (await files.has(single)) return { format, files: [single] };
    const indexName = addVariant(`${base}.index.json`, variant);
    tried.push(indexName);
    if (await files.has(indexName)) {
      const { file, weightMap, shards } = await readIndex(files, indexName);
      return { format, files: shards, index: { file, weightMap } };
    }
  }
  throw new NotFoundError(`no weights found; looked for ${tried.join(", ")}`, {
    file: files.location,
  });
}

/** One opened weights file. */
interface TensorFile {
  readonly entries: ReadonlyMap<string, { dtype: SafetensorsDType; shape: readonly number[] }>;
  read(name: string): Promise<SafetensorsTensor>;
}

async function openSafetensors(src: ByteSource, file: string): Promise<TensorFile> {
  const n = headerLength(await src.read(0, Math.min(8, src.size)), src.size, file);
  const header = parseSafetensorsHeader(await src.read(8, n), src.size, file);
  return {
    entries: header.entries,
    async read(name) {
      const e = header.entries.get(name)!;
      return {
        dtype: e.dtype,
        shape: e.shape,
        bytes: await src.read(e.begin, e.end - e.begin),
        name,
        file,
      };
    },
  };
}

/** Sniffs the format: torch checkpoints are zips (or a legacy pickle, which torch_bin refuses clearly). */
async function openTensorFile(src: ByteSource, file: string): Promise<TensorFile> {
  const head = await src.read(0, Math.min(9, src.size));
  // safetensors: a u64 header length (whose low byte may be 0x80, pickle's first byte), then "{".
  const safetensors = head.byteLength === 9 && head[8] === 0x7b;
  const zip = head.byteLength >= 4 && head[0] === 0x50 && head[1] === 0x4b && head[2] === 3 &&
    head[3] === 4;
  if (!safetensors && (zip || head[0] === 0x80)) {
    const ckpt = await openTorchCheckpoint(src, file);
    return { entries: ckpt.tensors, read: (name) => ckpt.read(name) };
  }
  return openSafetensors(src, file);
}

/**
 * Decodes a raw tensor for tfjs: float dtypes to float32 (fp16 and bf16
 * widened), integer and boolean dtypes to int32.
 *
 * @example
 * ```ts
 * import { decodeTensor } from "./state_dict.ts";
 * const t = decodeTensor({ dtype: "U8", shape: [2], bytes: new Uint8Array([1, 0]), name: "m", file: "x" });
 * console.log(t.dtype, t.data); // "int32" Int32Array [1, 0]
 * ```
 */
export function decodeTensor(t: SafetensorsTensor): HostTensor {
  const float = t.dtype === "F64" || t.dtype === "F32" || t.dtype === "F16" || t.dtype === "BF16";
  return float
    ? { dtype: "float32", shape: t.shape, data: toFloat32(t) }
    : { dtype: "int32", shape: t.shape, data: toInt32(t) };
}

/** Opens the given sources and joins their tensors into one state dict. */
async function assemble(
  names: readonly string[],
  open: (name: string) => Promise<ByteSource>,
  describe: (name: string) => string,
  weightMap?: ReadonlyMap<string, string>,
): Promise<StateDict> {
  const sources: ByteSource[] = [];
  const close = (): void => sources.forEach((s) => s.close());
  try {
    const owners = new Map<string, TensorFile>();
    const entries = new Map<string, StateDictEntry>();
    for (const name of names) {
      const src = await open(name);
      sources.push(src);
      const file = describe(name);
      const opened = await openTensorFile(src, file);
      for (const [tensor, e] of opened.entries) {
        if (entries.has(tensor)) {
          throw new WeightsError(`tensor is also in ${entries.get(tensor)!.file}`, {
            file,
            key: tensor,
          });
        }
        if (weightMap?.has(tensor) && weightMap.get(tensor) !== name) {
          throw new WeightsError(`the index puts this tensor in ${weightMap.get(tensor)}`, {
            file,
            key: tensor,
          });
        }
        owners.set(tensor, opened);
        entries.set(tensor, { dtype: e.dtype, shape: e.shape, file });
      }
    }
    for (const [tensor, shard] of weightMap ?? []) {
      if (!entries.has(tensor)) {
        throw new WeightsError("the index lists this tensor but its shard does not hold it", {
          file: describe(shard),
          key: tensor,
        });
      }
    }
    const readRaw = (name: string): Promise<SafetensorsTensor> => {
      const owner = owners.get(name);
      if (!owner) return Promise.reject(new NotFoundError("no such tensor", { key: name }));
      return owner.read(name);
    };
    return {
      files: names.map(describe),
      entries,
      readRaw,
      get: async (name) => decodeTensor(await readRaw(name)),
      close,
    };
  } catch (e) {
    close();
    throw e;
  }
}

/**
 * Opens a model's weights: from a folder path (searched as the module doc
 * says), from a {@link WeightFiles} (e.g. bytes a browser fetched), or from
 * an explicit list of file paths (each a safetensors or PyTorch file).
 *
 * @example
 * ```ts
 * import { loadStateDict } from "./state_dict.ts";
 * import { memoryWeightFiles } from "./weight_files.ts";
 * const bytes = new Uint8Array(await (await fetch("https://example.com/unet.safetensors")).arrayBuffer());
 * const sd = await loadStateDict(memoryWeightFiles({ "diffusion_pytorch_model.safetensors": bytes }));
 * console.log([...sd.entries.keys()].length);
 * ```
 */
export async function loadStateDict(
  from: string | WeightFiles | readonly string[],
  options: LoadStateDictOptions = {},
): Promise<StateDict> {
  if (Array.isArray(from)) {
    return assemble(from as readonly string[], fileSource, (name) => name);
  }
  const files = typeof from === "string" ? folderWeightFiles(from, options) : from as WeightFiles;
  const plan = await findWeights(files, options);
  return assemble(
    plan.files,
    (name) => files.open(name),
    (name) => files.describe(name),
    plan.index?.weightMap,
  );
}
