/**
 * `DDIMScheduler`: denoising diffusion implicit models (Song et al. 2021,
 * "Denoising Diffusion Implicit Models", eq. 12 with σ_t(η) of eq. 16),
 * matching diffusers' `DDIMScheduler` (v0.27.2).
 *
 * @example
 * ```ts
 * import { tf } from "../lib/tf.ts";
 * import { DDIMScheduler } from "./ddim.ts";
 *
 * const scheduler = DDIMScheduler.fromConfig({ beta_schedule: "scaled_linear" });
 * scheduler.setTimesteps(50);
 * let x = tf.randomNormal([1, 64, 64, 4]);
 * for (const t of scheduler.timesteps) {
 *   const eps = tf.zerosLike(x); // a UNet's noise prediction
 *   const { prevSample, predOriginalSample } = scheduler.step(eps, t, x, { eta: 0 });
 *   tf.dispose([eps, x, predOriginalSample!]);
 *   x = prevSample;
 * }
 * ```
 *
 * @module
 */

import { tf } from "../lib/tf.ts";
import { ArgumentError } from "../lib/errors.ts";
import { type ConfigDict, type ConfigSpec, defineConfig, loadConfig } from "../lib/config.ts";
import {
  addNoiseDiscrete,
  checkChoice,
  checkNumInferenceSteps,
  checkRange,
  checkTimestepIndex,
  KARRAS_DIFFUSION_SCHEDULERS,
  type Scheduler,
  SchedulerBase,
  type SchedulerOutput,
  type StepOptions,
  thresholdSample,
  velocityDiscrete,
} from "./scheduler.ts";
import {
  alphasCumprod,
  BETA_SCHEDULES,
  betasFromConfig,
  rescaleZeroTerminalSnr,
  spacedTimesteps,
  TIMESTEP_SPACINGS,
} from "./schedule.ts";

const f32 = Math.fround;

/**
 * The config of {@link DDIMScheduler}: diffusers' keys and defaults.
 *
 * @example
 * ```ts
 * import { DDIMScheduler, type DDIMSchedulerConfig } from "./ddim.ts";
 * const config: DDIMSchedulerConfig = { ...DDIMScheduler.spec.defaults, timestep_spacing: "trailing" };
 * const s = DDIMScheduler.fromConfig(config);
 * ```
 */
export type DDIMSchedulerConfig = {
  /** Diffusion steps the model was trained with. */
  num_train_timesteps: number;
  /** First beta of `linear` / `scaled_linear`. */
  beta_start: number;
  /** Last beta of `linear` / `scaled_linear`. */
  beta_end: number;
  /** `linear`, `scaled_linear` or `squaredcos_cap_v2`. */
  beta_schedule: string;
  /** Explicit betas, which take precedence over `beta_schedule`. */
  trained_betas: number[] | null;
  /** Clamp the predicted x_0 to `[-clip_sample_range, clip_sample_range]`. */
  clip_sample: boolean;
  /** ᾱ before the first training step: 1 when true, else ᾱ_0. */
  set_alpha_to_one: boolean;
  /** Added to `leading` timesteps. */
  steps_offset: number;
  /** What the model predicts: `epsilon`, `sample` or `v_prediction`. */
  prediction_type: string;
  /** Dynamic thresholding of x_0 (Imagen); takes precedence over `clip_sample`. */
  thresholding: boolean;
  /** Quantile of |x_0| used as the dynamic threshold. */
  dynamic_thresholding_ratio: number;
  /** Bound of `clip_sample`. */
  clip_sample_range: number;
  /** Largest dynamic threshold. */
  sample_max_value: number;
  /** `leading`, `trailing` or `linspace` (Lin et al. 2023, Table 2). */
  timestep_spacing: string;
  /** Rescale betas to zero terminal SNR (Lin et al. 2023). */
  rescale_betas_zero_snr: boolean;
};

const PREDICTION_TYPES = ["epsilon", "sample", "v_prediction"];

