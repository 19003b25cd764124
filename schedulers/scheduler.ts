/**
 * The scheduler contract every file in `schedulers/` implements, after
 * diffusers' `SchedulerMixin`: `setTimesteps`, `timesteps`,
 * `initNoiseSigma`, `scaleModelInput`, `step`, `addNoise`, `order`, and a
 * read-only `config` that round-trips to `scheduler_config.json`.
 *
 * Schedulers are layout-agnostic and elementwise: `sample` and
 * `modelOutput` may be NHWC (the library's layout) or NCHW. The one place
 * layout matters is noise drawn from a {@link Generator}: it is drawn in
 * PyTorch's NCHW order so a seed gives diffusers' values, then laid out as
 * `noiseLayout` says (default `"NHWC"`; tests on NCHW fixtures set `"NCHW"`).
 *
 * @example
 * ```ts
 * import type { Scheduler } from "./scheduler.ts";
 * function denoise(s: Scheduler, x: import("../lib/tf.ts").tf.Tensor) {
 *   for (const t of s.timesteps) {
 *     // const eps = unet.forward(s.scaleModelInput(x, t), t);
 *     // x = s.step(eps, t, x).prevSample;
 *   }
 *   return x;
 * }
 * ```
 *
 * @module
 */

import { tf } from "../lib/tf.ts";
import type { Generator } from "../lib/random.ts";
import { randnTensor } from "../lib/random.ts";
import {
  type ConfigDict,
  type ConfigSpec,
  configToJSON,
  stringifyConfigJson,
} from "../lib/config.ts";
import { writeTextFileAtomic } from "../lib/fs.ts";
import { ArgumentError, ConfigError } from "../lib/errors.ts";

/** How an image-like tensor is laid out: tfjs' NHWC or PyTorch's NCHW. */
export type Layout = "NHWC" | "NCHW";

/** Keyword arguments of diffusers' `step()`, in camelCase. Each scheduler reads the ones it has. */
export interface StepOptions {
  /** DDIM: weight of the noise in the step (0 = deterministic DDIM, 1 = DDPM-like). */
  eta?: number;
  /** DDIM: recompute the predicted noise from the clipped x0. */
  useClippedModelOutput?: boolean;
  /** Source of the random noise a stochastic step draws (drawn in NCHW order). */
  generator?: Generator;
  /** Noise to use instead of drawing it (same layout as `sample`). */
  varianceNoise?: tf.Tensor;
  /** Euler / Heun: churn (Karras et al. 2022, Algorithm 2). */
  sChurn?: number;
  /** Euler / Heun: lowest sigma at which churn applies. */
  sTmin?: number;
  /** Euler / Heun: highest sigma at which churn applies. */
  sTmax?: number;
  /** Euler / Heun: scale of the churn noise. */
  sNoise?: number;
}

/** What `step()` returns. */
export interface SchedulerOutput {
  /** x_{t-1}: the sample to feed the next step. */
  prevSample: tf.Tensor;
  /** The model's estimate of x_0, where the algorithm computes one. */
  predOriginalSample?: tf.Tensor;
}

/** The interface pipelines use; every scheduler class implements it. */
export interface Scheduler {
  /** The diffusers class name, e.g. `"DDIMScheduler"`. */
  readonly className: string;
  /** The resolved, frozen config (diffusers keys, snake_case). */
  readonly config: Readonly<ConfigDict>;
  /** Model evaluations per step of the algorithm (1, or 2 for Heun/KDPM2, PNDM's PRK 4). */
  readonly order: number;
  /** Standard deviation of the initial noise (1, or sigma_max for sigma-based schedulers). */
  readonly initNoiseSigma: number;
  /** The timesteps to evaluate the model at, in order, after `setTimesteps`. */
  readonly timesteps: readonly number[];
  /** Layout of tensors this scheduler receives, for noise drawn from a generator. */
  noiseLayout: Layout;
  /** Sets the number of inference steps and resets any multistep state. */
  setTimesteps(numInferenceSteps: number): void;
  /** Scales the model input where the algorithm needs it (identity for DDPM/DDIM/PNDM). */
  scaleModelInput(sample: tf.Tensor, timestep: number): tf.Tensor;
  /** One reverse-diffusion step. */
  step(
    modelOutput: tf.Tensor,
    timestep: number,
    sample: tf.Tensor,
    options?: StepOptions,
  ): SchedulerOutput;
  /** Forward diffusion: noises `original` to the given timesteps (one per batch item). */
  addNoise(original: tf.Tensor, noise: tf.Tensor, timesteps: readonly number[]): tf.Tensor;
  /** The JSON `save_config` would write. */
  toJSON(): ConfigDict;
  /** Writes `scheduler_config.json` into `dir`. */
  saveConfig(dir: string): Promise<void>;
  /** Releases tensors kept between steps (multistep history); `setTimesteps` starts afresh. */
  dispose(): void;
}

