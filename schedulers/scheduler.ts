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
