/**
 * `EulerDiscreteScheduler`: Euler steps on the probability-flow ODE in
 * sigma (Karras et al. 2022, "Elucidating the Design Space of
 * Diffusion-Based Generative Models", Algorithm 2), with optional churn,
 * matching diffusers' `EulerDiscreteScheduler` (v0.27.2).
 *
 * @example
 * ```ts
 * import { tf } from "../lib/tf.ts";
 * import { EulerDiscreteScheduler } from "./euler_discrete.ts";
 *
 * const scheduler = EulerDiscreteScheduler.fromConfig({ beta_schedule: "scaled_linear" });
 * scheduler.setTimesteps(20);
 * let x = tf.mul(tf.randomNormal([1, 8, 8, 4]), scheduler.initNoiseSigma);
 * for (const t of scheduler.timesteps) {
 *   const input = scheduler.scaleModelInput(x, t);
 *   const eps = tf.zerosLike(input); // a UNet's noise prediction
 *   const { prevSample, predOriginalSample } = scheduler.step(eps, t, x);
 *   tf.dispose([input, eps, x, predOriginalSample!]);
 *   x = prevSample;
 * }
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
  type StepOptions,
} from "./scheduler.ts";
import {
  alphasCumprod,
  BETA_SCHEDULES,
  betasFromConfig,
  linspaceF32,
  rescaleZeroTerminalSnr,
} from "./schedule.ts";
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

/** The config of {@link EulerDiscreteScheduler}: diffusers' keys and defaults. */
export type EulerDiscreteSchedulerConfig = {
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
  /** What the model predicts: `epsilon`, `v_prediction` or `sample`. */
  prediction_type: string;
  /** How sigmas between training timesteps are found: `linear` (in t) or `log_linear`. */
  interpolation_type: string;
  /** Use the Karras et al. (2022) noise schedule (eq. 5, ρ = 7). */
  use_karras_sigmas: boolean | null;
  /** Smallest sigma of the Karras schedule (default: the schedule's own). */
  sigma_min: number | null;
  /** Largest sigma of the Karras schedule (default: the schedule's own). */
  sigma_max: number | null;
  /** `linspace`, `leading` or `trailing` (Lin et al. 2023, Table 2). */
  timestep_spacing: string;
  /** `discrete`, or `continuous` (t = ¼·ln σ, with `v_prediction` only). */
  timestep_type: string;
  /** Added to `leading` timesteps. */
  steps_offset: number;
  /** Rescale betas to zero terminal SNR (Lin et al. 2023). */
  rescale_betas_zero_snr: boolean;
};

const PREDICTION_TYPES = ["epsilon", "v_prediction", "sample", "original_sample"];

/**
 * Euler steps in sigma (Karras et al. 2022, Algorithm 2): from x̂_0 the
 * derivative d = (x − x̂_0)/σ̂ is followed to the next sigma. With `sChurn`
 * (`sTmin ≤ σ ≤ sTmax`) the sample is first pushed up to σ̂ = σ(1 + γ),
 * γ = min(sChurn/N, √2 − 1), with noise scaled by `sNoise`. Matches
 * diffusers' `EulerDiscreteScheduler`, including Karras sigmas,
 * `log_linear` interpolation, `continuous` timesteps and zero-terminal-SNR
 * rescaling. Like diffusers, every step draws noise (from `generator`, if
 * given) even when γ = 0, so a generator advances the same way.
 *
 * @example
 * ```ts
 * import { tf } from "../lib/tf.ts";
 * import { EulerDiscreteScheduler } from "./euler_discrete.ts";
 * const s = EulerDiscreteScheduler.fromConfig({ use_karras_sigmas: true, timestep_spacing: "trailing" });
 * s.setTimesteps(10);
 * const x = tf.ones([1, 8, 8, 4]);
 * const out = s.step(tf.zerosLike(x), s.timesteps[0]!, x, { sChurn: 1 });
 * ```
 */
