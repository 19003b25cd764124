/**
 * diffusers' `BasicTransformerBlock` with `norm_type="layer_norm"` (Stable
 * Diffusion, LDM): pre-LayerNorm self-attention (`norm1`, `attn1`),
 * cross-attention to the context (`norm2`, `attn2`) and a GEGLU MLP
 * (`norm3`, `ff`), each added back to the tokens. With
 * `onlyCrossAttention`, attn1 attends to the context too.
 *
 * @example
 * ```ts
 * import { tf } from "../../lib/tf.ts";
 * import { BasicTransformerBlock } from "./basic_transformer_block.ts";
 * const block = new BasicTransformerBlock({ dim: 32, heads: 4, dimHead: 8, crossAttentionDim: 16 })
 *   .initialize(0);
 * const y = block.forward(tf.zeros([2, 64, 32]), tf.zeros([2, 7, 16])); // [2, 64, 32]
 * ```
 *
 * @module
 */

import { tf } from "../../lib/tf.ts";
import { ArgumentError } from "../../lib/errors.ts";
import { Module } from "./module.ts";
import { LayerNorm } from "./layer_norm.ts";
import { CrossAttention } from "./cross_attention.ts";
import { FeedForward } from "./feed_forward.ts";

/** Options of {@link BasicTransformerBlock}, named after diffusers' arguments. */
export interface BasicTransformerBlockOptions {
  /** Channels of the tokens. */
  dim: number;
  /** Attention heads. */
  heads: number;
  /** Channels per head. */
  dimHead: number;
  /** Channels of the context; null for a block without attn2 (default null). */
  crossAttentionDim?: number | null;
  /** attn1 attends to the context instead of the tokens (default false). */
  onlyCrossAttention?: boolean;
  /** Bias on the q / k / v projections (default false). */
  attentionBias?: boolean;
  /** LayerNorm epsilon (default 1e-5). */
  normEps?: number;
}

/**
 * One transformer layer over tokens; keys `norm1`, `attn1`, `norm2`,
 * `attn2`, `norm3`, `ff`.
 *
 * @example
 * ```ts
 * import { BasicTransformerBlock } from "./basic_transformer_block.ts";
 * const sd = new BasicTransformerBlock({ dim: 320, heads: 8, dimHead: 40, crossAttentionDim: 768 });
 * ```
 */
export class BasicTransformerBlock extends Module {
  /** Norm before attn1. */
  readonly norm1: LayerNorm;
  /** Self-attention (cross-attention with `onlyCrossAttention`). */
  readonly attn1: CrossAttention;
  /** Norm before attn2, or null. */
  readonly norm2: LayerNorm | null;
  /** Cross-attention to the context, or null. */
  readonly attn2: CrossAttention | null;
  /** Norm before the MLP. */
  readonly norm3: LayerNorm;
  /** GEGLU MLP. */
  readonly ff: FeedForward;
  readonly #onlyCross: boolean;

  /** See {@link BasicTransformerBlockOptions}. */
  constructor(options: BasicTransformerBlockOptions) {
    super();
    const { dim, heads, dimHead, crossAttentionDim = null, onlyCrossAttention = false } = options;
    const eps = options.normEps ?? 1e-5;
    const bias = options.attentionBias ?? false;
    this.norm1 = new LayerNorm(dim, { eps });
    this.attn1 = new CrossAttention({
      queryDim: dim,
      heads,
      dimHead,
      bias,
      crossAttentionDim: onlyCrossAttention ? crossAttentionDim : null,
    });
    const cross = crossAttentionDim !== null;
    this.norm2 = cross ? new LayerNorm(dim, { eps }) : null;
    this.attn2 = cross
      ? new CrossAttention({ queryDim: dim, heads, dimHead, bias, crossAttentionDim })
      : null;
    this.norm3 = new LayerNorm(dim, { eps });
    this.ff = new FeedForward(dim);
    this.#onlyCross = onlyCrossAttention;
  }

  /** `x` [B, N, dim], `context` [B, M, crossAttentionDim] (required with attn2) → [B, N, dim]. */
  forward(x: tf.Tensor3D, context: tf.Tensor3D | null = null): tf.Tensor3D {
    if (this.attn2 && !context) {
      throw new ArgumentError(
        "BasicTransformerBlock: this block needs a context (cross-attention)",
      );
    }
    return tf.tidy(() => {
      const norm = (n: LayerNorm, t: tf.Tensor3D): tf.Tensor3D => n.forward(t) as tf.Tensor3D;
      let h = tf.add(
        this.attn1.forward(norm(this.norm1, x), this.#onlyCross ? context : null),
        x,
      ) as tf.Tensor3D;
      if (this.attn2 && this.norm2) {
        h = tf.add(this.attn2.forward(norm(this.norm2, h), context), h) as tf.Tensor3D;
      }
      return tf.add(this.ff.forward(norm(this.norm3, h)), h) as tf.Tensor3D;
    });
  }
}
