/**
 * `deno task convert DIR [--fp16] [--overwrite]`: converts every PyTorch
 * checkpoint (`*.bin`) under `DIR` to safetensors beside it, with the same
 * tensor names, the names `from_pretrained` looks for
 * (`diffusion_pytorch_model.bin` → `diffusion_pytorch_model.safetensors`,
 * `pytorch_model*.bin` → `model*.safetensors`) and the sharded index
 * rewritten to match (`*.bin.index.json` → `*.safetensors.index.json`).
 *
 * `--fp16` stores floating-point tensors as float16 (round to nearest even,
 * as `.half()`); integer tensors are kept. Each file is written atomically,
 * then read back tensor by tensor and compared with the checkpoint; a
 * mismatch removes it. An existing `.safetensors` is kept unless
 * `--overwrite` is given. Peak memory is about twice the checkpoint.
 *
 * @example
 * ```ts
 * import { convertTree } from "./convert.ts";
 * const results = await convertTree("/models/sd", { fp16: true });
 * for (const r of results) console.log(r.target, r.tensors, r.targetBytes);
 * ```
 *
 * @module
 */

import { DiffusersError, WeightsError } from "../lib/errors.ts";
import { writeFileAtomic, writeTextFileAtomic } from "../lib/fs.ts";
import { float32ToFloat16 } from "../lib/weights/half.ts";
import {
  type SafetensorsTensor,
  serializeSafetensors,
  type TensorToWrite,
  toFloat32,
} from "../lib/weights/safetensors.ts";
import { fileSource } from "../lib/weights/byte_source.ts";
import { loadStateDict } from "../lib/weights/state_dict.ts";
import { openTorchCheckpoint } from "../lib/weights/torch_bin.ts";

/** Options of {@link convertCheckpoint} and {@link convertTree}. */
export interface ConvertOptions {
  /** Store floating-point tensors as float16. */
  readonly fp16?: boolean;
  /** Replace existing `.safetensors` files (default: skip them). */
  readonly overwrite?: boolean;
  /** Called with one line per file converted or skipped. */
  readonly log?: (line: string) => void;
}

/** What happened to one checkpoint. */
export interface ConvertResult {
  /** The `.bin` path. */
  readonly source: string;
  /** The `.safetensors` path. */
  readonly target: string;
  /** True when the target existed and was kept. */
  readonly skipped: boolean;
  /** Tensors written (0 when skipped). */
  readonly tensors: number;
  /** Size of the checkpoint. */
  readonly sourceBytes: number;
  /** Size of the safetensors file. */
  readonly targetBytes: number;
}

/**
 * The safetensors name `from_pretrained` expects for a checkpoint or
 * sharded-index name.
 *
 * @example
 * ```ts
 * import { safetensorsName } from "./convert.ts";
 * console.log(safetensorsName("pytorch_model-00001-of-00002.bin")); // "model-00001-of-00002.safetensors"
 * console.log(safetensorsName("diffusion_pytorch_model.fp16.bin")); // "diffusion_pytorch_model.fp16.safetensors"
 * console.log(safetensorsName("pytorch_model.bin.index.json")); // "model.safetensors.index.json"
 * ```
 */
export function safetensorsName(binName: string): string {
  return binName.replace(/^pytorch_model(?=$|[.-])/, "model")
    .replace(/\.bin$|\.bin(?=\.index(\.[^.]+)?\.json$)/, ".safetensors");
}

function isFloat(t: SafetensorsTensor): boolean {
  return t.dtype === "F64" || t.dtype === "F32" || t.dtype === "BF16";
}

