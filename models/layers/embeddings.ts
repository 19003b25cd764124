/**
 * Timestep and label embeddings, after diffusers' `embeddings.py`:
 * sinusoidal {@link getTimestepEmbedding} (the `Timesteps` module),
 * {@link TimestepEmbedding} (linear_1 → act → linear_2),
 * {@link GaussianFourierProjection} (score-SDE noise-level features) and
 * {@link Embedding} (`nn.Embedding`, for class labels and learned time).
 *
 * @example
 * ```ts
 * import { tf } from "../../lib/tf.ts";
 * import { getTimestepEmbedding } from "./embeddings.ts";
 * const e = getTimestepEmbedding(tf.tensor1d([10, 500]), 32, { downscaleFreqShift: 1 }); // [2, 32]
 * ```
 *
 * @module
 */

import { tf } from "../../lib/tf.ts";
import { Module, Parameter } from "./module.ts";
import { Linear } from "./linear.ts";
import { type Activation, activation } from "./activations.ts";

/** Options of {@link getTimestepEmbedding}, named as diffusers' arguments. */
export interface TimestepEmbeddingOptions {
  /** Put the cosines first (default false). */
  flipSinToCos?: boolean;
  /** Frequencies are exp(-ln(maxPeriod) · i / (dim/2 - shift)) (default 1). */
  downscaleFreqShift?: number;
  /** Multiplies the arguments (default 1). */
  scale?: number;
  /** Lowest frequency's period (default 10000). */
  maxPeriod?: number;
}

/**
 * Sinusoidal embeddings of `timesteps` [N] → [N, dim], as diffusers'
 * `get_timestep_embedding`. The frequency table is computed in float32
 * steps like PyTorch (exponent rounded to float32 before `exp`), so the
 * products t · f are bit-identical.
 *
 * @example
 * ```ts
 * import { tf } from "../../lib/tf.ts";
 * import { getTimestepEmbedding } from "./embeddings.ts";
 * const e = getTimestepEmbedding(tf.tensor1d([999]), 128, { flipSinToCos: true, downscaleFreqShift: 0 });
 * ```
 */
export function getTimestepEmbedding(
  timesteps: tf.Tensor1D,
  dim: number,
  options: TimestepEmbeddingOptions = {},
): tf.Tensor2D {
  const { flipSinToCos = false, downscaleFreqShift = 1, scale = 1, maxPeriod = 10000 } = options;
  const half = Math.floor(dim / 2);
  const freqs = new Float32Array(half);
  const logPeriod = Math.fround(-Math.log(maxPeriod));
  const denom = half - downscaleFreqShift;
  for (let i = 0; i < half; i++) {
    freqs[i] = Math.exp(Math.fround(Math.fround(logPeriod * i) / denom));
  }
  return tf.tidy(() => {
    let args = tf.mul(
      tf.reshape(tf.cast(timesteps, "float32"), [-1, 1]),
      tf.tensor2d(freqs, [1, half]),
    );
    if (scale !== 1) args = tf.mul(args, scale);
    const parts = [tf.sin(args), tf.cos(args)];
    if (flipSinToCos) parts.reverse();
    if (dim % 2 === 1) parts.push(tf.zeros([args.shape[0]!, 1]));
    return tf.concat(parts, 1) as tf.Tensor2D;
  });
}

/**
 * diffusers' `Timesteps`: {@link getTimestepEmbedding} with fixed options; no weights.
 *
 * @example
 * ```ts
 * import { tf } from "../../lib/tf.ts";
 * import { Timesteps } from "./embeddings.ts";
 * const proj = new Timesteps(128, false, 1);
 * const e = proj.forward(tf.tensor1d([10])); // [1, 128]
 * ```
 */
export class Timesteps extends Module {
  readonly #dim: number;
  readonly #options: TimestepEmbeddingOptions;

  /** Same arguments as `Timesteps(num_channels, flip_sin_to_cos, downscale_freq_shift)`. */
  constructor(numChannels: number, flipSinToCos: boolean, downscaleFreqShift: number) {
    super();
    this.#dim = numChannels;
    this.#options = { flipSinToCos, downscaleFreqShift };
  }

