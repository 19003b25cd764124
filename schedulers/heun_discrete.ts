/**
 * `HeunDiscreteScheduler`: Heun's second-order method on the
 * probability-flow ODE in sigma (Karras et al. 2022, "Elucidating the Design
 * Space of Diffusion-Based Generative Models", Algorithm 1), matching
 * diffusers' `HeunDiscreteScheduler` (v0.27.2).
 *
 * @example
 * ```ts
 * import { tf } from "../lib/tf.ts";
 * import { HeunDiscreteScheduler } from "./heun_discrete.ts";
 *
 * const scheduler = HeunDiscreteScheduler.fromConfig({ beta_schedule: "scaled_linear" });
 * scheduler.setTimesteps(10); // 19 model evaluations
 * let x = tf.mul(tf.randomNormal([1, 8, 8, 4]), scheduler.initNoiseSigma);
 * for (const t of scheduler.timesteps) {
 *   const input = scheduler.scaleModelInput(x, t);
 *   const eps = tf.zerosLike(input); // a UNet's noise prediction
 *   const { prevSample } = scheduler.step(eps, t, x);
 *   tf.dispose([input, eps, x]);
 *   x = prevSample;
 * }
 * scheduler.dispose();
 * ```
 *
 * @module
 */

import { tf } from "../lib/tf.ts";
import { type ConfigDict, type ConfigSpec, defineConfig, loadConfig } from "../lib/config.ts";
import {
  checkChoice,
  KARRAS_DIFFUSION_SCHEDULERS,
  type Scheduler,
  type SchedulerOutput,
} from "./scheduler.ts";
import { alphasCumprod, BETA_SCHEDULES, betasFromConfig } from "./schedule.ts";
import {
  interpSigmas,
  karrasSigmas,
  logSigmas,
  predictOriginalSample,
  SigmaSchedulerBase,
  sigmaTimesteps,
  sigmaToT,
  trainSigmas,
} from "./sigmas.ts";

const f32 = Math.fround;

/** The config of {@link HeunDiscreteScheduler}: diffusers' keys and defaults. */
export type HeunDiscreteSchedulerConfig = {
  /** Diffusion steps the model was trained with. */
  num_train_timesteps: number;
  /** First beta of `linear` / `scaled_linear`. */
  beta_start: number;
  /** Last beta of `linear` / `scaled_linear`. */
  beta_end: number;
  /** `linear`, `scaled_linear`, `squaredcos_cap_v2` or `exp`. */
  beta_schedule: string;
  /** Explicit betas, which take precedence over `beta_schedule`. */
  trained_betas: number[] | null;
  /** What the model predicts: `epsilon`, `v_prediction` or `sample`. */
  prediction_type: string;
  /** Use the Karras et al. (2022) noise schedule (eq. 5, ρ = 7). */
  use_karras_sigmas: boolean | null;
  /** Clamp the predicted x_0 to `[-clip_sample_range, clip_sample_range]`. */
  clip_sample: boolean | null;
  /** Bound of `clip_sample`. */
  clip_sample_range: number;
  /** `linspace`, `leading` or `trailing` (Lin et al. 2023, Table 2). */
  timestep_spacing: string;
  /** Added to `leading` timesteps. */
  steps_offset: number;
};

const PREDICTION_TYPES = ["epsilon", "v_prediction", "sample"];

/**
 * diffusers' `betas_for_alpha_bar` with the `exp` transform, ᾱ(t) = e^{−12t},
 * betas capped at 0.999 (Heun's `beta_schedule: "exp"`).
 */
function expBetas(numTrainTimesteps: number): Float32Array {
  const alphaBar = (t: number) => Math.exp(t * -12);
  return Float32Array.from({ length: numTrainTimesteps }, (_, i) =>
    Math.min(
      1 - alphaBar((i + 1) / numTrainTimesteps) / alphaBar(i / numTrainTimesteps),
      0.999,
    ));
}

