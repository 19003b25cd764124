/**
 * `nn.LayerNorm` over the last axis (transformer blocks, text encoders):
 * two-pass mean and biased variance like PyTorch, optional affine weights.
 *
 * @example
 * ```ts
 * import { tf } from "../../lib/tf.ts";
 * import { LayerNorm } from "./layer_norm.ts";
 * const norm = new LayerNorm(32).initialize(0);
 * const y = norm.forward(tf.randomNormal([2, 7, 32], 0, 1, "float32", 1));
 * ```
 *
 * @module
 */

import { tf } from "../../lib/tf.ts";
import { Module, Parameter } from "./module.ts";

/** Options of {@link LayerNorm}. */
export interface LayerNormOptions {
  /** Added to the variance (PyTorch's default 1e-5). */
  eps?: number;
  /** Learnable `weight` and `bias` (PyTorch's `elementwise_affine`, default true). */
  affine?: boolean;
}

/**
 * Layer normalisation of the last axis; keys `weight` [D] and `bias` [D].
 *
 * @example
 * ```ts
 * import { LayerNorm } from "./layer_norm.ts";
 * const norm = new LayerNorm(768, { eps: 1e-5 });
 * ```
 */
export class LayerNorm extends Module {
  /** Scale [D], or null without affine weights. */
  readonly weight: Parameter | null;
  /** Shift [D], or null without affine weights. */
  readonly bias: Parameter | null;
  readonly #eps: number;

  /** Same arguments as `nn.LayerNorm(dim, eps, elementwise_affine)`. */
  constructor(dim: number, options: LayerNormOptions = {}) {
    super();
    const affine = options.affine ?? true;
    this.weight = affine ? new Parameter([dim], "none", { kind: "constant", value: 1 }) : null;
    this.bias = affine ? new Parameter([dim], "none", { kind: "constant", value: 0 }) : null;
    this.#eps = options.eps ?? 1e-5;
  }

  /** Normalises the last axis of `x` (any rank ≥ 1). */
  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const axis = x.rank - 1;
      const mean = tf.mean(x, axis, true);
      const centred = tf.sub(x, mean);
      const variance = tf.mean(tf.square(centred), axis, true);
      let y = tf.mul(centred, tf.rsqrt(tf.add(variance, this.#eps)));
      if (this.weight) y = tf.mul(y, this.weight.value);
      if (this.bias) y = tf.add(y, this.bias.value);
      return y;
    });
  }
}
