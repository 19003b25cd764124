/**
 * `DDPMScheduler`: ancestral sampling of denoising diffusion probabilistic
 * models (Ho et al. 2020, "Denoising Diffusion Probabilistic Models",
 * Algorithm 2 with the posterior of eq. 6-7), matching diffusers'
 * `DDPMScheduler` (v0.27.2) config for config and step for step.
 *
 * @example
 * ```ts
 * import { tf } from "../lib/tf.ts";
 * import { Generator } from "../lib/random.ts";
 * import { DDPMScheduler } from "./ddpm.ts";
 *
 * const scheduler = DDPMScheduler.fromConfig({ beta_schedule: "linear" });
 * scheduler.setTimesteps(50);
 * const generator = new Generator().manualSeed(0);
 * let x = tf.randomNormal([1, 32, 32, 3]);
 * for (const t of scheduler.timesteps) {
 *   const eps = tf.zerosLike(x); // a UNet's noise prediction
 *   const { prevSample, predOriginalSample } = scheduler.step(eps, t, x, { generator });
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
  betasFromConfig,
  checkTrainTimesteps,
  linspaceF32,
  rescaleZeroTerminalSnr,
  spacedTimesteps,
  TIMESTEP_SPACINGS,
} from "./schedule.ts";

const f32 = Math.fround;

/**
 * The config of {@link DDPMScheduler}: diffusers' keys and defaults.
 *
 * @example
 * ```ts
 * import { DDPMScheduler, type DDPMSchedulerConfig } from "./ddpm.ts";
 * const config: DDPMSchedulerConfig = { ...DDPMScheduler.spec.defaults, variance_type: "fixed_large" };
 * const s = DDPMScheduler.fromConfig(config);
 * ```
 */
export type DDPMSchedulerConfig = {
  /** Diffusion steps the model was trained with. */
  num_train_timesteps: number;
  /** First beta of `linear` / `scaled_linear` / `sigmoid`. */
  beta_start: number;
  /** Last beta of `linear` / `scaled_linear` / `sigmoid`. */
  beta_end: number;
  /** `linear`, `scaled_linear`, `squaredcos_cap_v2` or `sigmoid` (GeoDiff). */
  beta_schedule: string;
  /** Explicit betas, which take precedence over `beta_schedule`. */
  trained_betas: number[] | null;
  /** `fixed_small`, `fixed_small_log`, `fixed_large`, `fixed_large_log`, `learned` or `learned_range`. */
  variance_type: string;
  /** Clamp the predicted x_0 to `[-clip_sample_range, clip_sample_range]`. */
  clip_sample: boolean;
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
  /** Added to `leading` timesteps. */
  steps_offset: number;
  /** Rescale betas to zero terminal SNR (Lin et al. 2023). */
  rescale_betas_zero_snr: boolean;
};

/** The beta schedules DDPM accepts: the shared ones plus GeoDiff's `sigmoid`. */
const DDPM_BETA_SCHEDULES = ["linear", "scaled_linear", "squaredcos_cap_v2", "sigmoid"];
const VARIANCE_TYPES = [
  "fixed_small",
  "fixed_small_log",
  "fixed_large",
  "fixed_large_log",
  "learned",
  "learned_range",
];
const PREDICTION_TYPES = ["epsilon", "sample", "v_prediction"];

/**
 * Options of {@link DDPMScheduler.setTimesteps}.
 *
 * @example
 * ```ts
 * import { DDPMScheduler, type DDPMSetTimestepsOptions } from "./ddpm.ts";
 * const options: DDPMSetTimestepsOptions = { timesteps: [999, 500, 100, 0] };
 * DDPMScheduler.fromConfig({}).setTimesteps(null, options);
 * ```
 */
export interface DDPMSetTimestepsOptions {
  /** Custom descending timesteps, below `num_train_timesteps`, instead of a step count. */
  timesteps?: readonly number[];
}

/** GeoDiff's sigmoid schedule: `sigmoid(linspace(-6, 6, n)) * (end - start) + start` in float32. */
function sigmoidBetas(n: number, start: number, end: number): Float32Array {
  const range = f32(end - start);
  return linspaceF32(-6, 6, n).map((x) =>
    f32(f32(f32(1 / f32(1 + f32(Math.exp(-x)))) * range) + f32(start))
  );
}

