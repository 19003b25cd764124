/**
 * diffusers' `Transformer2DModel` for continuous (feature-map) input, as
 * the cross-attention UNet blocks use it: GroupNorm (eps 1e-6) →
 * `proj_in` (1×1 conv, or Linear with `useLinearProjection` as in SD 2.x)
 * → {@link BasicTransformerBlock}s over the H·W tokens → `proj_out` → plus
 * the input. NHWC in and out; in channels-last layout the 1×1 conv and the
 * Linear are the same per-pixel matmul, so only the key shapes differ
 * ([O, I, 1, 1] vs [O, I]).
 *
 * @example
 * ```ts
 * import { tf } from "../lib/tf.ts";
 * import { Transformer2DModel } from "./transformer_2d.ts";
 * const t = new Transformer2DModel({ numAttentionHeads: 2, attentionHeadDim: 8, inChannels: 16,
 *   normNumGroups: 8, crossAttentionDim: 32 }).initialize(0);
 * const y = t.forward(tf.zeros([2, 8, 8, 16]), tf.zeros([2, 7, 32])); // [2, 8, 8, 16]
 * ```
 *
 * @module
 */

import { tf } from "../lib/tf.ts";
import { Module } from "./layers/module.ts";
import { Conv2d } from "./layers/conv2d.ts";
import { Linear } from "./layers/linear.ts";
import { GroupNorm } from "./layers/group_norm.ts";
import { BasicTransformerBlock } from "./layers/basic_transformer_block.ts";

/** Options of {@link Transformer2DModel}, named after diffusers' arguments. */
export interface Transformer2DOptions {
  /** Attention heads. */
  numAttentionHeads: number;
  /** Channels per head; the inner width is heads · attentionHeadDim. */
  attentionHeadDim: number;
  /** Channels of the feature map (in and out). */
  inChannels: number;
  /** Transformer blocks (default 1). */
  numLayers?: number;
  /** GroupNorm groups (default 32). */
  normNumGroups?: number;
  /** Channels of the context; null for self-attention only (default null). */
  crossAttentionDim?: number | null;
  /** Linear proj_in / proj_out instead of 1×1 convs (default false). */
  useLinearProjection?: boolean;
  /** attn1 attends to the context as well (default false). */
  onlyCrossAttention?: boolean;
}

/**
 * Spatial transformer; keys `norm`, `proj_in`, `transformer_blocks.i`, `proj_out`.
 *
 * @example
 * ```ts
 * import { Transformer2DModel } from "./transformer_2d.ts";
 * const sd2 = new Transformer2DModel({ numAttentionHeads: 5, attentionHeadDim: 64, inChannels: 320,
 *   crossAttentionDim: 1024, useLinearProjection: true });
 * ```
 */
export class Transformer2DModel extends Module {
  /** Norm of the input. */
  readonly norm: GroupNorm;
  /** Channels → inner width. */
  readonly proj_in: Conv2d | Linear;
  /** The transformer layers. */
  readonly transformer_blocks: BasicTransformerBlock[];
  /** Inner width → channels. */
  readonly proj_out: Conv2d | Linear;
  readonly #inner: number;

  /** See {@link Transformer2DOptions}. */
  constructor(o: Transformer2DOptions) {
    super();
    const inner = o.numAttentionHeads * o.attentionHeadDim;
    const c = o.inChannels;
    this.norm = new GroupNorm(o.normNumGroups ?? 32, c, 1e-6);
    const linear = o.useLinearProjection ?? false;
    this.proj_in = linear ? new Linear(c, inner) : new Conv2d(c, inner, 1);
    this.transformer_blocks = Array.from(
      { length: o.numLayers ?? 1 },
      () =>
        new BasicTransformerBlock({
          dim: inner,
          heads: o.numAttentionHeads,
          dimHead: o.attentionHeadDim,
          crossAttentionDim: o.crossAttentionDim ?? null,
          onlyCrossAttention: o.onlyCrossAttention ?? false,
        }),
    );
    this.proj_out = linear ? new Linear(inner, c) : new Conv2d(inner, c, 1);
    this.#inner = inner;
  }

  /** `x` NHWC [B, H, W, C], `context` [B, M, crossAttentionDim] → [B, H, W, C]. */
  forward(x: tf.Tensor4D, context: tf.Tensor3D | null = null): tf.Tensor4D {
    return tf.tidy(() => {
      const [b, h, w, c] = x.shape;
      // A 1x1 conv on NHWC and a Linear on the flattened pixels are the same matmul.
      const project = (layer: Conv2d | Linear, t: tf.Tensor4D): tf.Tensor4D =>
        layer.forward(t) as tf.Tensor4D;
      let tokens = tf.reshape(project(this.proj_in, this.norm.forward(x)), [
        b,
        h * w,
        this.#inner,
      ]) as tf.Tensor3D;
      for (const block of this.transformer_blocks) tokens = block.forward(tokens, context);
      const out = project(this.proj_out, tf.reshape(tokens, [b, h, w, this.#inner]));
      return tf.add(tf.reshape(out, [b, h, w, c]), x) as tf.Tensor4D;
    });
  }
}