export class EulerDiscreteScheduler extends SigmaSchedulerBase<EulerDiscreteSchedulerConfig>
  implements Scheduler {
  /** Config keys, defaults and kinds. */
  static readonly spec: ConfigSpec<EulerDiscreteSchedulerConfig> = defineConfig<
    EulerDiscreteSchedulerConfig
  >(
    "EulerDiscreteScheduler",
    "scheduler_config.json",
    {
      num_train_timesteps: 1000,
      beta_start: 0.0001,
      beta_end: 0.02,
      beta_schedule: "linear",
      trained_betas: null,
      prediction_type: "epsilon",
      interpolation_type: "linear",
      use_karras_sigmas: false,
      sigma_min: null,
      sigma_max: null,
      timestep_spacing: "linspace",
      timestep_type: "discrete",
      steps_offset: 0,
      rescale_betas_zero_snr: false,
    },
    {
      num_train_timesteps: ["integer"],
      trained_betas: ["number[]", "null"],
      use_karras_sigmas: ["boolean", "null"],
      sigma_min: ["number", "null"],
      sigma_max: ["number", "null"],
      steps_offset: ["integer"],
    },
  );
  /** diffusers' `_compatibles`: the KarrasDiffusionSchedulers names. */
  static readonly compatibles: readonly string[] = KARRAS_DIFFUSION_SCHEDULERS;

  /** Model evaluations per step. */
  readonly order = 1;

  /** Use {@link EulerDiscreteScheduler.fromConfig}. */
  protected constructor(config: Readonly<EulerDiscreteSchedulerConfig>) {
    const name = EulerDiscreteScheduler.spec.className;
    if (config.trained_betas === null) {
      checkChoice(name, "beta_schedule", config.beta_schedule, BETA_SCHEDULES);
    }
    let betas = betasFromConfig(config);
    if (config.rescale_betas_zero_snr) betas = rescaleZeroTerminalSnr(betas);
    const abar = alphasCumprod(betas);
    // Close to 0 without being 0, so the first sigma stays finite (as diffusers).
    if (config.rescale_betas_zero_snr) abar[abar.length - 1] = 2 ** -24;
    super(EulerDiscreteScheduler.spec, config, abar);
    checkChoice(name, "prediction_type", config.prediction_type, PREDICTION_TYPES);
    checkChoice(name, "interpolation_type", config.interpolation_type, ["linear", "log_linear"]);
    checkChoice(name, "timestep_type", config.timestep_type, ["discrete", "continuous"]);
    // Before setTimesteps: every training timestep, as diffusers' constructor leaves it.
    const sigmas = trainSigmas(abar).reverse();
    const T = config.num_train_timesteps;
    this.timesteps = this.continuousTimesteps(sigmas) ??
      Array.from({ length: T }, (_, i) => T - 1 - i);
    this.sigmas = Float32Array.of(...sigmas, 0);
  }

  /**
   * Builds a scheduler from `scheduler_config.json` content (any
   * scheduler's: unknown keys are kept) plus overrides.
   *
   * @example
   * ```ts
   * import { EulerDiscreteScheduler } from "./euler_discrete.ts";
   * const s = EulerDiscreteScheduler.fromConfig({ beta_schedule: "scaled_linear" }, { steps_offset: 1 });
   * ```
   */
  static fromConfig(json: ConfigDict = {}, overrides: ConfigDict = {}): EulerDiscreteScheduler {
    return new EulerDiscreteScheduler(loadConfig(EulerDiscreteScheduler.spec, json, overrides));
  }

  /**
   * Sets `numInferenceSteps` timesteps and their sigmas (plus a final 0),
   * and resets the step index; an {@link ArgumentError} unless
   * 1 ≤ n ≤ `num_train_timesteps`.
   *
   * @example
   * ```ts
   * import { EulerDiscreteScheduler } from "./euler_discrete.ts";
   * const s = EulerDiscreteScheduler.fromConfig({});
   * s.setTimesteps(4);
   * console.log(s.timesteps); // [999, 666, 333, 0]
   * ```
   */
  setTimesteps(numInferenceSteps: number): void {
    this.startSchedule(numInferenceSteps);
    const c = this.config;
    const n = numInferenceSteps;
    let timesteps: ArrayLike<number> = sigmaTimesteps(
      c.timestep_spacing,
      c.num_train_timesteps,
      n,
      c.steps_offset,
    );
    const train = trainSigmas(this.alphasCumprod);
    let sigmas: ArrayLike<number>;
    if (c.interpolation_type === "linear") {
      sigmas = interpSigmas(timesteps, train);
    } else {
      // diffusers spaces n + 1 sigmas evenly in log-sigma (float32 torch.linspace, then exp).
      const logs = logSigmas(train);
      sigmas = linspaceF32(logs[logs.length - 1]!, logs[0]!, n + 1).map((l) => Math.exp(l));
    }
    if (c.use_karras_sigmas) {
      sigmas = karrasSigmas(
        c.sigma_min ?? sigmas[sigmas.length - 1]!,
        c.sigma_max ?? sigmas[0]!,
        n,
      );
      const table = logSigmas(train);
      timesteps = Array.from(sigmas, (s) => sigmaToT(s, table));
    }
    const sigmas32 = Float32Array.from(sigmas);
    this.timesteps = this.continuousTimesteps(sigmas32) ?? Array.from(Float32Array.from(timesteps));
    this.sigmas = Float32Array.of(...sigmas32, 0);
  }

  /** With `continuous` timesteps and v-prediction, t = ¼·ln σ (float32); otherwise null. */
  private continuousTimesteps(sigmas: Float32Array): number[] | null {
    const c = this.config;
    if (c.timestep_type !== "continuous" || c.prediction_type !== "v_prediction") return null;
    return Array.from(sigmas, (s) => f32(0.25 * f32(Math.log(s))));
  }

  /**
   * One Euler step from `timestep` to the next sigma (Karras et al. 2022,
   * Algorithm 2). Options: `sChurn`, `sTmin`, `sTmax`, `sNoise`, and
   * `generator` or `varianceNoise` for the churn noise.
   *
   * @example
   * ```ts
   * import { tf } from "../lib/tf.ts";
   * import { EulerDiscreteScheduler } from "./euler_discrete.ts";
   * const s = EulerDiscreteScheduler.fromConfig({});
   * s.setTimesteps(5);
   * const x = tf.ones([1, 4, 4, 3]);
   * const { prevSample } = s.step(tf.zerosLike(x), s.timesteps[0]!, x);
   * ```
   */
  step(
    modelOutput: tf.Tensor,
    timestep: number,
    sample: tf.Tensor,
    options: StepOptions = {},
  ): SchedulerOutput {
    const { sChurn = 0, sTmin = 0, sTmax = Infinity, sNoise = 1 } = options;
    const index = this.stepIndexFor(timestep);
    const sigma = this.sigmas[index]!;
    const gamma = f32(sTmin) <= sigma && sigma <= f32(sTmax)
      ? Math.min(sChurn / (this.sigmas.length - 1), Math.SQRT2 - 1)
      : 0;
    const sigmaHat = f32(sigma * f32(gamma + 1));
    const dt = f32(this.sigmas[index + 1]! - sigmaHat);
    const type = this.config.prediction_type;
    const out = tf.tidy(() => {
      // Drawn even when unused (γ = 0), so a generator advances as in diffusers.
      const noise = this.noiseLike(modelOutput, options);
      let x = sample;
      if (gamma > 0) {
        const churn = f32(Math.sqrt(f32(f32(sigmaHat * sigmaHat) - f32(sigma * sigma))));
        x = tf.add(x, tf.mul(tf.mul(noise, sNoise), churn));
      }
      // v-prediction uses σ, the others σ̂, as diffusers does.
      const pred = predictOriginalSample(
        type,
        modelOutput,
        x,
        type === "v_prediction" ? sigma : sigmaHat,
      );
      const derivative = tf.div(tf.sub(x, pred), sigmaHat);
      return { prevSample: tf.add(x, tf.mul(derivative, dt)), predOriginalSample: pred };
    });
    this.stepIdx = index + 1;
    return out;
  }
}
