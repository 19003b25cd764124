/**
 * `nn.Linear`, with the PyTorch [out, in] weight stored as [in, out] so the
 * forward pass is one plain 2-D `tf.fused.matMul` with the bias fused (the
 * only matmul form that is fast on tfjs-wasm; for models too large to hold
 * their weights twice, only the packed copy is kept: see weight_packing.ts).
 *
 * @example
 * ```ts
 * import { tf } from "../../lib/tf.ts";
 * import { Linear } from "./linear.ts";
 * const fc = new Linear(4, 2).initialize(0);
 * const y = fc.forward(tf.ones([3, 4])); // [3, 2]
 * ```
 *
 * @module
 */

import { tf } from "../../lib/tf.ts";
import { Module, Parameter } from "./module.ts";
import { kaimingUniform } from "./init.ts";
import { packAndRelease } from "./weight_packing.ts";

/**
 * A fully connected layer; keys `weight` [out, in] and `bias` [out].
 *
 * @example
 * ```ts
 * import { Linear } from "./linear.ts";
 * const proj = new Linear(512, 1024, { bias: false });
 * ```
 */
export class Linear extends Module {
  /** Weight, PyTorch [out, in], stored [in, out]. */
  readonly weight: Parameter;
  /** Bias [out], or null. */
  readonly bias: Parameter | null;
  readonly #outFeatures: number;

  /** Same arguments as `nn.Linear(in_features, out_features, bias)`. */
  constructor(inFeatures: number, outFeatures: number, options: { bias?: boolean } = {}) {
    super();
    this.weight = new Parameter([outFeatures, inFeatures], "linear", kaimingUniform(inFeatures));
    this.bias = options.bias === false
      ? null
      : new Parameter([outFeatures], "none", kaimingUniform(inFeatures));
    this.#outFeatures = outFeatures;
  }

  /** Applies to the last axis of `x` (any rank ≥ 1). */
  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const lead = x.shape.slice(0, -1);
      const a = x.rank === 2 ? x as tf.Tensor2D : tf.reshape(x, [-1, x.shape[x.rank - 1]!]);
      const y = tf.fused.matMul({
        a: a as tf.Tensor2D,
        b: this.weight.value as tf.Tensor2D,
        bias: this.bias?.value,
      });
      return x.rank === 2 ? y : tf.reshape(y, [...lead, this.#outFeatures]);
    });
  }

  /** Keeps only XNNPACK's packed copy of the weight (see weight_packing.ts). */
  override packWeights(): void {
    packAndRelease(this.weight.value as tf.Tensor2D, this.bias?.value);
  }
}