/** The tensor as it is to be stored. */
function toWrite(t: SafetensorsTensor, fp16: boolean): TensorToWrite {
  if (fp16 && isFloat(t)) {
    return { dtype: "F16", shape: t.shape, data: float32ToFloat16(toFloat32(t)) };
  }
  return { dtype: t.dtype, shape: t.shape, data: t.bytes };
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/** Re-reads `target` and checks every tensor against the checkpoint. */
async function verify(
  read: (name: string) => Promise<SafetensorsTensor>,
  names: readonly string[],
  target: string,
  fp16: boolean,
): Promise<void> {
  const written = await loadStateDict([target]);
  try {
    if (written.entries.size !== names.length) {
      throw new WeightsError(`holds ${written.entries.size} tensors, expected ${names.length}`, {
        file: target,
      });
    }
    for (const name of names) {
      const want = toWrite(await read(name), fp16);
      const got = await written.readRaw(name);
      const bytes = new Uint8Array(want.data.buffer, want.data.byteOffset, want.data.byteLength);
      if (
        got.dtype !== want.dtype || got.shape.join() !== want.shape.join() ||
        !sameBytes(got.bytes, bytes)
      ) {
        throw new WeightsError("round trip differs from the checkpoint", {
          file: target,
          key: name,
        });
      }
    }
  } finally {
    written.close();
  }
}

/**
 * Converts one checkpoint to a safetensors file and verifies it.
 *
 * @example
 * ```ts
 * import { convertCheckpoint } from "./convert.ts";
 * const r = await convertCheckpoint("unet/diffusion_pytorch_model.bin",
 *   "unet/diffusion_pytorch_model.safetensors");
 * console.log(r.tensors, r.sourceBytes, r.targetBytes);
 * ```
 */
export async function convertCheckpoint(
  source: string,
  target: string,
  options: ConvertOptions = {},
): Promise<ConvertResult> {
  const fp16 = options.fp16 ?? false;
  const src = await fileSource(source);
  try {
    if (!options.overwrite && await exists(target)) {
      const targetBytes = (await Deno.stat(target)).size;
      return { source, target, skipped: true, tensors: 0, sourceBytes: src.size, targetBytes };
    }
    const ckpt = await openTorchCheckpoint(src, source);
    const names = [...ckpt.tensors.keys()];
    const tensors: Record<string, TensorToWrite> = {};
    for (const name of names) tensors[name] = toWrite(await ckpt.read(name), fp16);
    await writeFileAtomic(target, serializeSafetensors(tensors, { format: "pt" }));
    try {
      await verify((name) => ckpt.read(name), names, target, fp16);
    } catch (e) {
      await Deno.remove(target).catch(() => {});
      throw e;
    }
    const targetBytes = (await Deno.stat(target)).size;
    return {
      source,
      target,
      skipped: false,
      tensors: names.length,
      sourceBytes: src.size,
      targetBytes,
    };
  } finally {
    src.close();
  }
}

/** Rewrites a `*.bin.index.json` as the matching `*.safetensors.index.json`. */
async function convertIndex(
  path: string,
  dir: string,
  name: string,
  options: ConvertOptions,
): Promise<void> {
  const target = `${dir}/${safetensorsName(name)}`;
  if (!options.overwrite && await exists(target)) return;
  let index: { weight_map?: unknown };
  try {
    index = JSON.parse(await Deno.readTextFile(path));
  } catch (cause) {
    throw new WeightsError("index is not valid JSON", { file: path, cause });
  }
  const map = index.weight_map;
  if (map === null || typeof map !== "object" || Array.isArray(map)) {
    throw new WeightsError("index has no weight_map object", { file: path });
  }
  const renamed = Object.fromEntries(
    Object.entries(map).map(([k, v]) => [k, typeof v === "string" ? safetensorsName(v) : v]),
  );
  await writeTextFileAtomic(
    target,
    `${JSON.stringify({ ...index, weight_map: renamed }, null, 2)}\n`,
  );
  options.log?.(`${path} -> ${target}`);
}

/**
 * Converts every `*.bin` (and sharded index) under `dir`, recursively. Does
 * not follow symlinked folders.
 *
 * @example
 * ```ts
 * import { convertTree } from "./convert.ts";
 * const results = await convertTree("/models/sd", { overwrite: true, log: console.log });
 * console.log(results.filter((r) => !r.skipped).length);
 * ```
 */
export async function convertTree(
  dir: string,
  options: ConvertOptions = {},
): Promise<ConvertResult[]> {
  const results: ConvertResult[] = [];
  const entries = [];
  for await (const e of Deno.readDir(dir)) entries.push(e);
  entries.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  for (const e of entries) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory) {
      results.push(...await convertTree(path, options));
    } else if (/\.bin\.index(\.[^.]+)?\.json$/.test(e.name)) {
      await convertIndex(path, dir, e.name, options);
    } else if (e.name.endsWith(".bin") && (await Deno.stat(path)).isFile) {
      const r = await convertCheckpoint(path, `${dir}/${safetensorsName(e.name)}`, options);
      const mb = (n: number): string => `${(n / 2 ** 20).toFixed(1)} MiB`;
      options.log?.(
        r.skipped
          ? `${r.target} exists, kept (use --overwrite to replace)`
          : `${r.source} (${mb(r.sourceBytes)}) -> ${r.target} (${
            mb(r.targetBytes)
          }), ${r.tensors} tensors, verified`,
      );
      results.push(r);
    }
  }
  return results;
}

const USAGE = "usage: deno task convert DIR [--fp16] [--overwrite]";

async function main(args: readonly string[]): Promise<number> {
  const flags = args.filter((a) => a.startsWith("-"));
  const dirs = args.filter((a) => !a.startsWith("-"));
  const unknown = flags.filter((f) => f !== "--fp16" && f !== "--overwrite");
  if (dirs.length !== 1 || unknown.length > 0) {
    console.error(USAGE);
    return 2;
  }
  try {
    const results = await convertTree(dirs[0]!, {
      fp16: flags.includes("--fp16"),
      overwrite: flags.includes("--overwrite"),
      log: (line) => console.log(line),
    });
    if (results.length === 0) console.log(`no .bin files under ${dirs[0]}`);
    return 0;
  } catch (e) {
    if (!(e instanceof DiffusersError)) throw e;
    console.error(`error: ${e.message}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
