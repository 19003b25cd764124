/**
 * Keeps tfjs-wasm inside its 4 GiB heap with large models.
 *
 * On the WASM backend, the first conv or matmul with a weight makes
 * XNNPACK pack a copy of it, and that copy lives (in the same heap) as
 * long as the weight tensor does: every weight is held twice. Stable
 * Diffusion's UNet has 3.4 GB of float32 weights, so the copies cannot
 * fit. Once the live tensors exceed {@link WASM_PACKED_WEIGHTS_LIMIT},
 * {@link withPackedWeight} hands the layer a temporary copy of the weight
 * instead and disposes it right after the call, which frees its packed
 * form too: memory stays at one copy of the weights, at the price of
 * re-packing each weight on every call (a few ms per MB). Other backends,
 * and smaller models, use the weight itself.
 *
 * @example
 * ```ts
 * import { tf } from "../../lib/tf.ts";
 * import { withPackedWeight } from "./weight_packing.ts";
 * const w = tf.ones([4, 2]) as tf.Tensor2D;
 * const y = withPackedWeight(w, (b) => tf.matMul(tf.ones([3, 4]) as tf.Tensor2D, b as tf.Tensor2D));
 * ```
 *
 * @module
 */

import { tf } from "../../lib/tf.ts";

/**
 * Live tensor bytes above which WASM weights are packed per call: with at
 * most this much cached twice, weights, packed copies and activations stay
 * well inside the 4 GiB heap.
 */
export const WASM_PACKED_WEIGHTS_LIMIT = 1.5 * 2 ** 30;

/**
 * Runs `fn` (one conv or matmul) with `weight`, or, on WASM with more than
 * `limit` bytes of live tensors, with a copy of it that is disposed when
 * `fn` returns (so XNNPACK's packed copy is freed with it).
 *
 * @example
 * ```ts
 * import { tf } from "../../lib/tf.ts";
 * import { withPackedWeight } from "./weight_packing.ts";
 * const filter = tf.ones([3, 3, 8, 8]) as tf.Tensor4D;
 * const y = withPackedWeight(filter, (f) => tf.conv2d(tf.ones([1, 4, 4, 8]) as tf.Tensor4D,
 *   f as tf.Tensor4D, 1, "same"));
 * ```
 */
export function withPackedWeight<T>(
  weight: tf.Tensor,
  fn: (weight: tf.Tensor) => T,
  limit: number = WASM_PACKED_WEIGHTS_LIMIT,
): T {
  if (tf.getBackend() !== "wasm" || tf.memory().numBytes <= limit) {
    return fn(weight);
  }
  const copy = tf.clone(weight);
  try {
    return fn(copy);
  } finally {
    copy.dispose();
  }
}