/**
 * Denoising diffusion probabilistic models (Ho et al. 2020): each step
 * predicts x_0, forms the posterior mean of x_{t-1} (eq. 7) and adds noise
 * with the configured variance, drawn only when t > 0. Matches diffusers'
 * `DDPMScheduler`, including custom timesteps, dynamic thresholding, the
 * learned variances of Nichol & Dhariwal (2021) and zero-terminal-SNR
 * rescaling. Before `setTimesteps` it walks all training timesteps.
 *
 * For `learned` / `learned_range`, a model output with twice the sample's
 * channels is split on the channel axis (last for `noiseLayout` NHWC,
 * axis 1 for NCHW) into the noise prediction and the variance.
 *
 * `fixed_large_log` is kept as diffusers 0.27.2 has it: the step takes the
 * square root of log β_t, which is NaN, so that option is not usable there
 * either.
 *
 * @example
 * ```ts
 * import { tf } from "../lib/tf.ts";
 * import { DDPMScheduler } from "./ddpm.ts";
 * const s = DDPMScheduler.fromConfig({ variance_type: "fixed_large" });
 * s.setTimesteps(10);
 * const x = tf.ones([1, 8, 8, 3]);
 * const eps = tf.zerosLike(x);
 * const out = s.step(eps, s.timesteps[0]!, x);
 * ```
 */
export class DDPMScheduler extends SchedulerBase<DDPMSchedulerConfig> implements Scheduler {
  /** Config keys, defaults and kinds. */
  static readonly spec: ConfigSpec<DDPMSchedulerConfig> = defineConfig<DDPMSchedulerConfig>(
    "DDPMScheduler",
    "scheduler_config.json",
    {
      num_train_timesteps: 1000,
      beta_start: 0.0001,
      beta_end: 0.02,
      beta_schedule: "linear",
      trained_betas: null,
      variance_type: "fixed_small",
      clip_sample: true,
      prediction_type: "epsilon",
      thresholding: false,
      dynamic_thresholding_ratio: 0.995,
      clip_sample_range: 1.0,
      sample_max_value: 1.0,
      timestep_spacing: "leading",
      steps_offset: 0,
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
  #timesteps: readonly number[];
  #numInferenceSteps: number | null = null;
  #customTimesteps: boolean = false;

  /** The timesteps to evaluate, descending; all training timesteps until `setTimesteps`. */
  get timesteps(): readonly number[] {
    return this.#timesteps;
  }

  /** The step count of the last `setTimesteps(n)`; null before it and for custom timesteps. */
  get numInferenceSteps(): number | null {
    return this.#numInferenceSteps;
  }

  /** Whether the timesteps came from `setTimesteps(null, { timesteps })`. */
  get customTimesteps(): boolean {
    return this.#customTimesteps;
  }

  /** Use {@link DDPMScheduler.fromConfig}. */
  protected constructor(config: Readonly<DDPMSchedulerConfig>) {
    super(DDPMScheduler.spec, config);
    const name = DDPMScheduler.spec.className;
    checkChoice(name, "variance_type", config.variance_type, VARIANCE_TYPES);
    checkChoice(name, "prediction_type", config.prediction_type, PREDICTION_TYPES);
    checkChoice(name, "timestep_spacing", config.timestep_spacing, TIMESTEP_SPACINGS);
    if (config.trained_betas === null) {
      checkChoice(name, "beta_schedule", config.beta_schedule, DDPM_BETA_SCHEDULES);
    }
    if (config.thresholding) {
      checkRange("dynamic_thresholding_ratio", config.dynamic_thresholding_ratio, 0, 1);
    }
    checkTrainTimesteps(config.num_train_timesteps);
    let betas = config.trained_betas === null && config.beta_schedule === "sigmoid"
      ? sigmoidBetas(config.num_train_timesteps, config.beta_start, config.beta_end)
      : betasFromConfig(config);
    if (config.rescale_betas_zero_snr) betas = rescaleZeroTerminalSnr(betas);
    this.betas = betas;
    this.alphasCumprod = alphasCumprod(betas);
    this.#timesteps = Object.freeze(
      Array.from(
        { length: config.num_train_timesteps },
        (_, i) => config.num_train_timesteps - 1 - i,
      ),
    );
  }

  /**
   * Builds a scheduler from `scheduler_config.json` content (any
   * scheduler's: unknown keys are kept) plus overrides.
   *
   * @example
   * ```ts
   * import { DDPMScheduler } from "./ddpm.ts";
   * const s = DDPMScheduler.fromConfig({ beta_schedule: "squaredcos_cap_v2" }, { clip_sample: false });
   * ```
   */
  static fromConfig(json: ConfigDict = {}, overrides: ConfigDict = {}): DDPMScheduler {
    return new DDPMScheduler(loadConfig(DDPMScheduler.spec, json, overrides));
  }

  /**
   * Sets `numInferenceSteps` evenly spaced timesteps (per `timestep_spacing`),
   * or, with `numInferenceSteps` null, the custom descending
   * `options.timesteps`. Bad counts or timesteps are an {@link ArgumentError}.
   *
   * @example
   * ```ts
   * import { DDPMScheduler } from "./ddpm.ts";
   * const s = DDPMScheduler.fromConfig({});
   * s.setTimesteps(4);                                     // [750, 500, 250, 0]
   * s.setTimesteps(null, { timesteps: [100, 87, 50, 1, 0] });
   * ```
   */
  setTimesteps(numInferenceSteps: number | null, options: DDPMSetTimestepsOptions = {}): void {
    const T = this.config.num_train_timesteps;
    const custom = options.timesteps;
    if (custom !== undefined) {
      if (numInferenceSteps !== null) {
        throw new ArgumentError("pass either numInferenceSteps or options.timesteps, not both");
      }
      if (custom.length === 0) throw new ArgumentError("options.timesteps is empty");
      custom.forEach((t, i) => {
        checkTimestepIndex(t, T);
        if (i > 0 && t >= custom[i - 1]!) {
          throw new ArgumentError(`options.timesteps must be descending, got ${custom.join(", ")}`);
        }
      });
      this.#timesteps = Object.freeze([...custom]);
      this.#numInferenceSteps = null;
      this.#customTimesteps = true;
      return;
    }
    if (numInferenceSteps === null) {
      throw new ArgumentError("pass numInferenceSteps or options.timesteps");
    }
    checkNumInferenceSteps(numInferenceSteps, T);
    this.#timesteps = Object.freeze(
      spacedTimesteps(this.config.timestep_spacing, T, numInferenceSteps, this.config.steps_offset),
    );
    this.#numInferenceSteps = numInferenceSteps;
    this.#customTimesteps = false;
  }