/**
 * What every scheduler class shares: its config and spec, the layout flag,
 * JSON export, and noise drawing. Subclasses hold the algorithm.
 */
export abstract class SchedulerBase<C extends ConfigDict> {
  /** The config declaration of the concrete class. */
  readonly spec: ConfigSpec<C>;
  /** The resolved, frozen config. */
  readonly config: Readonly<C>;
  /** Layout of tensors this scheduler receives, for noise drawn from a generator. */
  noiseLayout: Layout = "NHWC";

  /** Stores the spec and the resolved config. */
  protected constructor(spec: ConfigSpec<C>, config: Readonly<C>) {
    this.spec = spec;
    this.config = config;
  }

  /** The diffusers class name. */
  get className(): string {
    return this.spec.className;
  }

  /** The JSON `save_config` would write. */
  toJSON(): ConfigDict {
    return configToJSON(this.spec, this.config);
  }

  /** Writes the config as `scheduler_config.json` in `dir`, atomically. */
  async saveConfig(dir: string): Promise<void> {
    await writeTextFileAtomic(`${dir}/${this.spec.configName}`, stringifyConfigJson(this.toJSON()));
  }

  /** Releases tensors kept between steps; schedulers with history override this. */
  dispose(): void {}

  /** Identity, as DDPM, DDIM and PNDM have it; sigma-based schedulers override it. */
  scaleModelInput(sample: tf.Tensor, _timestep?: number): tf.Tensor {
    return sample;
  }

  /**
   * Noise shaped like `like`: `varianceNoise` when given, else drawn from
   * `generator` in PyTorch's NCHW order and laid out as `noiseLayout`.
   */
  protected noiseLike(like: tf.Tensor, options: StepOptions): tf.Tensor {
    if (options.varianceNoise) return options.varianceNoise;
    return randnTensor(like.shape, { generator: options.generator, layout: this.noiseLayout });
  }
}

/**
 * Broadcasts one scalar per batch item over the other axes of a tensor of
 * rank `rank`: the `[B, 1, 1, 1]` column diffusers builds in `add_noise`.
 *
 * @example
 * ```ts
 * import { perBatch } from "./scheduler.ts";
 * const c = perBatch([0.5, 0.25], 4); // shape [2, 1, 1, 1]
 * c.dispose();
 * ```
 */
export function perBatch(values: readonly number[], rank: number): tf.Tensor {
  return tf.tensor(values, [values.length, ...new Array(rank - 1).fill(1)], "float32");
}

/**
 * diffusers' `KarrasDiffusionSchedulers`: the `_compatibles` of the DDPM
 * family, i.e. the schedulers a pipeline may swap in with
 * `fromConfig(other.config)`.
 *
 * @example
 * ```ts
 * import { KARRAS_DIFFUSION_SCHEDULERS } from "./scheduler.ts";
 * console.log(KARRAS_DIFFUSION_SCHEDULERS.includes("EulerDiscreteScheduler")); // true
 * ```
 */
