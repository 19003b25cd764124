/**
 * `loadSafetensors`: a safetensors file (path, URL or bytes) as tfjs
 * tensors — floating types as float32 (F16/BF16 widened), integer and
 * boolean types as int32.
 *
 * @example
 * ```ts
 * import { loadSafetensors } from "./load_safetensors.ts";
 * const tensors = await loadSafetensors("unet/diffusion_pytorch_model.safetensors");
 * console.log(Object.keys(tensors).length);
 * ```
 *
 * @module
 */

import { tf } from "../tf.ts";
import { parseSafetensors, type SafetensorsTensor, toFloat32, toInt32 } from "./safetensors.ts";
import { NotFoundError, WeightsError } from "../errors.ts";

const FLOAT_TYPES = new Set(["F64", "F32", "F16", "BF16"]);

async function readSource(source: string | URL): Promise<Uint8Array> {
  const url = source instanceof URL
    ? source
    : URL.canParse(source) && /^[a-z]+:\/\//i.test(source)
    ? new URL(source)
    : undefined;
  if (url && url.protocol !== "file:") {
    const response = await fetch(url);
    if (!response.ok) {
      await response.body?.cancel();
      throw new NotFoundError(`HTTP ${response.status}`, { file: url.href });
    }
    return new Uint8Array(await response.arrayBuffer());
  }
  try {
    return await Deno.readFile(url ?? (source as string));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new NotFoundError("file not found", { file: String(source) });
    }
    throw new WeightsError(`cannot read (${(e as Error).message})`, {
      file: String(source),
      cause: e,
    });
  }
}

/**
 * Converts one parsed safetensors entry to a tfjs tensor.
 *
 * @example
 * ```ts
 * import { parseSafetensors, serializeSafetensors } from "./safetensors.ts";
 * import { tensorFromSafetensors } from "./load_safetensors.ts";
 * const f = parseSafetensors(serializeSafetensors({ a: { dtype: "F32", shape: [1], data: new Float32Array([2]) } }));
 * tensorFromSafetensors(f.tensors.get("a")!).dispose();
 * ```
 */
export function tensorFromSafetensors(t: SafetensorsTensor): tf.Tensor {
  const shape = [...t.shape];
  return FLOAT_TYPES.has(t.dtype)
    ? tf.tensor(toFloat32(t), shape, "float32")
    : tf.tensor(toInt32(t), shape, "int32");
}

/**
 * Loads every tensor of a safetensors file. The caller owns the tensors.
 *
 * @example
 * ```ts
 * import { loadSafetensors } from "./load_safetensors.ts";
 * const tensors = await loadSafetensors(new URL("./weights.safetensors", import.meta.url));
 * ```
 */
export async function loadSafetensors(
  source: string | URL | Uint8Array,
): Promise<Record<string, tf.Tensor>> {
  const name = source instanceof Uint8Array ? "<memory>" : String(source);
  const bytes = source instanceof Uint8Array ? source : await readSource(source);
  const file = parseSafetensors(bytes, name);
  const out: Record<string, tf.Tensor> = {};
  for (const [key, t] of file.tensors) out[key] = tensorFromSafetensors(t);
  return out;
}
