/**
 * `EulerAncestralDiscreteScheduler`: ancestral sampling with Euler steps
 * (k-diffusion's `sample_euler_ancestral`, after Karras et al. 2022 and
 * Song et al. 2021), matching diffusers' `EulerAncestralDiscreteScheduler`
 * (v0.27.2).
 *
 * @example
 * ```ts
 * import { tf } from "../lib/tf.ts";
 * import { Generator } from "../lib/random.ts";
 * import { EulerAncestralDiscreteScheduler } from "./euler_ancestral_discrete.ts";
 *
 * const scheduler = EulerAncestralDiscreteScheduler.fromConfig({ beta_schedule: "scaled_linear" });
 * scheduler.setTimesteps(20);
 * const generator = new Generator().manualSeed(0);
 * let x = tf.mul(tf.randomNormal([1, 8, 8, 4]), scheduler.initNoiseSigma);
 * for (const t of scheduler.timesteps) {
 *   const input = scheduler.scaleModelInput(x, t);
 *   const eps = tf.zerosLike(input); // a UNet's noise prediction
 *   const { prevSample, predOriginalSample } = scheduler.step(eps, t, x, { generator });
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
  rescaleZeroTerminalSnr,
} from "./schedule.ts";
import {
  interpSigmas,
  predictOriginalSample,
  SigmaSchedulerBase,
  sigmaTimesteps,
  trainSigmas,
} from "./sigmas.ts";

const f32 = Math.fround;

/** The config of {@link EulerAncestralDiscreteScheduler}: diffusers' keys and defaults. */
export type EulerAncestralDiscreteSchedulerConfig = {
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
  /** What the model predicts: `epsilon` or `v_prediction` (diffusers has no `sample` here). */
  prediction_type: string;
  /** `linspace`, `leading` or `trailing` (Lin et al. 2023, Table 2). */
  timestep_spacing: string;
  /** Added to `leading` timesteps. */
  steps_offset: number;
  /** Rescale betas to zero terminal SNR (Lin et al. 2023). */
  rescale_betas_zero_snr: boolean;
};

// diffusers 0.27.2 raises NotImplementedError for `sample`; here it is refused up front.
const PREDICTION_TYPES = ["epsilon", "v_prediction"];

/**
 * Ancestral Euler sampling: each step splits the move from σ to the next
 * σ' into a deterministic Euler step down to σ_down = σ'²/σ and fresh noise
 * of standard deviation σ_up = σ'·√(σ² − σ'²)/σ, so the marginal noise
 * level lands on σ'. Every step draws noise (from `generator`, or
 * `varianceNoise` if given). Matches diffusers'
 * `EulerAncestralDiscreteScheduler`, including zero-terminal-SNR
 * rescaling; `prediction_type: "sample"` is a {@link ConfigError}.
 *
 * @example
 * ```ts
 * import { tf } from "../lib/tf.ts";
 * import { Generator } from "../lib/random.ts";
 * import { EulerAncestralDiscreteScheduler } from "./euler_ancestral_discrete.ts";
 * const s = EulerAncestralDiscreteScheduler.fromConfig({ prediction_type: "v_prediction" });
 * s.setTimesteps(10);
 * const x = tf.ones([1, 8, 8, 4]);
 * const out = s.step(tf.zerosLike(x), s.timesteps[0]!, x, { generator: new Generator().manualSeed(1) });
 * ```
 */