  /** [N] → [N, numChannels]. */
  forward(timesteps: tf.Tensor1D): tf.Tensor2D {
    return getTimestepEmbedding(timesteps, this.#dim, this.#options);
  }
}

/**
 * diffusers' `TimestepEmbedding`: `linear_1` → activation → `linear_2`.
 *
 * @example
 * ```ts
 * import { TimestepEmbedding } from "./embeddings.ts";
 * const temb = new TimestepEmbedding(128, 512); // keys linear_1.*, linear_2.*
 * ```
 */
export class TimestepEmbedding extends Module {
  /** in → embed dim. */
  readonly linear_1: Linear;
  /** embed dim → embed dim. */
  readonly linear_2: Linear;
  readonly #act: Activation;

  /** `inChannels` → `timeEmbedDim`, with `actFn` between the two layers. */
  constructor(inChannels: number, timeEmbedDim: number, actFn = "silu") {
    super();
    this.linear_1 = new Linear(inChannels, timeEmbedDim);
    this.linear_2 = new Linear(timeEmbedDim, timeEmbedDim);
    this.#act = activation(actFn);
  }

  /** [N, in] → [N, timeEmbedDim]. */
  forward(x: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() => this.linear_2.forward(this.#act(this.linear_1.forward(x))) as tf.Tensor2D);
  }
}

/**
 * diffusers' `GaussianFourierProjection` (`set_W_to_weight=True`): random
 * frequencies W, output [sin(2π·x·W), cos(2π·x·W)] of log(x) by default.
 * PyTorch checkpoints hold the same tensor twice, as `weight` and `W`; both
 * load, `weight` wins.
 *
 * @example
 * ```ts
 * import { GaussianFourierProjection } from "./embeddings.ts";
 * const proj = new GaussianFourierProjection(64, 16); // output [N, 128]
 * ```
 */
export class GaussianFourierProjection extends Module {
  /** Frequencies [embeddingSize], ~ N(0, scale²) at init. */
  readonly weight: Parameter;
  readonly #log: boolean;
  readonly #flipSinToCos: boolean;

  /** Same arguments as diffusers (`embedding_size`, `scale`, `log`, `flip_sin_to_cos`). */
  constructor(embeddingSize = 256, scale = 1, log = true, flipSinToCos = false) {
    super();
    this.weight = new Parameter([embeddingSize], "none", { kind: "normal", std: scale });
    this.#log = log;
    this.#flipSinToCos = flipSinToCos;
  }

  /** `W` is the same parameter as `weight` in diffusers' state dicts. */
  protected override legacyKeys(): Readonly<Record<string, string>> {
    return { W: "weight" };
  }

  /** [N] → [N, 2·embeddingSize]. */
  forward(x: tf.Tensor1D): tf.Tensor2D {
    return tf.tidy(() => {
      const t = this.#log ? tf.log(tf.cast(x, "float32")) : tf.cast(x, "float32");
      const proj = tf.mul(
        tf.mul(tf.reshape(t, [-1, 1]), tf.reshape(this.weight.value, [1, -1])),
        2 * Math.PI,
      );
      const parts = [tf.sin(proj), tf.cos(proj)];
      if (this.#flipSinToCos) parts.reverse();
      return tf.concat(parts, 1) as tf.Tensor2D;
    });
  }
}

/**
 * `nn.Embedding`: a lookup table; key `weight` [num, dim], N(0, 1) at init.
 *
 * @example
 * ```ts
 * import { tf } from "../../lib/tf.ts";
 * import { Embedding } from "./embeddings.ts";
 * const classes = new Embedding(10, 512).initialize(0);
 * const e = classes.forward(tf.tensor1d([3, 7], "int32")); // [2, 512]
 * ```
 */
export class Embedding extends Module {
  /** Table [numEmbeddings, dim]. */
  readonly weight: Parameter;

  /** Same arguments as `nn.Embedding(num_embeddings, embedding_dim)`. */
  constructor(numEmbeddings: number, embeddingDim: number) {
    super();
    this.weight = new Parameter([numEmbeddings, embeddingDim], "none", {
      kind: "normal",
      std: 1,
    });
  }

  /** Indices [N] (cast to int32) → rows [N, dim]. */
  forward(ids: tf.Tensor1D): tf.Tensor2D {
    return tf.tidy(() => tf.gather(this.weight.value, tf.cast(ids, "int32")) as tf.Tensor2D);
  }
}