export const KARRAS_DIFFUSION_SCHEDULERS: readonly string[] = Object.freeze([
  "DDIMScheduler",
  "DDPMScheduler",
  "PNDMScheduler",
  "LMSDiscreteScheduler",
  "EulerDiscreteScheduler",
  "HeunDiscreteScheduler",
  "EulerAncestralDiscreteScheduler",
  "DPMSolverMultistepScheduler",
  "DPMSolverSinglestepScheduler",
  "KDPM2DiscreteScheduler",
  "KDPM2AncestralDiscreteScheduler",
  "DEISMultistepScheduler",
  "UniPCMultistepScheduler",
  "DPMSolverSDEScheduler",
  "EDMEulerScheduler",
]);

/**
 * Checks that a numeric config value lies in `[min, max]`; otherwise a
 * {@link ConfigError} naming `key`.
 *
 * @example
 * ```ts
 * import { checkRange } from "./scheduler.ts";
 * checkRange("dynamic_thresholding_ratio", 0.995, 0, 1);
 * ```
 */
export function checkRange(key: string, value: number, min: number, max: number): void {
  if (!(value >= min && value <= max)) {
    throw new ConfigError(`must be in [${min}, ${max}], got ${value}`, { key });
  }
}

/**
 * Checks that a string config value is one of `allowed`; otherwise a
 * {@link ConfigError} naming `key`, the value and the valid choices.
 *
 * @example
 * ```ts
 * import { checkChoice } from "./scheduler.ts";
 * checkChoice("DDIMScheduler", "prediction_type", "epsilon", ["epsilon", "sample", "v_prediction"]);
 * ```
 */
export function checkChoice(
  className: string,
  key: string,
  value: unknown,
  allowed: readonly string[],
): void {
  if (typeof value === "string" && allowed.includes(value)) return;
  throw new ConfigError(
    `${className} does not support ${JSON.stringify(value)}; valid: ${allowed.join(", ")}`,
    { key },
  );
}

/**
 * Checks a `setTimesteps` step count: an integer from 1 to the number of
 * training timesteps, else an {@link ArgumentError}.
 *
 * @example
 * ```ts
 * import { checkNumInferenceSteps } from "./scheduler.ts";
 * checkNumInferenceSteps(50, 1000); // ok; 0 or 1001 would throw
 * ```
 */
export function checkNumInferenceSteps(numInferenceSteps: number, numTrainTimesteps: number): void {
  if (
    !Number.isInteger(numInferenceSteps) || numInferenceSteps < 1 ||
    numInferenceSteps > numTrainTimesteps
  ) {
    throw new ArgumentError(
      `numInferenceSteps must be an integer from 1 to num_train_timesteps (${numTrainTimesteps}), got ${numInferenceSteps}`,
    );
  }
}

/**
 * Checks that `timestep` indexes a schedule of `length` training timesteps
 * (an integer in `[0, length)`), else an {@link ArgumentError}.
 *
 * @example
 * ```ts
 * import { checkTimestepIndex } from "./scheduler.ts";
 * checkTimestepIndex(999, 1000); // ok; 999.5 or 1000 would throw
 * ```
 */
export function checkTimestepIndex(timestep: number, length: number): void {
  if (!Number.isInteger(timestep) || timestep < 0 || timestep >= length) {
    throw new ArgumentError(
      `timestep must be an integer from 0 to ${length - 1}, got ${timestep}`,
    );
  }
}

/** sqrt(ᾱ_t) and sqrt(1 - ᾱ_t) per timestep, in float32 as diffusers' 0-dim tensor math gives them. */
function signalNoiseScales(
  alphasCumprod: Float32Array,
  timesteps: readonly number[],
  batch: number,
): [number[], number[]] {
  if (timesteps.length !== 1 && timesteps.length !== batch) {
    throw new ArgumentError(
      `got ${timesteps.length} timesteps for a batch of ${batch}; give one, or one per batch item`,
    );
  }
  for (const t of timesteps) checkTimestepIndex(t, alphasCumprod.length);
  const f32 = Math.fround;
  return [
    timesteps.map((t) => f32(Math.sqrt(alphasCumprod[t]!))),
    timesteps.map((t) => f32(Math.sqrt(f32(1 - alphasCumprod[t]!)))),
  ];
}

