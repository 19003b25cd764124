/**
 * `KDPM2DiscreteScheduler`: the second-order DPM-Solver-2 step in sigma as
 * k-diffusion's `sample_dpm_2` writes it (Karras et al. 2022, Algorithm 1
 * with the midpoint of DPM-Solver, Lu et al. 2022), matching diffusers'
 * `KDPM2DiscreteScheduler` (v0.27.2).
 *
 * @example
 * ```ts
 * import { tf } from "../lib/tf.ts";
 * import { KDPM2DiscreteScheduler } from "./k_dpm_2_discrete.ts";
 *
 * const scheduler = KDPM2DiscreteScheduler.fromConfig({ beta_schedule: "scaled_linear" });
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
import { alphasCumprod, BETA_SCHEDULES, betasFromConfig, roundHalfEven } from "./schedule.ts";
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

/** The config of {@link KDPM2DiscreteScheduler}: diffusers' keys and defaults. */
export type KDPM2DiscreteSchedulerConfig = {
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
  /** Use the Karras et al. (2022) noise schedule (eq. 5, ρ = 7). */
  use_karras_sigmas: boolean | null;
  /** What the model predicts: `epsilon` or `v_prediction` (diffusers has no `sample` here). */
  prediction_type: string;
  /** `linspace`, `leading` or `trailing` (Lin et al. 2023, Table 2). */
  timestep_spacing: string;
  /** Added to `leading` timesteps. */
  steps_offset: number;
};

// diffusers 0.27.2 raises NotImplementedError for `sample`; here it is refused up front.
const PREDICTION_TYPES = ["epsilon", "v_prediction"];

/**
 * DPM-Solver-2 in sigma: from σ_i an Euler step to the geometric midpoint
 * σ_mid = √(σ_i σ_{i+1}) (the model is then evaluated there), and a full
 * step from σ_i to σ_{i+1} with the midpoint derivative. `timesteps` holds
 * 2n − 1 entries: t_0, then the midpoint's timestep (from its log-sigma)
 * and t_i for each later step; the last step is a first-order step to
 * σ = 0. Matches diffusers' `KDPM2DiscreteScheduler`, including Karras
 * sigmas; `prediction_type: "sample"` is a {@link ConfigError}. The
 * first-order sample is kept between calls and released by `setTimesteps`
 * and `dispose`.
 *
 * @example
 * ```ts
 * import { KDPM2DiscreteScheduler } from "./k_dpm_2_discrete.ts";
 * const s = KDPM2DiscreteScheduler.fromConfig({ use_karras_sigmas: true });
 * s.setTimesteps(10);
 * console.log(s.timesteps.length, s.sigmas.length); // 19 22
 * ```
 */