/**
 * Denoising diffusion implicit models (Song et al. 2021): each step
 * predicts x_0 and the noise, then moves to the previous timestep along
 * eq. 12; `eta` (η of eq. 16) blends in fresh noise, 0 being the
 * deterministic DDIM and 1 DDPM-like. Matches diffusers' `DDIMScheduler`,
 * including dynamic thresholding, `use_clipped_model_output`,
 * `set_alpha_to_one` and zero-terminal-SNR rescaling. Noise is drawn only
 * when `eta > 0`.
 *
 * @example
 * ```ts
 * import { tf } from "../lib/tf.ts";
 * import { Generator } from "../lib/random.ts";
 * import { DDIMScheduler } from "./ddim.ts";
 * const s = DDIMScheduler.fromConfig({ timestep_spacing: "trailing" });
 * s.setTimesteps(10);
 * const x = tf.ones([1, 8, 8, 3]);
 * const out = s.step(tf.zerosLike(x), s.timesteps[0]!, x, {
 *   eta: 0.5, generator: new Generator().manualSeed(0),
 * });
 * ```
 */
export class DDIMScheduler extends SchedulerBase<DDIMSchedulerConfig> implements Scheduler {
  /** Config keys, defaults and kinds. */
  static readonly spec: ConfigSpec<DDIMSchedulerConfig> = defineConfig<DDIMSchedulerConfig>(
    "DDIMScheduler",
    "scheduler_config.json",
    {
      num_train_timesteps: 1000,
      beta_start: 0.0001,
      beta_end: 0.02,
      beta_schedule: "linear",
      trained_betas: null,
      clip_sample: true,
      set_alpha_to_one: true,
      steps_offset: 0,
      prediction_type: "epsilon",
      thresholding: false,
      dynamic_thresholding_ratio: 0.995,
      clip_sample_range: 1.0,
      sample_max_value: 1.0,
      timestep_spacing: "leading",
      rescale_betas_zero_snr: false,
    },
    {
      num_train_timesteps: ["integer"],
      trained_betas: ["number[]", "null"],
      steps_offset: ["integer"],
    },
  );
  /** diffusers' `_compatibles`: the KarrasDiffusionSchedulers names. */
  static readonly compatibles: readonly string[] = KARRAS_DIFFUSION_SCHEDULERS;

  /** Model evaluations per step. */
  readonly order = 1;
  /** Standard deviation of the initial noise. */
  readonly initNoiseSigma = 1;
  /** The float32 betas. */
  readonly betas: Float32Array;
  /** The float32 cumulative products of `1 - beta`. */
  readonly alphasCumprod: Float32Array;
  /** ᾱ used after the last timestep: 1 with `set_alpha_to_one`, else ᾱ_0. */
  readonly finalAlphaCumprod: number;
  #timesteps: readonly number[];
  #numInferenceSteps: number | null = null;

  /** The timesteps to evaluate, descending; all training timesteps until `setTimesteps`. */
  get timesteps(): readonly number[] {
    return this.#timesteps;
  }

  /** The step count of the last `setTimesteps`; null before it. */
  get numInferenceSteps(): number | null {
    return this.#numInferenceSteps;
  }

  /** Use {@link DDIMScheduler.fromConfig}. */
  protected constructor(config: Readonly<DDIMSchedulerConfig>) {
    super(DDIMScheduler.spec, config);
    const name = DDIMScheduler.spec.className;
    checkChoice(name, "prediction_type", config.prediction_type, PREDICTION_TYPES);
    checkChoice(name, "timestep_spacing", config.timestep_spacing, TIMESTEP_SPACINGS);
    if (config.trained_betas === null) {
      checkChoice(name, "beta_schedule", config.beta_schedule, BETA_SCHEDULES);
    }
    if (config.thresholding) {
      checkRange("dynamic_thresholding_ratio", config.dynamic_thresholding_ratio, 0, 1);
    }
    let betas = betasFromConfig(config);
    if (config.rescale_betas_zero_snr) betas = rescaleZeroTerminalSnr(betas);
    this.betas = betas;
    this.alphasCumprod = alphasCumprod(betas);
    this.finalAlphaCumprod = config.set_alpha_to_one ? 1 : this.alphasCumprod[0]!;
    const T = config.num_train_timesteps;
    this.#timesteps = Object.freeze(Array.from({ length: T }, (_, i) => T - 1 - i));
  }

