/**
 * diffusers' `Attention` as the transformer blocks use it: tokens attend to
 * themselves (`attn1`) or to a context such as text embeddings (`attn2`,
 * cross-attention), with no group norm, residual or rescaling (the spatial
 * form of the same module is {@link Attention} in attention.ts).
 *
 * The heads run through {@link multiHeadAttention}: plain 2-D matmuls per
 * (batch, head), with score blocks chunked by query rows below 64 MiB, so a
 * 4096-token self-attention (Stable Diffusion at 512²) never holds a
 * [heads, 4096, 4096] tensor.
 *
 * @example
 * ```ts
 * import { tf } from "../../lib/tf.ts";
 * import { CrossAttention } from "./cross_attention.ts";
 * const attn = new CrossAttention({ queryDim: 32, crossAttentionDim: 16, heads: 4, dimHead: 8 })
 *   .initialize(0);
 * const y = attn.forward(tf.zeros([2, 64, 32]), tf.zeros([2, 7, 16])); // [2, 64, 32]
 * ```
 *
 * @module
 */

import { tf } from "../../lib/tf.ts";
import { ArgumentError } from "../../lib/errors.ts";
import { Module } from "./module.ts";
import { Linear } from "./linear.ts";
import { multiHeadAttention } from "./attention.ts";

/** Options of {@link CrossAttention}, named after diffusers' `Attention` arguments. */
export interface CrossAttentionOptions {
  /** Channels of the tokens (input and output). */
  queryDim: number;
  /** Channels of the context that to_k / to_v project, or null for self-attention (default null). */
  crossAttentionDim?: number | null;
  /** Number of heads. */
  heads: number;
  /** Channels per head; the inner width is heads · dimHead. */
  dimHead: number;
  /** Bias on to_q / to_k / to_v (default false). */
  bias?: boolean;
  /** Bias on to_out.0 (default true). */
  outBias?: boolean;
}

/**
 * Multi-head attention over tokens; keys `to_q`, `to_k`, `to_v`, `to_out.0`.
 *
 * @example
 * ```ts
 * import { CrossAttention } from "./cross_attention.ts";
 * const attn2 = new CrossAttention({ queryDim: 320, crossAttentionDim: 768, heads: 8, dimHead: 40 });
 * ```
 */
export class CrossAttention extends Module {
  /** Query projection. */
  readonly to_q: Linear;
  /** Key projection (from the context's channels for cross-attention). */
  readonly to_k: Linear;
  /** Value projection (from the context's channels for cross-attention). */
  readonly to_v: Linear;
  /** Output projection (diffusers' `to_out[1]` is dropout, a no-op here). */
  readonly to_out: [Linear];
  /** Number of heads. */
  readonly heads: number;
  /** Channels the keys and values are projected from. */
  readonly contextDim: number;
  readonly #scale: number;

  /** See {@link CrossAttentionOptions}. */
  constructor(options: CrossAttentionOptions) {
    super();
    const { queryDim, heads, dimHead, bias = false } = options;
    const inner = heads * dimHead;
    this.contextDim = options.crossAttentionDim ?? queryDim;
    this.to_q = new Linear(queryDim, inner, { bias });
    this.to_k = new Linear(this.contextDim, inner, { bias });
    this.to_v = new Linear(this.contextDim, inner, { bias });
    this.to_out = [new Linear(inner, queryDim, { bias: options.outBias ?? true })];
    this.heads = heads;
    this.#scale = 1 / Math.sqrt(dimHead);
  }

  /**
   * `x` [B, N, queryDim] attends to `context` [B, M, contextDim], or to
   * itself when `context` is null; → [B, N, queryDim].
   */
  forward(x: tf.Tensor3D, context: tf.Tensor3D | null = null): tf.Tensor3D {
    const [b, n, c] = x.shape;
    const source = context ?? x;
    if (source.shape[0] !== b || source.shape[2] !== this.contextDim) {
      throw new ArgumentError(
        `CrossAttention: context must be [${b}, M, ${this.contextDim}], got [${source.shape}]`,
      );
    }
    return tf.tidy(() => {
      const flat = tf.reshape(x, [b * n, c]);
      const kv = context ? tf.reshape(context, [-1, this.contextDim]) : flat;
      const q = this.to_q.forward(flat) as tf.Tensor2D;
      const k = this.to_k.forward(kv) as tf.Tensor2D;
      const v = this.to_v.forward(kv) as tf.Tensor2D;
      const attn = multiHeadAttention(q, k, v, b, this.heads, this.#scale);
      return tf.reshape(this.to_out[0].forward(attn), [b, n, -1]) as tf.Tensor3D;
    });
  }
}
