/**
 * `nn.GroupNorm` over channels-last tensors, optionally followed by SiLU
 * (diffusers always applies its nonlinearity right after a norm, so the
 * pair is one call).
 *
 * Statistics come from `tf.avgPool` over the whole spatial extent (one
 * mean per batch and channel, then averaged within each group): on
 * tfjs-wasm that is XNNPACK's pooling, about 3× faster than `tf.moments`
 * over [B, H·W, G, C/G] (which transposes, and broadcasts over a size-1
 * inner axis) and about 50× more accurate for 64K-pixel maps (tf.mean sums
 * naively in float32). Every broadcast is over a per-channel [C] vector,
 * the fast broadcast pattern. Variance is two-pass (of the centred values),
 * biased, like PyTorch. On the webgpu backend one fused WGSL program does
 * all of it instead (webgpu/group_norm_program.ts; off with `DIFFUSERS_WGSL=0`);
 * on the wasm backend with WebAssembly SIMD and C a multiple of 4, three
 * fused SIMD passes over the heap (group_norm_simd.ts; off with
 * `setGroupNormSimd(false)`).
 *
 * @example
 * ```ts
 * import { tf } from "../../lib/tf.ts";
 * import { GroupNorm } from "./group_norm.ts";
 * const norm = new GroupNorm(8, 32, 1e-6).initialize(0);
 * const y = norm.forward(tf.randomNormal([1, 4, 4, 32]), true); // GroupNorm + SiLU
 * ```
 *
 * @module
 */

import { tf } from "../../lib/tf.ts";
import { ConfigError } from "../../lib/errors.ts";
import { Module, Parameter } from "./module.ts";
import { silu } from "./activations.ts";
import { wgslKernelsActive } from "./webgpu/wgsl_kernels.ts";
import { groupNormWebGPU } from "./webgpu/group_norm_program.ts";
import { groupNormSimd } from "./group_norm_simd.ts";

/**
 * Group normalisation with affine weights; keys `weight` [C] and `bias` [C].
 *
 * @example
 * ```ts
 * import { GroupNorm } from "./group_norm.ts";
 * const norm = new GroupNorm(32, 128, 1e-5);
 * ```
 */
export class GroupNorm extends Module {
  /** Scale γ [C], initialised to 1. */
  readonly weight: Parameter;
  /** Shift β [C], initialised to 0. */
  readonly bias: Parameter;
  /** Number of groups. */
  readonly numGroups: number;
  /** Number of channels. */
  readonly numChannels: number;
  /** Added to the variance. */
  readonly eps: number;

  /** Same arguments as `nn.GroupNorm(num_groups, num_channels, eps)`; C must divide by G. */
  constructor(numGroups: number, numChannels: number, eps = 1e-5) {
    super();
    if (!(numGroups > 0) || numChannels % numGroups !== 0) {
      throw new ConfigError(
        `GroupNorm: ${numChannels} channels cannot be split into ${numGroups} groups`,
      );
    }
    this.weight = new Parameter([numChannels], "none", { kind: "constant", value: 1 });
    this.bias = new Parameter([numChannels], "none", { kind: "constant", value: 0 });
    this.numGroups = numGroups;
    this.numChannels = numChannels;
    this.eps = eps;
  }

  /** Normalises `x` [B, ..., C] (channels last); with `withSilu`, applies SiLU after. */
  forward<T extends tf.Tensor>(x: T, withSilu = false): T {
    if (wgslKernelsActive() && x.shape[x.rank - 1] === this.numChannels) {
      const { weight, bias, numGroups, eps } = this;
      return groupNormWebGPU(x, weight.value, bias.value, numGroups, eps, withSilu);
    }
    if (x.shape[x.rank - 1] === this.numChannels) {
      const { weight, bias, numGroups, eps } = this;
      const fused = groupNormSimd(x, weight.value, bias.value, numGroups, eps, withSilu);
      if (fused) return fused;
    }
    return tf.tidy(() => {
      const b = x.shape[0]!;
      const c = this.numChannels;
      const g = this.numGroups;
      const n = x.size / (b * c);
      const x4 = tf.reshape(x, [b, n, 1, c]) as tf.Tensor4D;
      // Per-(batch, channel) mean of `t`, averaged over each group, spread back to [B, 1, 1, C].
      const groupMean = (t: tf.Tensor4D): tf.Tensor => {
        const perChannel = tf.reshape(tf.avgPool(t, [n, 1], [n, 1], "valid"), [b, g, c / g]);
        return tf.reshape(tf.tile(tf.mean(perChannel, 2, true), [1, 1, c / g]), [b, 1, 1, c]);
      };
      const centred = tf.sub(x4, groupMean(x4)) as tf.Tensor4D;
      const variance = groupMean(tf.square(centred));
      const scale = tf.mul(tf.rsqrt(tf.add(variance, this.eps)), this.weight.value);
      const y = tf.add(tf.mul(centred, scale), this.bias.value);
      return tf.reshape(withSilu ? silu(y) : y, x.shape) as T;
    });
  }
}