/**
 * Forward diffusion on a discrete schedule, diffusers' `add_noise` of the
 * DDPM family: `sqrt(ᾱ_t) · original + sqrt(1 - ᾱ_t) · noise`, with one
 * integer timestep per batch item (or one for all).
 *
 * @example
 * ```ts
 * import { tf } from "../lib/tf.ts";
 * import { addNoiseDiscrete } from "./scheduler.ts";
 * const x = tf.ones([2, 4, 4, 3]);
 * const y = addNoiseDiscrete(new Float32Array([0.99, 0.5]), x, tf.zerosLike(x), [0, 1]);
 * ```
 */
export function addNoiseDiscrete(
  alphasCumprod: Float32Array,
  original: tf.Tensor,
  noise: tf.Tensor,
  timesteps: readonly number[],
): tf.Tensor {
  const [a, b] = signalNoiseScales(alphasCumprod, timesteps, original.shape[0] ?? 1);
  return tf.tidy(() =>
    tf.add(
      tf.mul(perBatch(a, original.rank), original),
      tf.mul(perBatch(b, original.rank), noise),
    )
  );
}

/**
 * The v-prediction target of Salimans & Ho (2022), diffusers' `get_velocity`:
 * `sqrt(ᾱ_t) · noise - sqrt(1 - ᾱ_t) · sample`.
 *
 * @example
 * ```ts
 * import { tf } from "../lib/tf.ts";
 * import { velocityDiscrete } from "./scheduler.ts";
 * const x = tf.ones([1, 4, 4, 3]);
 * const v = velocityDiscrete(new Float32Array([0.5]), x, tf.zerosLike(x), [0]);
 * ```
 */
export function velocityDiscrete(
  alphasCumprod: Float32Array,
  sample: tf.Tensor,
  noise: tf.Tensor,
  timesteps: readonly number[],
): tf.Tensor {
  const [a, b] = signalNoiseScales(alphasCumprod, timesteps, sample.shape[0] ?? 1);
  return tf.tidy(() =>
    tf.sub(tf.mul(perBatch(a, sample.rank), noise), tf.mul(perBatch(b, sample.rank), sample))
  );
}

/**
 * Dynamic thresholding (Saharia et al. 2022, Imagen), diffusers'
 * `_threshold_sample`: per batch item, `s` is the `ratio` quantile of
 * `|x|` (linear interpolation, as `torch.quantile`), clamped to
 * `[1, maxValue]`; the item is clamped to `[-s, s]` and divided by `s`.
 * The quantile is taken with a top-k on the device, so nothing is read back.
 *
 * @example
 * ```ts
 * import { tf } from "../lib/tf.ts";
 * import { thresholdSample } from "./scheduler.ts";
 * const x0 = tf.mul(tf.randomNormal([1, 8, 8, 3]), 3);
 * const clipped = thresholdSample(x0, 0.995, 2); // values in [-1, 1]
 * ```
 */
export function thresholdSample(sample: tf.Tensor, ratio: number, maxValue: number): tf.Tensor {
  const f32 = Math.fround;
  const batch = sample.shape[0] ?? 1;
  const n = sample.size / batch;
  // torch.quantile computes the rank in the input's dtype and interpolates with lerp.
  const rank = f32(f32(ratio) * (n - 1));
  const below = Math.floor(rank);
  const above = Math.ceil(rank);
  const weight = f32(rank - below);
  return tf.tidy(() => {
    const flat = tf.reshape(sample, [batch, n]);
    // Ascending index i is descending index n - 1 - i: the top n - below values hold both.
    const { values } = tf.topk(tf.abs(flat), n - below);
    const lo = tf.slice(values, [0, n - 1 - below], [batch, 1]);
    const hi = tf.slice(values, [0, n - 1 - above], [batch, 1]);
    const q = weight < 0.5
      ? tf.add(lo, tf.mul(weight, tf.sub(hi, lo)))
      : tf.sub(hi, tf.mul(tf.sub(hi, lo), f32(1 - weight)));
    const s = tf.minimum(tf.maximum(q, 1), maxValue);
    const clamped = tf.minimum(tf.maximum(flat, tf.neg(s)), s);
    return tf.reshape(tf.div(clamped, s), sample.shape);
  });
}