export class KDPM2DiscreteScheduler extends SigmaSchedulerBase<KDPM2DiscreteSchedulerConfig>
  implements Scheduler {
  /** Config keys, defaults and kinds. */
  static readonly spec: ConfigSpec<KDPM2DiscreteSchedulerConfig> = defineConfig<
    KDPM2DiscreteSchedulerConfig
  >(
    "KDPM2DiscreteScheduler",
    "scheduler_config.json",
    {
      num_train_timesteps: 1000,
      beta_start: 0.00085,
      beta_end: 0.012,
      beta_schedule: "linear",
      trained_betas: null,
      use_karras_sigmas: false,
      prediction_type: "epsilon",
      timestep_spacing: "linspace",
      steps_offset: 0,
    },
    {
      num_train_timesteps: ["integer"],
      trained_betas: ["number[]", "null"],
      use_karras_sigmas: ["boolean", "null"],
      steps_offset: ["integer"],
    },
  );
  /** diffusers' `_compatibles`: the KarrasDiffusionSchedulers names. */
  static readonly compatibles: readonly string[] = KARRAS_DIFFUSION_SCHEDULERS;

  /** Model evaluations per step. */
  readonly order = 2;
  /**
   * The midpoint sigma paired with each entry of `sigmas` (interleaved the
   * same way); entry 0 is NaN, as in diffusers, and never used.
   */
  sigmasInterpol: Float32Array = new Float32Array(0);
  /** The sample the first-order step started from; null in the first-order state. */
  private firstSample: tf.Tensor | null = null;

  /** Use {@link KDPM2DiscreteScheduler.fromConfig}. */
  protected constructor(config: Readonly<KDPM2DiscreteSchedulerConfig>) {
    const name = KDPM2DiscreteScheduler.spec.className;
    if (config.trained_betas === null) {
      checkChoice(name, "beta_schedule", config.beta_schedule, BETA_SCHEDULES);
    }
    super(KDPM2DiscreteScheduler.spec, config, alphasCumprod(betasFromConfig(config)));
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
   * import { KDPM2DiscreteScheduler } from "./k_dpm_2_discrete.ts";
   * const s = KDPM2DiscreteScheduler.fromConfig({ beta_schedule: "scaled_linear" });
   * ```
   */
  static fromConfig(json: ConfigDict = {}, overrides: ConfigDict = {}): KDPM2DiscreteScheduler {
    return new KDPM2DiscreteScheduler(loadConfig(KDPM2DiscreteScheduler.spec, json, overrides));
  }

  /** True when the next `step` goes to the midpoint, false before the full step. */
  get stateInFirstOrder(): boolean {
    return this.firstSample === null;
  }

  /**
   * Sets the 2n − 1 interleaved timesteps, 2n + 2 sigmas and their
   * midpoints for `numInferenceSteps` steps, and clears the step index and
   * the first-order state; an {@link ArgumentError} unless
   * 1 ≤ n ≤ `num_train_timesteps`.
   *
   * @example
   * ```ts
   * import { KDPM2DiscreteScheduler } from "./k_dpm_2_discrete.ts";
   * const s = KDPM2DiscreteScheduler.fromConfig({});
   * s.setTimesteps(3);
   * console.log(s.timesteps.length); // 5: t0, mid, t1, mid, t2
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
    const table = logSigmas(train);
    let sigmas: ArrayLike<number> = interpSigmas(timesteps, train);
    if (c.use_karras_sigmas) {
      sigmas = karrasSigmas(sigmas[sigmas.length - 1]!, sigmas[0]!, n);
      timesteps = Array.from(sigmas, (s) => roundHalfEven(sigmaToT(s, table)));
    }
    const s = Float32Array.of(...Float32Array.from(sigmas), 0);
    // Geometric midpoint with the previous sigma: exp(lerp(ln σ_k, ln σ_{k−1}, ½)) in
    // float32, as torch's lerp computes it (end − (end − start)·½); entry 0 wraps to
    // σ_n = 0 and is NaN, entry n is 0.
    const logs = s.map((v) => Math.log(v));
    const mid = logs.map((l, k) => {
      const end = logs[(k + n) % (n + 1)]!;
      return Math.exp(f32(end - f32(f32(end - l) * 0.5)));
    });
    // [x0, x1, x1, ..., xn, xn, xn]: 2n + 2 entries.
    const interleave = (v: Float32Array) =>
      Float32Array.from({ length: 2 * n + 2 }, (_, i) => v[Math.min(Math.ceil(i / 2), n)]!);
    this.sigmas = interleave(s);
    this.sigmasInterpol = interleave(mid);
    // The midpoints' timesteps are float32 (torch), stored in the timesteps' dtype.
    const midT = Array.from(mid, (v) => sigmaToT(v, table, { float32: true }));
    this.timesteps = Array.from(
      { length: 2 * n - 1 },
      (_, j) => j % 2 === 1 ? midT[(j + 1) / 2]! : timesteps[j / 2]!,
    );
    this.dispose();
  }

  /** In the second-order state the model input is scaled with the midpoint sigma. */
  protected override inputSigma(index: number): number {
    return this.stateInFirstOrder ? this.sigmas[index]! : this.sigmasInterpol[index]!;
  }

  /**
   * One KDPM2 evaluation at `timestep`: in the first-order state an Euler
   * step to the midpoint sigma (the start sample is remembered), otherwise
   * the full step from the remembered sample with the midpoint derivative.
   *
   * @example
   * ```ts
   * import { tf } from "../lib/tf.ts";
   * import { KDPM2DiscreteScheduler } from "./k_dpm_2_discrete.ts";
   * const s = KDPM2DiscreteScheduler.fromConfig({});
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
    const sigmaMid = first ? this.sigmasInterpol[index + 1]! : this.sigmasInterpol[index]!;
    const sigmaNext = first ? this.sigmas[index + 1]! : this.sigmas[index]!;
    const type = this.config.prediction_type;
    const prevSample = tf.tidy(() => {
      const pred = predictOriginalSample(type, modelOutput, sample, first ? sigma : sigmaMid);
      if (first) {
        const derivative = tf.div(tf.sub(sample, pred), sigma);
        this.firstSample = tf.keep(tf.clone(sample));
        return tf.add(sample, tf.mul(derivative, f32(sigmaMid - sigma)));
      }
      const derivative = tf.div(tf.sub(sample, pred), sigmaMid);
      return tf.add(this.firstSample!, tf.mul(derivative, f32(sigmaNext - sigma)));
    });
    if (!first) this.dispose();
    this.stepIdx = index + 1;
    return { prevSample };
  }

  /** Releases the first-order state; the next step is a first-order one. */
  override dispose(): void {
    this.firstSample?.dispose();
    this.firstSample = null;
  }
}
