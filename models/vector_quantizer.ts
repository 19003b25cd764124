/**
 * diffusers' `VectorQuantizer` (the VQ-VAE codebook of {@link VQModel}),
 * in NHWC: each latent vector is replaced by its nearest codebook entry.
 *
 * Nearest entries come from squared distances ‖h‖² − 2·h·Eᵀ + ‖E‖² as one
 * 2-D matmul (the fast path on WASM; PyTorch's `cdist` computes the same
 * expansion), chunked by rows so the distance block stays within a byte
 * budget (CompVis/ldm-celebahq-256: 4096 latents × 8192 entries would be
 * 128 MiB). As in diffusers (legacy mode, β = 0.25), the loss is
 * mean((z_q − h)²) + β·mean((z_q − h)²) and the output is h + (z_q − h).
 *
 * @example
 * ```ts
 * import { tf } from "../lib/tf.ts";
 * import { VectorQuantizer } from "./vector_quantizer.ts";
 * const vq = new VectorQuantizer(16, 3).initialize(0);
 * const { quant, embLoss, indices } = vq.forward(tf.randomNormal([1, 4, 4, 3]) as tf.Tensor4D);
 * // quant [1, 4, 4, 3], embLoss [], indices [16] int32 (N, H, W row-major)
 * ```
 *
 * @module
 */

import { tf } from "../lib/tf.ts";
import { ArgumentError } from "../lib/errors.ts";
import { Module, Parameter } from "./layers/module.ts";
import { defaultMaxTensorBytes, float32Bytes } from "./row_strips.ts";

/**
 * The codebook table (an `nn.Embedding`); key `weight` [n, dim],
 * initialised uniform(±1/n) as diffusers does.
 *
 * @example
 * ```ts
 * import { Codebook } from "./vector_quantizer.ts";
 * const table = new Codebook(8192, 3);
 * ```
 */
export class Codebook extends Module {
  /** Entries [n, dim]. */
  readonly weight: Parameter;

  /** `n` entries of `dim` channels. */
  constructor(n: number, dim: number) {
    super();
    this.weight = new Parameter([n, dim], "none", { kind: "uniform", bound: 1 / n });
  }
}

/** What {@link VectorQuantizer.forward} returns; the caller owns the tensors. */
export interface QuantizeOutput {
  /** Quantised latents [B, H, W, dim], computed as h + (z_q − h) like diffusers. */
  quant: tf.Tensor4D;
  /** The commitment/codebook loss (0-d). */
  embLoss: tf.Scalar;
  /** Chosen entry per latent vector [B·H·W] int32, flattened over B, H, W row-major. */
  indices: tf.Tensor1D;
}

/**
 * Nearest-codebook-entry quantisation; key `embedding.weight`.
 *
 * @example
 * ```ts
 * import { VectorQuantizer } from "./vector_quantizer.ts";
 * const vq = new VectorQuantizer(8192, 3, 0.25);
 * ```
 */
export class VectorQuantizer extends Module {
  /** The codebook. */
  readonly embedding: Codebook;
  /** Weight of the commitment term (diffusers' VQModel uses 0.25). */
  readonly beta: number;
  readonly #dim: number;

  /** `n` entries of `dim` channels (diffusers' `VectorQuantizer(n_e, vq_embed_dim, beta)`). */
  constructor(n: number, dim: number, beta = 0.25) {
    super();
    this.embedding = new Codebook(n, dim);
    this.beta = beta;
    this.#dim = dim;
  }

  /**
   * Quantises NHWC latents `h` [B, H, W, dim]; no distance block exceeds
   * `maxTensorBytes`. Reads nothing back to the host.
   */
  forward(h: tf.Tensor4D, maxTensorBytes: number = defaultMaxTensorBytes()): QuantizeOutput {
    if (h.rank !== 4 || h.shape[3] !== this.#dim) {
      throw new ArgumentError(
        `VectorQuantizer: latents must be NHWC [B, H, W, ${this.#dim}], got [${h.shape}]`,
      );
    }
    return tf.tidy(() => {
      const flat = tf.reshape(h, [-1, this.#dim]) as tf.Tensor2D;
      const indices = this.#nearest(flat, maxTensorBytes);
      const zq = tf.reshape(tf.gather(this.embedding.weight.value, indices), h.shape);
      const sq = tf.mean(tf.square(tf.sub(zq, h)));
      const embLoss = tf.add(sq, tf.mul(sq, this.beta)) as tf.Scalar;
      const quant = tf.add(h, tf.sub(zq, h)) as tf.Tensor4D;
      return { quant, embLoss, indices };
    });
  }

  /** argmin over entries of ‖x − e‖², by row blocks of at most `maxBytes` distances. */
  #nearest(flat: tf.Tensor2D, maxBytes: number): tf.Tensor1D {
    const table = this.embedding.weight.value as tf.Tensor2D;
    const n = table.shape[0];
    const tableT = tf.transpose(table);
    const tableNorms = tf.sum(tf.square(tableT), 0, true);
    const rows = flat.shape[0];
    const block = Math.max(1, Math.floor(maxBytes / float32Bytes([n])));
    const parts: tf.Tensor1D[] = [];
    for (let r = 0; r < rows; r += block) {
      parts.push(tf.tidy(() => {
        const x = tf.slice(flat, [r, 0], [Math.min(block, rows - r), -1]);
        const xNorms = tf.sum(tf.square(x), 1, true);
        const d = tf.add(tf.sub(xNorms, tf.mul(tf.matMul(x, tableT), 2)), tableNorms);
        return tf.argMin(d, 1) as tf.Tensor1D;
      }));
    }
    return parts.length === 1 ? parts[0]! : tf.concat(parts);
  }

  /**
   * Codebook entries for `indices` as an NHWC map of `shape` [B, H, W, dim]
   * (diffusers' `get_codebook_entry`).
   *
   * @example
   * ```ts
   * // const quant = vq.codebookEntry(indices, [1, 64, 64, 3]);
   * ```
   */
  codebookEntry(
    indices: tf.Tensor1D | readonly number[],
    shape: readonly [number, number, number, number],
  ): tf.Tensor4D {
    const [b, h, w, c] = shape;
    const count = indices instanceof tf.Tensor ? indices.size : indices.length;
    if (c !== this.#dim || b * h * w !== count) {
      throw new ArgumentError(
        `VectorQuantizer.codebookEntry: ${count} indices do not fill [${shape}] with ${this.#dim} channels`,
      );
    }
    return tf.tidy(() => {
      const ids = indices instanceof tf.Tensor
        ? tf.cast(indices, "int32")
        : tf.tensor1d(indices as number[], "int32");
      return tf.reshape(tf.gather(this.embedding.weight.value, ids), [b, h, w, c]) as tf.Tensor4D;
    });
  }
}
