/**
 * diffusers' `Attention` (classic `AttnProcessor` math: optional GroupNorm,
 * q/k/v projections, softmax(q·kᵀ·scale)·v per head, `to_out.0`, optional
 * residual, divided by `rescale_output_factor`), for NHWC feature maps.
 *
 * Speed on tfjs-wasm: only plain 2-D `matMul` runs at full speed (batched
 * or transposed matmuls are 15-40× slower), so {@link multiHeadAttention}
 * projects all tokens with one 2-D matmul each, transposes K once, and
 * loops over (batch, head) with 2-D matmuls on `tf.slice`d blocks. Score
 * matrices are chunked by query rows so none exceeds
 * {@link SCORE_CHUNK_BYTES} (WebGPU silently breaks on buffers ≥ 128 MiB).
 *
 * Old checkpoints (diffusers' former `AttentionBlock`, e.g.
 * google/ddpm-cat-256) name the projections `query`, `key`, `value` and
 * `proj_attn`; with `fromDeprecatedAttnBlock` those keys are renamed on
 * load, as diffusers' `_convert_deprecated_attention_blocks` does.
 *
 * @example
 * ```ts
 * import { tf } from "../../lib/tf.ts";
 * import { Attention } from "./attention.ts";
 * const attn = new Attention({ queryDim: 32, heads: 1, dimHead: 32, normNumGroups: 8, bias: true,
 *   residualConnection: true }).initialize(0);
 * const y = attn.forward(tf.zeros([1, 4, 4, 32])); // [1, 4, 4, 32]
 * ```
 *
 * @module
 */

import { tf } from "../../lib/tf.ts";
import { Module } from "./module.ts";
import { Linear } from "./linear.ts";
import { GroupNorm } from "./group_norm.ts";
import { wgslKernelsActive } from "./webgpu/wgsl_kernels.ts";
import { attentionWebGPU, MAX_KERNEL_HEAD_DIM } from "./webgpu/attention_program.ts";
// Side effect: tfjs-wasm slices without copying the whole input first.
import "./wasm_slice.ts";

/** Largest score block (query rows × keys × 4 bytes) computed at once: 64 MiB. */
export const SCORE_CHUNK_BYTES = 64 * 1024 * 1024;

/**
 * softmax(q·kᵀ·scale)·v for every (batch, head), all as 2-D matmuls.
 * `q` is [batch·nq, heads·d], `k` and `v` are [batch·nk, heads·d]; the result
 * is [batch·nq, heads·d] with heads concatenated like diffusers'
 * `batch_to_head_dim`. Score blocks are at most `maxScoreBytes` (query rows
 * are chunked to fit). `scoreBias` [nq, nk], if given, is added to every
 * (batch, head)'s scores before the softmax: an additive mask, 0 where a
 * query may attend and a large negative number where not (CLIP's causal mask).
 * On the webgpu backend (heads of up to {@link MAX_KERNEL_HEAD_DIM} channels)
 * one flash-style WGSL program computes it without any score matrix
 * (webgpu/attention_program.ts; off with `DIFFUSERS_WGSL=0`).
 *
 * @example
 * ```ts
 * import { tf } from "../../lib/tf.ts";
 * import { multiHeadAttention } from "./attention.ts";
 * const x = tf.randomNormal([2 * 16, 64]) as tf.Tensor2D;
 * const y = multiHeadAttention(x, x, x, 2, 8, 1 / Math.sqrt(8)); // [32, 64]
 * ```
 */
export function multiHeadAttention(
  q: tf.Tensor2D,
  k: tf.Tensor2D,
  v: tf.Tensor2D,
  batch: number,
  heads: number,
  scale: number,
  maxScoreBytes: number = SCORE_CHUNK_BYTES,
  scoreBias?: tf.Tensor2D,
): tf.Tensor2D {
  if (wgslKernelsActive() && q.shape[1] / heads <= MAX_KERNEL_HEAD_DIM) {
    return attentionWebGPU(q, k, v, batch, heads, scale, scoreBias);
  }
  return tf.tidy(() => {
    const nq = q.shape[0] / batch;
    const nk = k.shape[0] / batch;
    const d = q.shape[1] / heads;
    const rowsPerChunk = Math.max(1, Math.floor(maxScoreBytes / (nk * 4)));
    const qs = tf.mul(q, scale) as tf.Tensor2D;
    const perBatch: tf.Tensor2D[] = [];
    for (let b = 0; b < batch; b++) {
      // Row blocks are contiguous (cheap slices); K is transposed once per batch
      // element so each head's Kᵀ is a contiguous row block too.
      const qb = rows(qs, b * nq, nq);
      const kT = tf.transpose(rows(k, b * nk, nk)) as tf.Tensor2D;
      const vb = rows(v, b * nk, nk);
      const perHead: tf.Tensor2D[] = [];
      for (let h = 0; h < heads; h++) {
        // Each head in its own tidy, so at most one score block is alive at a time.
        perHead.push(tf.tidy(() => {
          const qh = columns(qb, h * d, d);
          const kh = rows(kT, h * d, d);
          const vh = columns(vb, h * d, d);
          const chunks: tf.Tensor2D[] = [];
          for (let r = 0; r < nq; r += rowsPerChunk) {
            const n = Math.min(rowsPerChunk, nq - r);
            chunks.push(tf.tidy(() => {
              const scores = tf.matMul(rows(qh, r, n), kh);
              const biased = scoreBias ? tf.add(scores, rows(scoreBias, r, n)) : scores;
              return tf.matMul(tf.softmax(biased), vh);
            }));
          }
          return chunks.length === 1 ? chunks[0]! : tf.concat(chunks, 0);
        }));
      }
      perBatch.push(heads === 1 ? perHead[0]! : tf.concat(perHead, 1));
    }
    return batch === 1 ? perBatch[0]! : tf.concat(perBatch, 0);
  });
}