  /**
   * The timestep after `timestep` in the sampling order: the next custom
   * timestep (-1 after the last), else `timestep - T // n`.
   *
   * @example
   * ```ts
   * import { DDPMScheduler } from "./ddpm.ts";
   * const s = DDPMScheduler.fromConfig({});
   * s.setTimesteps(10);
   * console.log(s.previousTimestep(900)); // 800
   * ```
   */
  previousTimestep(timestep: number): number {
    if (this.customTimesteps) {
      const index = this.timesteps.indexOf(timestep);
      if (index < 0) {
        throw new ArgumentError(`timestep ${timestep} is not one of the custom timesteps`);
      }
      return index === this.timesteps.length - 1 ? -1 : this.timesteps[index + 1]!;
    }
    const n = this.numInferenceSteps ?? this.config.num_train_timesteps;
    return timestep - Math.floor(this.config.num_train_timesteps / n);
  }

  /**
   * The posterior variance at `timestep` for a fixed `variance_type`
   * (`fixed_small_log` gives the standard deviation, `fixed_large_log` the
   * log variance, as diffusers' `_get_variance`). The learned types need the
   * model's output and are computed in `step`.
   *
   * @example
   * ```ts
   * import { DDPMScheduler } from "./ddpm.ts";
   * console.log(DDPMScheduler.fromConfig({}).variance(999)); // ≈ 0.02
   * ```
   */
  variance(timestep: number, varianceType: string = this.config.variance_type): number {
    const { small, beta } = this.posterior(timestep);
    switch (varianceType) {
      case "fixed_small":
        return small;
      case "fixed_small_log":
        return f32(Math.exp(f32(0.5 * f32(Math.log(small)))));
      case "fixed_large":
        return beta;
      case "fixed_large_log":
        return f32(Math.log(beta));
      default:
        throw new ArgumentError(
          `variance(${timestep}) needs a fixed variance_type, got ${JSON.stringify(varianceType)}`,
        );
    }
  }