  /**
   * Builds a scheduler from `scheduler_config.json` content (any
   * scheduler's: unknown keys are kept) plus overrides.
   *
   * @example
   * ```ts
   * import { DDIMScheduler } from "./ddim.ts";
   * const s = DDIMScheduler.fromConfig({ beta_schedule: "scaled_linear" }, { steps_offset: 1 });
   * ```
   */
  static fromConfig(json: ConfigDict = {}, overrides: ConfigDict = {}): DDIMScheduler {
    return new DDIMScheduler(loadConfig(DDIMScheduler.spec, json, overrides));
  }

  /**
   * Sets `numInferenceSteps` timesteps spaced per `timestep_spacing`; an
   * {@link ArgumentError} unless 1 ≤ n ≤ `num_train_timesteps`.
   *
   * @example
   * ```ts
   * import { DDIMScheduler } from "./ddim.ts";
   * const s = DDIMScheduler.fromConfig({ steps_offset: 1 });
   * s.setTimesteps(5); // [801, 601, 401, 201, 1]
   * ```
   */
  setTimesteps(numInferenceSteps: number): void {
    const T = this.config.num_train_timesteps;
    checkNumInferenceSteps(numInferenceSteps, T);
    this.#timesteps = Object.freeze(
      spacedTimesteps(this.config.timestep_spacing, T, numInferenceSteps, this.config.steps_offset),
    );
    this.#numInferenceSteps = numInferenceSteps;
  }

  /**
   * σ_t² / η² of eq. 16 between `timestep` and `prevTimestep`:
   * `(1 - ᾱ_prev) / (1 - ᾱ_t) · (1 - ᾱ_t / ᾱ_prev)`, diffusers' `_get_variance`.
   *
   * @example
   * ```ts
   * import { DDIMScheduler } from "./ddim.ts";
   * console.log(DDIMScheduler.fromConfig({}).variance(420, 400)); // ≈ 0.14771
   * ```
   */
  variance(timestep: number, prevTimestep: number): number {
    const alphaProd = this.alphaAt(timestep);
    const alphaProdPrev = this.alphaAt(prevTimestep);
    const ratio = f32(f32(1 - alphaProdPrev) / f32(1 - alphaProd));
    return f32(ratio * f32(1 - f32(alphaProd / alphaProdPrev)));
  }

  /**
   * One DDIM step (eq. 12): x_0 and ε from the model output, x_0 clipped or
   * thresholded, then `sqrt(ᾱ_prev) · x_0 + sqrt(1 - ᾱ_prev - σ_t²) · ε`, plus
   * `σ_t · noise` when `eta > 0` (noise from `varianceNoise` or `generator`,
   * not both). `useClippedModelOutput` re-derives ε from the clipped x_0.
   * An {@link ArgumentError} before `setTimesteps`.
   *
   * @example
   * ```ts
   * import { tf } from "../lib/tf.ts";
   * import { DDIMScheduler } from "./ddim.ts";
   * const s = DDIMScheduler.fromConfig({});
   * s.setTimesteps(10);
   * const x = tf.ones([1, 4, 4, 3]);
   * const { prevSample } = s.step(tf.zerosLike(x), 900, x);
   * ```
   */
  step(
    modelOutput: tf.Tensor,
    timestep: number,
    sample: tf.Tensor,
    options: StepOptions = {},
  ): SchedulerOutput {
    const n = this.#numInferenceSteps;
    if (n === null) throw new ArgumentError("call setTimesteps before step");
    const { eta = 0, useClippedModelOutput = false } = options;
    if (eta > 0 && options.varianceNoise && options.generator) {
      throw new ArgumentError("pass either generator or varianceNoise, not both");
    }
    const T = this.config.num_train_timesteps;
    checkTimestepIndex(timestep, T);
    const prevTimestep = timestep - Math.floor(T / n);
    const alphaProd = this.alphasCumprod[timestep]!;
    const alphaProdPrev = this.alphaAt(prevTimestep);
    const sqrtA = f32(Math.sqrt(alphaProd));
    const sqrtB = f32(Math.sqrt(f32(1 - alphaProd)));
    const stdDev = f32(f32(eta) * f32(Math.sqrt(this.variance(timestep, prevTimestep))));
    const directionCoeff = f32(Math.sqrt(f32(f32(1 - alphaProdPrev) - f32(stdDev * stdDev))));
    const x0Coeff = f32(Math.sqrt(alphaProdPrev));

    return tf.tidy(() => {
      let x0: tf.Tensor;
      let eps: tf.Tensor;
      switch (this.config.prediction_type) {
        case "epsilon":
          x0 = tf.div(tf.sub(sample, tf.mul(sqrtB, modelOutput)), sqrtA);
          eps = modelOutput;
          break;
        case "sample":
          x0 = tf.clone(modelOutput);
          eps = tf.div(tf.sub(sample, tf.mul(sqrtA, x0)), sqrtB);
          break;
        default: // v_prediction
          x0 = tf.sub(tf.mul(sqrtA, sample), tf.mul(sqrtB, modelOutput));
          eps = tf.add(tf.mul(sqrtA, modelOutput), tf.mul(sqrtB, sample));
      }
      if (this.config.thresholding) {
        x0 = thresholdSample(
          x0,
          this.config.dynamic_thresholding_ratio,
          this.config.sample_max_value,
        );
      } else if (this.config.clip_sample) {
        const r = this.config.clip_sample_range;
        x0 = tf.clipByValue(x0, -r, r);
      }
      if (useClippedModelOutput) {
        // Glide's correction: ε consistent with the clipped x_0.
        eps = tf.div(tf.sub(sample, tf.mul(sqrtA, x0)), sqrtB);
      }
      let prev = tf.add(tf.mul(x0Coeff, x0), tf.mul(directionCoeff, eps));
      if (eta > 0) prev = tf.add(prev, tf.mul(stdDev, this.noiseLike(sample, options)));
      return { prevSample: prev, predOriginalSample: x0 };
    });
  }

  /**
   * Noises `original` to `timesteps` (one integer per batch item, or one
   * for all): `sqrt(ᾱ_t) · x_0 + sqrt(1 - ᾱ_t) · noise`.
   *
   * @example
   * ```ts
   * import { tf } from "../lib/tf.ts";
   * import { DDIMScheduler } from "./ddim.ts";
   * const x0 = tf.zeros([2, 8, 8, 3]);
   * const xt = DDIMScheduler.fromConfig({}).addNoise(x0, tf.randomNormal(x0.shape), [10, 500]);
   * ```
   */
  addNoise(original: tf.Tensor, noise: tf.Tensor, timesteps: readonly number[]): tf.Tensor {
    return addNoiseDiscrete(this.alphasCumprod, original, noise, timesteps);
  }

  /**
   * The v-prediction training target (Salimans & Ho 2022):
   * `sqrt(ᾱ_t) · noise - sqrt(1 - ᾱ_t) · sample`.
   *
   * @example
   * ```ts
   * import { tf } from "../lib/tf.ts";
   * import { DDIMScheduler } from "./ddim.ts";
   * const x = tf.ones([1, 8, 8, 3]);
   * const v = DDIMScheduler.fromConfig({}).getVelocity(x, tf.zerosLike(x), [250]);
   * ```
   */
  getVelocity(sample: tf.Tensor, noise: tf.Tensor, timesteps: readonly number[]): tf.Tensor {
    return velocityDiscrete(this.alphasCumprod, sample, noise, timesteps);
  }

  /** ᾱ at a timestep, or the final ᾱ before the first one. */
  private alphaAt(timestep: number): number {
    if (timestep < 0) return this.finalAlphaCumprod;
    checkTimestepIndex(timestep, this.config.num_train_timesteps);
    return this.alphasCumprod[timestep]!;
  }
}