/** Rows [start, start + n) of `x` (no copy when that is all of it). */
function rows(x: tf.Tensor2D, start: number, n: number): tf.Tensor2D {
  return start === 0 && n === x.shape[0] ? x : tf.slice(x, [start, 0], [n, x.shape[1]]);
}

/** Columns [start, start + n) of `x` (no copy when that is all of it). */
function columns(x: tf.Tensor2D, start: number, n: number): tf.Tensor2D {
  return start === 0 && n === x.shape[1] ? x : tf.slice(x, [0, start], [x.shape[0], n]);
}

/** Options of {@link Attention}, named after diffusers' arguments. */
export interface AttentionOptions {
  /** Channels of the input (and, by default, of the output). */
  queryDim: number;
  /** Number of heads (default 8). */
  heads?: number;
  /** Channels per head (default 64); the inner width is heads · dimHead. */
  dimHead?: number;
  /** Bias on to_q / to_k / to_v (default false). */
  bias?: boolean;
  /** Bias on to_out.0 (default true). */
  outBias?: boolean;
  /** GroupNorm groups applied to the input first, or null for none (default null). */
  normNumGroups?: number | null;
  /** GroupNorm epsilon (default 1e-5). */
  eps?: number;
  /** The output is divided by this (default 1). */
  rescaleOutputFactor?: number;
  /** Add the input to the output (default false). */
  residualConnection?: boolean;
  /** Accept the old `query` / `key` / `value` / `proj_attn` keys (default false). */
  fromDeprecatedAttnBlock?: boolean;
}

/**
 * Self-attention over the pixels of an NHWC map; keys `group_norm`, `to_q`,
 * `to_k`, `to_v`, `to_out.0`.
 *
 * @example
 * ```ts
 * import { Attention } from "./attention.ts";
 * const attn = new Attention({ queryDim: 512, heads: 64, dimHead: 8, normNumGroups: 32 });
 * ```
 */
export class Attention extends Module {
  /** Norm of the input, or null. */
  readonly group_norm: GroupNorm | null;
  /** Query projection. */
  readonly to_q: Linear;
  /** Key projection. */
  readonly to_k: Linear;
  /** Value projection. */
  readonly to_v: Linear;
  /** Output projection (diffusers' `to_out[1]` is dropout, a no-op here). */
  readonly to_out: [Linear];
  /** Number of heads. */
  readonly heads: number;
  readonly #scale: number;
  readonly #rescale: number;
  readonly #residual: boolean;
  readonly #legacy: boolean;

  /** See {@link AttentionOptions}. */
  constructor(options: AttentionOptions) {
    super();
    const { queryDim, heads = 8, dimHead = 64, bias = false, normNumGroups = null } = options;
    const inner = heads * dimHead;
    this.group_norm = normNumGroups === null
      ? null
      : new GroupNorm(normNumGroups, queryDim, options.eps ?? 1e-5);
    this.to_q = new Linear(queryDim, inner, { bias });
    this.to_k = new Linear(queryDim, inner, { bias });
    this.to_v = new Linear(queryDim, inner, { bias });
    this.to_out = [new Linear(inner, queryDim, { bias: options.outBias ?? true })];
    this.heads = heads;
    this.#scale = 1 / Math.sqrt(dimHead);
    this.#rescale = options.rescaleOutputFactor ?? 1;
    this.#residual = options.residualConnection ?? false;
    this.#legacy = options.fromDeprecatedAttnBlock ?? false;
  }

  /** The renames of diffusers' `_convert_deprecated_attention_blocks`. */
  protected override legacyKeys(): Readonly<Record<string, string>> {
    if (!this.#legacy) return {};
    const out: Record<string, string> = {};
    for (const [from, to] of [["query", "to_q"], ["key", "to_k"], ["value", "to_v"]]) {
      out[`${from}.weight`] = `${to}.weight`;
      out[`${from}.bias`] = `${to}.bias`;
    }
    out["proj_attn.weight"] = "to_out.0.weight";
    out["proj_attn.bias"] = "to_out.0.bias";
    return out;
  }

  /** NHWC [B, H, W, C] → [B, H, W, C]. */
  forward(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      const [b, h, w, c] = x.shape;
      const normed = this.group_norm ? this.group_norm.forward(x) : x;
      const flat = tf.reshape(normed, [b * h * w, c]);
      const q = this.to_q.forward(flat) as tf.Tensor2D;
      const k = this.to_k.forward(flat) as tf.Tensor2D;
      const v = this.to_v.forward(flat) as tf.Tensor2D;
      const attn = multiHeadAttention(q, k, v, b, this.heads, this.#scale);
      let out: tf.Tensor = tf.reshape(this.to_out[0].forward(attn), [b, h, w, -1]);
      if (this.#residual) out = tf.add(out, x);
      if (this.#rescale !== 1) out = tf.div(out, this.#rescale);
      return out as tf.Tensor4D;
    });
  }
}