  /**
   * One ancestral step from `timestep` to the previous one: x_0 from the
   * model output, clipped or thresholded, the posterior mean (Ho et al.
   * 2020, eq. 7), plus noise from `options.varianceNoise` or
   * `options.generator` when t > 0.
   *
   * @example
   * ```ts
   * import { tf } from "../lib/tf.ts";
   * import { DDPMScheduler } from "./ddpm.ts";
   * const s = DDPMScheduler.fromConfig({});
   * const x = tf.ones([1, 4, 4, 3]);
   * const { prevSample } = s.step(tf.zerosLike(x), 0, x); // t = 0: no noise
   * ```
   */
  step(
    modelOutput: tf.Tensor,
    timestep: number,
    sample: tf.Tensor,
    options: StepOptions = {},
  ): SchedulerOutput {
    const { alphaProd, alphaProdPrev, small, beta } = this.posterior(timestep);
    const betaProd = f32(1 - alphaProd);
    const betaProdPrev = f32(1 - alphaProdPrev);
    const currentAlpha = f32(alphaProd / alphaProdPrev);
    const x0Coeff = f32(f32(f32(Math.sqrt(alphaProdPrev)) * beta) / betaProd);
    const xtCoeff = f32(f32(f32(Math.sqrt(currentAlpha)) * betaProdPrev) / betaProd);
    const sqrtA = f32(Math.sqrt(alphaProd));
    const sqrtB = f32(Math.sqrt(betaProd));
    const varianceType = this.config.variance_type;
    const learned = varianceType === "learned" || varianceType === "learned_range";
    const axis = this.noiseLayout === "NCHW" ? 1 : sample.rank - 1;
    const split = learned && modelOutput.shape[axis] === 2 * sample.shape[axis]!;
    if (learned && !split) {
      throw new ArgumentError(
        `variance_type ${varianceType} needs a model output with twice the sample's channels on axis ${axis}`,
      );
    }

    return tf.tidy(() => {
      // diffusers splits the model output into the noise prediction and the learned variance.
      const [eps, predictedVariance] = split ? tf.split(modelOutput, 2, axis) : [modelOutput];
      let x0: tf.Tensor;
      switch (this.config.prediction_type) {
        case "epsilon":
          x0 = tf.div(tf.sub(sample, tf.mul(sqrtB, eps)), sqrtA);
          break;
        case "sample":
          x0 = tf.clone(eps);
          break;
        default: // v_prediction
          x0 = tf.sub(tf.mul(sqrtA, sample), tf.mul(sqrtB, eps));
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
      let prev = tf.add(tf.mul(x0Coeff, x0), tf.mul(xtCoeff, sample));
      if (timestep > 0) {
        const noise = this.noiseLike(sample, options);
        let scaledNoise: tf.Tensor;
        if (varianceType === "learned_range") {
          // Interpolate the log variance between the posterior's and beta's.
          const frac = tf.div(tf.add(predictedVariance!, 1), 2);
          const logVar = tf.add(
            tf.mul(frac, f32(Math.log(beta))),
            tf.mul(tf.sub(1, frac), f32(Math.log(small))),
          );
          scaledNoise = tf.mul(tf.exp(tf.mul(0.5, logVar)), noise);
        } else if (varianceType === "learned") {
          scaledNoise = tf.mul(tf.sqrt(predictedVariance!), noise);
        } else if (varianceType === "fixed_small_log") {
          // diffusers' fixed_small_log already is a standard deviation.
          scaledNoise = tf.mul(this.variance(timestep), noise);
        } else {
          scaledNoise = tf.mul(f32(Math.sqrt(this.variance(timestep))), noise);
        }
        prev = tf.add(prev, scaledNoise);
      }
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
   * import { DDPMScheduler } from "./ddpm.ts";
   * const x0 = tf.zeros([2, 8, 8, 3]);
   * const xt = DDPMScheduler.fromConfig({}).addNoise(x0, tf.randomNormal(x0.shape), [10, 500]);
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
   * import { DDPMScheduler } from "./ddpm.ts";
   * const x = tf.ones([1, 8, 8, 3]);
   * const v = DDPMScheduler.fromConfig({}).getVelocity(x, tf.zerosLike(x), [250]);
   * ```
   */
  getVelocity(sample: tf.Tensor, noise: tf.Tensor, timesteps: readonly number[]): tf.Tensor {
    return velocityDiscrete(this.alphasCumprod, sample, noise, timesteps);
  }

  /** ᾱ_t, ᾱ_prev, the clamped posterior variance and β_t of the step from `timestep`. */
  private posterior(
    timestep: number,
  ): { alphaProd: number; alphaProdPrev: number; small: number; beta: number } {
    checkTimestepIndex(timestep, this.config.num_train_timesteps);
    const prevT = this.previousTimestep(timestep);
    const alphaProd = this.alphasCumprod[timestep]!;
    const alphaProdPrev = prevT >= 0 ? this.alphasCumprod[prevT]! : 1;
    const beta = f32(1 - f32(alphaProd / alphaProdPrev));
    const ratio = f32(f32(1 - alphaProdPrev) / f32(1 - alphaProd));
    // diffusers clamps before any log is taken.
    const small = Math.max(f32(ratio * beta), f32(1e-20));
    return { alphaProd, alphaProdPrev, small, beta };
  }
}