export class EulerAncestralDiscreteScheduler
  extends SigmaSchedulerBase<EulerAncestralDiscreteSchedulerConfig>
  implements Scheduler {
  /** Config keys, defaults and kinds. */
  static readonly spec: ConfigSpec<EulerAncestralDiscreteSchedulerConfig> = defineConfig<
    EulerAncestralDiscreteSchedulerConfig
  >(
    "EulerAncestralDiscreteScheduler",
    "scheduler_config.json",
    {
      num_train_timesteps: 1000,
      beta_start: 0.0001,
      beta_end: 0.02,
      beta_schedule: "linear",
      trained_betas: null,
      prediction_type: "epsilon",
      timestep_spacing: "linspace",
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

  /** Use {@link EulerAncestralDiscreteScheduler.fromConfig}. */
  protected constructor(config: Readonly<EulerAncestralDiscreteSchedulerConfig>) {
    const name = EulerAncestralDiscreteScheduler.spec.className;
    if (config.trained_betas === null) {
      checkChoice(name, "beta_schedule", config.beta_schedule, BETA_SCHEDULES);
    }
    let betas = betasFromConfig(config);
    if (config.rescale_betas_zero_snr) betas = rescaleZeroTerminalSnr(betas);
    const abar = alphasCumprod(betas);
    // Close to 0 without being 0, so the first sigma stays finite (as diffusers).
    if (config.rescale_betas_zero_snr) abar[abar.length - 1] = 2 ** -24;
    super(EulerAncestralDiscreteScheduler.spec, config, abar);
    checkChoice(name, "prediction_type", config.prediction_type, PREDICTION_TYPES);
    // Before setTimesteps: every training timestep, as diffusers' constructor leaves it.
    const T = config.num_train_timesteps;
    this.timesteps = Array.from({ length: T }, (_, i) => T - 1 - i);
    this.sigmas = Float32Array.of(...trainSigmas(abar).reverse(), 0);
  }

  /**
   * Builds a scheduler from `scheduler_config.json` content (any
   * scheduler's: unknown keys are kept) plus overrides.
   *
   * @example
   * ```ts
   * import { EulerAncestralDiscreteScheduler } from "./euler_ancestral_discrete.ts";
   * const s = EulerAncestralDiscreteScheduler.fromConfig({ beta_schedule: "scaled_linear" });
   * ```
   */
  static fromConfig(
    json: ConfigDict = {},
    overrides: ConfigDict = {},
  ): EulerAncestralDiscreteScheduler {
    return new EulerAncestralDiscreteScheduler(
      loadConfig(EulerAncestralDiscreteScheduler.spec, json, overrides),
    );
  }

  /**
   * Sets `numInferenceSteps` timesteps and their sigmas (plus a final 0),
   * and resets the step index; an {@link ArgumentError} unless
   * 1 ≤ n ≤ `num_train_timesteps`.
   *
   * @example
   * ```ts
   * import { EulerAncestralDiscreteScheduler } from "./euler_ancestral_discrete.ts";
   * const s = EulerAncestralDiscreteScheduler.fromConfig({ timestep_spacing: "trailing" });
   * s.setTimesteps(4);
   * console.log(s.timesteps); // [999, 749, 499, 249]
   * ```
   */
  setTimesteps(numInferenceSteps: number): void {
    this.startSchedule(numInferenceSteps);
    const c = this.config;
    const timesteps = sigmaTimesteps(
      c.timestep_spacing,
      c.num_train_timesteps,
      numInferenceSteps,
      c.steps_offset,
    );
    this.timesteps = Array.from(timesteps);
    this.sigmas = Float32Array.of(
      ...Float32Array.from(interpSigmas(timesteps, trainSigmas(this.alphasCumprod))),
      0,
    );
  }

  /**
   * One ancestral Euler step from `timestep`: deterministic down to σ_down,
   * then noise of σ_up from `generator` (or `varianceNoise`).
   *
   * @example
   * ```ts
   * import { tf } from "../lib/tf.ts";
   * import { EulerAncestralDiscreteScheduler } from "./euler_ancestral_discrete.ts";
   * const s = EulerAncestralDiscreteScheduler.fromConfig({});
   * s.setTimesteps(5);
   * const x = tf.ones([1, 4, 4, 3]);
   * const { prevSample } = s.step(tf.zerosLike(x), s.timesteps[0]!, x, { varianceNoise: tf.zerosLike(x) });
   * ```
   */
  step(
    modelOutput: tf.Tensor,
    timestep: number,
    sample: tf.Tensor,
    options: StepOptions = {},
  ): SchedulerOutput {
    const index = this.stepIndexFor(timestep);
    const sigma = this.sigmas[index]!;
    const next = this.sigmas[index + 1]!;
    // float32 as diffusers' 0-dim tensors: σ_up = √(σ'²(σ² − σ'²)/σ²), σ_down = √(σ'² − σ_up²).
    const next2 = f32(next * next);
    const sigma2 = f32(sigma * sigma);
    const sigmaUp = f32(Math.sqrt(f32(f32(next2 * f32(sigma2 - next2)) / sigma2)));
    const sigmaDown = f32(Math.sqrt(f32(next2 - f32(sigmaUp * sigmaUp))));
    const dt = f32(sigmaDown - sigma);
    const type = this.config.prediction_type;
    const out = tf.tidy(() => {
      const pred = predictOriginalSample(type, modelOutput, sample, sigma);
      const derivative = tf.div(tf.sub(sample, pred), sigma);
      const down = tf.add(sample, tf.mul(derivative, dt));
      const noise = this.noiseLike(modelOutput, options);
      return { prevSample: tf.add(down, tf.mul(noise, sigmaUp)), predOriginalSample: pred };
    });
    this.stepIdx = index + 1;
    return out;
  }
}
