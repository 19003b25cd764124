/**
 * Self-attention of the text encoders, with transformers' key names
 * (`q_proj`, `k_proj`, `v_proj`, `out_proj`): CLIP's `CLIPAttention` and
 * LDMBert's `LDMBertAttention` (BART's). Tokens stay 2-D [batch·T, D], so
 * every projection is one plain 2-D matmul and the attention itself runs
 * per head through {@link multiHeadAttention} (the fast form on tfjs-wasm).
 * {@link causalMask} gives CLIP's additive causal mask.
 *
 * @example
 * ```ts
 * import { tf } from "../../lib/tf.ts";
 * import { causalMask, SelfAttention } from "./self_attention.ts";
 * const attn = new SelfAttention({ embedDim: 32, heads: 4 }).initialize(0);
 * const mask = causalMask(7);
 * const y = attn.forward(tf.zeros([2 * 7, 32]), 2, mask); // [14, 32]
 * ```
 *
 * @module
 */

import { tf } from "../../lib/tf.ts";
import { Module } from "./module.ts";
import { Linear } from "./linear.ts";
import { multiHeadAttention, SCORE_CHUNK_BYTES } from "./attention.ts";

/** PyTorch's `torch.finfo(torch.float32).min`, the value transformers masks with. */
export const FLOAT32_MIN = -3.4028234663852886e38;

/**
 * The additive causal mask [n, n]: 0 on and below the diagonal,
 * {@link FLOAT32_MIN} above it (token i attends to tokens 0..i), as
 * transformers' `_build_causal_attention_mask`.
 *
 * @example
 * ```ts
 * import { causalMask } from "./self_attention.ts";
 * const m = causalMask(3); // [[0, min, min], [0, 0, min], [0, 0, 0]]
 * m.dispose();
 * ```
 */
export function causalMask(n: number): tf.Tensor2D {
  const values = new Float32Array(n * n);
  for (let i = 0; i < n; i++) values.fill(FLOAT32_MIN, i * n + i + 1, (i + 1) * n);
  return tf.tensor2d(values, [n, n]);
}

/** Options of {@link SelfAttention}. */
export interface SelfAttentionOptions {
  /** Width of the tokens (in and out). */
  embedDim: number;
  /** Number of heads. */
  heads: number;
  /** Channels per head (default embedDim / heads); the inner width is heads · headDim. */
  headDim?: number;
  /** Bias on q_proj / k_proj / v_proj (default true; LDMBert has none). out_proj always has one. */
  qkvBias?: boolean;
}

/**
 * Multi-head self-attention over 2-D tokens; keys `q_proj`, `k_proj`,
 * `v_proj`, `out_proj`. Scores are scaled by headDim^-0.5.
 *
 * @example
 * ```ts
 * import { SelfAttention } from "./self_attention.ts";
 * const attn = new SelfAttention({ embedDim: 1280, heads: 8, headDim: 64, qkvBias: false });
 * console.log(attn.parameterCount()); // 3 * 1280 * 512 + 512 * 1280 + 1280
 * ```
 */
export class SelfAttention extends Module {
  /** Key projection, D → heads·headDim. */
  readonly k_proj: Linear;
  /** Value projection, D → heads·headDim. */
  readonly v_proj: Linear;
  /** Query projection, D → heads·headDim. */
  readonly q_proj: Linear;
  /** Output projection, heads·headDim → D. */
  readonly out_proj: Linear;
  /** Number of heads. */
  readonly heads: number;
  readonly #scale: number;

  /** See {@link SelfAttentionOptions}. */
  constructor(options: SelfAttentionOptions) {
    super();
    const { embedDim, heads, qkvBias = true } = options;
    const headDim = options.headDim ?? embedDim / heads;
    const inner = heads * headDim;
    this.k_proj = new Linear(embedDim, inner, { bias: qkvBias });
    this.v_proj = new Linear(embedDim, inner, { bias: qkvBias });
    this.q_proj = new Linear(embedDim, inner, { bias: qkvBias });
    this.out_proj = new Linear(inner, embedDim);
    this.heads = heads;
    this.#scale = 1 / Math.sqrt(headDim);
  }

  /**
   * Tokens [batch·T, D] (batch-major) → [batch·T, D]. `scoreBias` [T, T]
   * is added to every head's scores before the softmax (e.g. {@link causalMask}).
   */
  forward(x: tf.Tensor2D, batch: number, scoreBias?: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() => {
      const q = this.q_proj.forward(x) as tf.Tensor2D;
      const k = this.k_proj.forward(x) as tf.Tensor2D;
      const v = this.v_proj.forward(x) as tf.Tensor2D;
      const attn = multiHeadAttention(
        q,
        k,
        v,
        batch,
        this.heads,
        this.#scale,
        SCORE_CHUNK_BYTES,
        scoreBias,
      );
      return this.out_proj.forward(attn) as tf.Tensor2D;
    });
  }
}
