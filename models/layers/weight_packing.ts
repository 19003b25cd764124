/**
 * Keeps tfjs-wasm inside its 4 GiB heap with large models, without
 * re-packing weights on every call.
 *
 * On the WASM backend, the first matmul with a weight makes XNNPACK pack a
 * copy of it into its own operator (tfjs caches the operator under the
 * weight's id, the bias' id and the activation), and that copy lives as
 * long as the weight tensor does: every weight is held twice (three times
 * for tfjs' conv2d, which also keeps a transposed copy). Stable
 * Diffusion's UNet has 3.4 GB of float32 weights, so that cannot fit.
 *
 * A model whose weights exceed {@link packedWeightsLimit} (SD's and LDM's
 * UNets, LDMBert) has every Linear and Conv2d weight packed as it loads
 * ({@link packAndRelease}: one matmul on a zero row, then the weight's own
 * heap copy is freed), so XNNPACK's packed copy is the only one and the
 * heap never holds two copies of more than one layer: packing at load
 * rather than at first use also keeps the heap from fragmenting (each freed
 * weight leaves a hole the next one of its size fills). Every later call
 * with the same weight, bias and activation is served from tfjs' operator
 * cache; convolutions of such models run as one 2-D matmul per kernel tap.
 * A released weight stays a valid tensor (disposing it frees the packed
 * copy too) but its values can no longer be read: layers check
 * {@link isReleased} and never hand it to anything else. Smaller models, and
 * other backends, keep their weights as they are. (`tf.memory()` still
 * counts released weights: their packed copies take the same room.)
 *
 * @example
 * ```ts
 * import { ready, tf } from "../../lib/backend.ts";
 * import { isReleased, packAndRelease } from "./weight_packing.ts";
 * await ready("wasm");
 * const w = tf.ones([4, 2]) as tf.Tensor2D;
 * const b = tf.zeros([2]);
 * packAndRelease(w, b);
 * console.log(isReleased(w)); // true
 * const y = tf.fused.matMul({ a: tf.ones([3, 4]) as tf.Tensor2D, b: w, bias: b }); // [3, 2] of 4s
 * ```
 *
 * @module
 */

import { tf } from "../../lib/tf.ts";

/** The parts of tfjs-wasm's `BackendWasm` used to free a weight's heap copy. */
interface WasmBackendInternals {
  dataIdMap: { get(dataId: object): { memoryOffset: number } | undefined };
  wasm: { _malloc(bytes: number): number; _free(offset: number): void };
}

/**
 * Default weight bytes of one model above which its weights are kept packed
 * only (1.5 GiB): up to this much held twice (or three times, by tfjs'
 * conv2d), activations still fit in the 4 GiB heap.
 */
export const WASM_PACKED_WEIGHTS_LIMIT = 1.5 * 2 ** 30;

let limit = WASM_PACKED_WEIGHTS_LIMIT;
const released = new WeakSet<object>();

/**
 * Sets the weight bytes of one model above which its weights are kept
 * packed only; returns the previous limit (tests use 0 to force it).
 *
 * @example
 * ```ts
 * import { setPackedWeightsLimit } from "./weight_packing.ts";
 * const previous = setPackedWeightsLimit(0);
 * setPackedWeightsLimit(previous);
 * ```
 */
export function setPackedWeightsLimit(bytes: number): number {
  const previous = limit;
  limit = bytes;
  return previous;
}

/**
 * The limit in force (see {@link setPackedWeightsLimit}).
 *
 * @example
 * ```ts
 * import { packedWeightsLimit } from "./weight_packing.ts";
 * console.log(packedWeightsLimit()); // 1610612736
 * ```
 */
export function packedWeightsLimit(): number {
  return limit;
}

/**
 * Whether a model with `bytes` of weights keeps them packed only: on WASM,
 * above the limit.
 *
 * @example
 * ```ts
 * import { packsWeights } from "./weight_packing.ts";
 * console.log(packsWeights(3.4e9)); // true on wasm (SD's UNet)
 * ```
 */
export function packsWeights(bytes: number): boolean {
  return tf.getBackend() === "wasm" && bytes > limit;
}

/**
 * Whether `weight`'s own values were freed (only XNNPACK's packed copy is left).
 *
 * @example
 * ```ts
 * import { tf } from "../../lib/tf.ts";
 * import { isReleased } from "./weight_packing.ts";
 * console.log(isReleased(tf.ones([2, 2]))); // false
 * ```
 */
export function isReleased(weight: tf.Tensor): boolean {
  return released.has(weight.dataId);
}

/**
 * Frees a weight's heap copy (tfjs-wasm 4.22 internals), for a weight whose
 * values are never read again because packed forms of it are kept (by
 * {@link packAndRelease}, or as slices packed separately). The tensor stays
 * valid for `dispose()`. On other backends, nothing happens.
 *
 * @example
 * ```ts
 * import { tf } from "../../lib/tf.ts";
 * import { isReleased, releaseWeight } from "./weight_packing.ts";
 * const w = tf.ones([3, 3]);
 * releaseWeight(w);
 * console.log(isReleased(w)); // true on wasm
 * ```
 */
export function releaseWeight(weight: tf.Tensor): void {
  if (tf.getBackend() !== "wasm") return;
  const backend = tf.backend() as unknown as WasmBackendInternals;
  const info = backend.dataIdMap.get(weight.dataId);
  if (!info || released.has(weight.dataId)) return;
  backend.wasm._free(info.memoryOffset);
  // disposeData frees memoryOffset again: give it a block of its own.
  info.memoryOffset = backend.wasm._malloc(4) >>> 0;
  released.add(weight.dataId);
}

/**
 * Packs `weight` [in, out] (with `bias`) into XNNPACK's operator cache by
 * one matmul on a zero row, then frees the weight's own heap copy. Later
 * `tf.fused.matMul({ a, b: weight, bias })` calls (same bias tensor, no
 * activation) run from the packed copy. Only on the wasm backend.
 *
 * @example
 * ```ts
 * import { tf } from "../../lib/tf.ts";
 * import { packAndRelease } from "./weight_packing.ts";
 * const w = tf.ones([3, 4]) as tf.Tensor2D;
 * packAndRelease(w, undefined);
 * ```
 */
export function packAndRelease(weight: tf.Tensor2D, bias: tf.Tensor | undefined): void {
  if (isReleased(weight)) return;
  tf.tidy(() => {
    tf.fused.matMul({ a: tf.zeros([1, weight.shape[0]]), b: weight, bias });
  });
  releaseWeight(weight);
}