/**
 * Heun steps in sigma (Karras et al. 2022, Algorithm 1 without churn):
 * an Euler step from σ_i to σ_{i+1} (the model is then evaluated at
 * σ_{i+1}), and a correction that repeats the step from σ_i with the mean
 * of both derivatives. `timesteps` therefore holds 2n − 1 entries, each
 * timestep after the first twice; the last step is a plain Euler step to
 * σ = 0. Matches diffusers' `HeunDiscreteScheduler`, including Karras
 * sigmas, x_0 clipping and the `exp` beta schedule. The first-order state
 * is kept between calls and released by `setTimesteps` and `dispose`.
 *
 * @example
 * ```ts
 * import { tf } from "../lib/tf.ts";
 * import { HeunDiscreteScheduler } from "./heun_discrete.ts";
 * const s = HeunDiscreteScheduler.fromConfig({ use_karras_sigmas: true });
 * s.setTimesteps(10);
 * console.log(s.timesteps.length, s.sigmas.length); // 19 20
 * ```
 */
export class HeunDiscreteScheduler extends SigmaSchedulerBase<HeunDiscreteSchedulerConfig>
  implements Scheduler {
  /** Config keys, defaults and kinds. */
  static readonly spec: ConfigSpec<HeunDiscreteSchedulerConfig> = defineConfig<
    HeunDiscreteSchedulerConfig
  >(
    "HeunDiscreteScheduler",
    "scheduler_config.json",
    {
      num_train_timesteps: 1000,
      beta_start: 0.00085,
      beta_end: 0.012,
      beta_schedule: "linear",
      trained_betas: null,
      prediction_type: "epsilon",
      use_karras_sigmas: false,
      clip_sample: false,
      clip_sample_range: 1.0,
      timestep_spacing: "linspace",
      steps_offset: 0,
    },
    {
      num_train_timesteps: ["integer"],
      trained_betas: ["number[]", "null"],
      use_karras_sigmas: ["boolean", "null"],
      clip_sample: ["boolean", "null"],
      steps_offset: ["integer"],
    },
  );
  /** diffusers' `_compatibles`: the KarrasDiffusionSchedulers names. */
  static readonly compatibles: readonly string[] = KARRAS_DIFFUSION_SCHEDULERS;

  /** Model evaluations per step. */
  readonly order = 2;
  /** The first-order derivative, kept until the correction step. */
  private prevDerivative: tf.Tensor | null = null;
  /** The sample the first-order step started from. */
  private firstSample: tf.Tensor | null = null;
  /** σ_{i+1} − σ_i of the pending step; null in the first-order state. */
  private dt: number | null = null;

  /** Use {@link HeunDiscreteScheduler.fromConfig}. */
  protected constructor(config: Readonly<HeunDiscreteSchedulerConfig>) {
    const name = HeunDiscreteScheduler.spec.className;
    if (config.trained_betas === null) {
      checkChoice(name, "beta_schedule", config.beta_schedule, [...BETA_SCHEDULES, "exp"]);
    }
    const betas = config.trained_betas === null && config.beta_schedule === "exp"
      ? expBetas(config.num_train_timesteps)
      : betasFromConfig(config);
    super(HeunDiscreteScheduler.spec, config, alphasCumprod(betas));
    checkChoice(name, "prediction_type", config.prediction_type, PREDICTION_TYPES);
    // diffusers' constructor schedules every training timestep.
    this.setTimesteps(config.num_train_timesteps);
  }

  /**
   * Builds a scheduler from `scheduler_config.json` content (any
   * scheduler's: unknown keys are kept) plus overrides.
   *
   * @example
   * ```ts
   * import { HeunDiscreteScheduler } from "./heun_discrete.ts";
   * const s = HeunDiscreteScheduler.fromConfig({ beta_schedule: "scaled_linear" }, { clip_sample: true });
   * ```
   */
  static fromConfig(json: ConfigDict = {}, overrides: ConfigDict = {}): HeunDiscreteScheduler {
    return new HeunDiscreteScheduler(loadConfig(HeunDiscreteScheduler.spec, json, overrides));
  }

  /** True when the next `step` is an Euler (first-order) step, false before a correction. */
  get stateInFirstOrder(): boolean {
    return this.dt === null;
  }

  /**
   * Sets the 2n − 1 interleaved timesteps and 2n sigmas for `numInferenceSteps`
   * steps, and clears the step index and the first-order state; an
   * {@link ArgumentError} unless 1 ≤ n ≤ `num_train_timesteps`.
   *
   * @example
   * ```ts
   * import { HeunDiscreteScheduler } from "./heun_discrete.ts";
   * const s = HeunDiscreteScheduler.fromConfig({ timestep_spacing: "leading" });
   * s.setTimesteps(3);
   * console.log(s.timesteps); // [666, 333, 333, 0, 0]
   * ```
   */
  setTimesteps(numInferenceSteps: number): void {
    this.startSchedule(numInferenceSteps);
    const c = this.config;
    let timesteps: ArrayLike<number> = sigmaTimesteps(
      c.timestep_spacing,
      c.num_train_timesteps,
      numInferenceSteps,
      c.steps_offset,
    );
    const train = trainSigmas(this.alphasCumprod);
    let sigmas: ArrayLike<number> = interpSigmas(timesteps, train);
    if (c.use_karras_sigmas) {
      sigmas = karrasSigmas(sigmas[sigmas.length - 1]!, sigmas[0]!, numInferenceSteps);
      const table = logSigmas(train);
      // Karras timesteps stay float64 in diffusers' Heun.
      timesteps = Array.from(sigmas, (s) => sigmaToT(s, table));
    }
    const s = Float32Array.of(...Float32Array.from(sigmas), 0);
    // [σ0, σ1, σ1, ..., σ_{n−1}, σ_{n−1}, 0] and [t0, t1, t1, ..., t_{n−1}, t_{n−1}].
    this.sigmas = Float32Array.from(
      { length: 2 * numInferenceSteps },
      (_, i) => s[Math.ceil(i / 2)]!,
    );
    this.timesteps = Array.from(
      { length: 2 * numInferenceSteps - 1 },
      (_, i) => timesteps[Math.ceil(i / 2)]!,
    );
    this.dispose();
  }

  /**
   * One Heun evaluation at `timestep`: in the first-order state an Euler
   * step to the next sigma (remembered), otherwise the correction that
   * averages both derivatives and restarts from the remembered sample.
   *
   * @example
   * ```ts
   * import { tf } from "../lib/tf.ts";
   * import { HeunDiscreteScheduler } from "./heun_discrete.ts";
   * const s = HeunDiscreteScheduler.fromConfig({});
   * s.setTimesteps(5);
   * const x = tf.ones([1, 4, 4, 3]);
   * const { prevSample } = s.step(tf.zerosLike(x), s.timesteps[0]!, x);
   * s.dispose();
   * ```
   */
  step(
    modelOutput: tf.Tensor,
    timestep: number,
    sample: tf.Tensor,
  ): SchedulerOutput {
    const index = this.stepIndexFor(timestep);
    const first = this.stateInFirstOrder;
    const sigma = first ? this.sigmas[index]! : this.sigmas[index - 1]!;
    const sigmaNext = first ? this.sigmas[index + 1]! : this.sigmas[index]!;
    const { prediction_type: type, clip_sample: clip, clip_sample_range: range } = this.config;
    const prevSample = tf.tidy(() => {
      let pred = predictOriginalSample(type, modelOutput, sample, first ? sigma : sigmaNext);
      if (clip) pred = tf.clipByValue(pred, -range, range);
      if (first) {
        const derivative = tf.div(tf.sub(sample, pred), sigma);
        const dt = f32(sigmaNext - sigma);
        this.prevDerivative = tf.keep(derivative);
        this.firstSample = tf.keep(tf.clone(sample));
        this.dt = dt;
        return tf.add(sample, tf.mul(derivative, dt));
      }
      const derivative = tf.div(
        tf.add(this.prevDerivative!, tf.div(tf.sub(sample, pred), sigmaNext)),
        2,
      );
      return tf.add(this.firstSample!, tf.mul(derivative, this.dt!));
    });
    if (!first) this.dispose();
    this.stepIdx = index + 1;
    return { prevSample };
  }

  /** Releases the first-order state; the next step is a first-order one. */
  override dispose(): void {
    tf.dispose([this.prevDerivative ?? [], this.firstSample ?? []]);
    this.prevDerivative = null;
    this.firstSample = null;
    this.dt = null;
  }
}
