/**
 * `LMSDiscreteScheduler`: a linear multistep method on the probability-flow
 * ODE in sigma (Karras et al. 2022; k-diffusion's `sample_lms`), matching
 * diffusers' `LMSDiscreteScheduler` (v0.27.2).
 *
 * @example
 * ```ts
 * import { tf } from "../lib/tf.ts";
 * import { LMSDiscreteScheduler } from "./lms_discrete.ts";
 *
 * const scheduler = LMSDiscreteScheduler.fromConfig({ beta_schedule: "scaled_linear" });
 * scheduler.setTimesteps(20);
 * let x = tf.mul(tf.randomNormal([1, 8, 8, 4]), scheduler.initNoiseSigma);
 * for (const t of scheduler.timesteps) {
 *   const input = scheduler.scaleModelInput(x, t);
 *   const eps = tf.zerosLike(input); // a UNet's noise prediction
 *   const { prevSample, predOriginalSample } = scheduler.step(eps, t, x);
 *   tf.dispose([input, eps, x, predOriginalSample!]);
 *   x = prevSample;
 * }
 * scheduler.dispose();
 * ```
 *
 * @module
 */

import { tf } from "../lib/tf.ts";
import { ArgumentError } from "../lib/errors.ts";
import { type ConfigDict, type ConfigSpec, defineConfig, loadConfig } from "../lib/config.ts";
import {
  checkChoice,
  KARRAS_DIFFUSION_SCHEDULERS,
  type Scheduler,
  type SchedulerOutput,
  type StepOptions,
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

/** The config of {@link LMSDiscreteScheduler}: diffusers' keys and defaults. */
export type LMSDiscreteSchedulerConfig = {
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
  /** What the model predicts: `epsilon`, `v_prediction` or `sample`. */
  prediction_type: string;
  /** `linspace`, `leading` or `trailing` (Lin et al. 2023, Table 2). */
  timestep_spacing: string;
  /** Added to `leading` timesteps. */
  steps_offset: number;
};

const PREDICTION_TYPES = ["epsilon", "v_prediction", "sample"];

/** {@link StepOptions} plus diffusers' LMS-only `order` keyword. */
export interface LMSStepOptions extends StepOptions {
  /** How many past derivatives the multistep formula combines at most (default 4). */
  order?: number;
}

/** Default number of past derivatives the multistep formula uses (diffusers' `order=4`). */
const DEFAULT_LMS_ORDER = 4;

/**
 * Linear multistep sampling in sigma: each step integrates the Lagrange
 * polynomial through the last (up to `order`, default 4) ODE derivatives
 * d_k = (x_k − x̂_0)/σ_k from σ_i to σ_{i+1}. The coefficients are the
 * exact integrals of the Lagrange basis polynomials (diffusers gets the
 * same numbers from `scipy.integrate.quad`). Matches diffusers'
 * `LMSDiscreteScheduler`; the derivative history is kept between steps and
 * released by `setTimesteps` and `dispose`.
 *
 * @example
 * ```ts
 * import { tf } from "../lib/tf.ts";
 * import { LMSDiscreteScheduler } from "./lms_discrete.ts";
 * const s = LMSDiscreteScheduler.fromConfig({ use_karras_sigmas: true });
 * s.setTimesteps(10);
 * const x = tf.ones([1, 8, 8, 4]);
 * const out = s.step(tf.zerosLike(x), s.timesteps[0]!, x, { order: 3 });
 * s.dispose();
 * ```
 */
export class LMSDiscreteScheduler extends SigmaSchedulerBase<LMSDiscreteSchedulerConfig>
  implements Scheduler {
  /** Config keys, defaults and kinds. */
  static readonly spec: ConfigSpec<LMSDiscreteSchedulerConfig> = defineConfig<
    LMSDiscreteSchedulerConfig
  >(
    "LMSDiscreteScheduler",
    "scheduler_config.json",
    {
      num_train_timesteps: 1000,
      beta_start: 0.0001,
      beta_end: 0.02,
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
  readonly order = 1;
  /** The last ODE derivatives, oldest first (kept tensors). */
  private derivatives: tf.Tensor[] = [];

  /** Use {@link LMSDiscreteScheduler.fromConfig}. */
  protected constructor(config: Readonly<LMSDiscreteSchedulerConfig>) {
    const name = LMSDiscreteScheduler.spec.className;
    if (config.trained_betas === null) {
      checkChoice(name, "beta_schedule", config.beta_schedule, BETA_SCHEDULES);
    }
    super(LMSDiscreteScheduler.spec, config, alphasCumprod(betasFromConfig(config)));
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
   * import { LMSDiscreteScheduler } from "./lms_discrete.ts";
   * const s = LMSDiscreteScheduler.fromConfig({ beta_schedule: "scaled_linear" }, { steps_offset: 1 });
   * ```
   */
  static fromConfig(json: ConfigDict = {}, overrides: ConfigDict = {}): LMSDiscreteScheduler {
    return new LMSDiscreteScheduler(loadConfig(LMSDiscreteScheduler.spec, json, overrides));
  }

  /**
   * Sets `numInferenceSteps` timesteps and their sigmas (plus a final 0),
   * and clears the step index and the derivative history; an
   * {@link ArgumentError} unless 1 ≤ n ≤ `num_train_timesteps`.
   *
   * @example
   * ```ts
   * import { LMSDiscreteScheduler } from "./lms_discrete.ts";
   * const s = LMSDiscreteScheduler.fromConfig({ timestep_spacing: "leading", steps_offset: 1 });
   * s.setTimesteps(4);
   * console.log(s.timesteps); // [751, 501, 251, 1]
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
      // Karras timesteps stay float64 in diffusers' LMS.
      timesteps = Array.from(sigmas, (s) => sigmaToT(s, table));
    }
    this.timesteps = Array.from(timesteps);
    this.sigmas = Float32Array.of(...Float32Array.from(sigmas), 0);
    this.dispose();
  }

  /**
   * The LMS coefficient of derivative `current` (0 = newest) at step
   * `index` with `order` derivatives: the integral from σ_index to
   * σ_{index+1} of the Lagrange basis polynomial that is 1 at σ_{index−current}
   * and 0 at the other nodes σ_{index−k}, k < order. The polynomial is
   * expanded in u = τ − σ_index and integrated term by term, which is exact.
   *
   * @example
   * ```ts
   * import { LMSDiscreteScheduler } from "./lms_discrete.ts";
   * const s = LMSDiscreteScheduler.fromConfig({});
   * s.setTimesteps(10);
   * console.log(s.lmsCoefficient(1, 0, 0) === s.sigmas[1]! - s.sigmas[0]!); // true
   * ```
   */
  lmsCoefficient(order: number, index: number, current: number): number {
    const s = this.sigmas;
    const a = s[index]!;
    const node = s[index - current]!;
    let poly = [1]; // coefficients of u^0, u^1, ...
    for (let k = 0; k < order; k++) {
      if (k === current) continue;
      const other = s[index - k]!;
      const scale = 1 / (node - other);
      const shift = (a - other) * scale; // factor (u + a − other) / (node − other)
      const next = new Array<number>(poly.length + 1).fill(0);
      for (let m = 0; m < poly.length; m++) {
        next[m] += poly[m]! * shift;
        next[m + 1] += poly[m]! * scale;
      }
      poly = next;
    }
    const h = s[index + 1]! - a;
    let integral = 0;
    let power = h;
    for (let m = 0; m < poly.length; m++) {
      integral += poly[m]! * power / (m + 1);
      power *= h;
    }
    return integral;
  }

  /**
   * One linear multistep step from `timestep` to the next sigma. Option
   * `order` (default 4) caps how many past derivatives are combined.
   *
   * @example
   * ```ts
   * import { tf } from "../lib/tf.ts";
   * import { LMSDiscreteScheduler } from "./lms_discrete.ts";
   * const s = LMSDiscreteScheduler.fromConfig({});
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
    options: LMSStepOptions = {},
  ): SchedulerOutput {
    const maxOrder = options.order ?? DEFAULT_LMS_ORDER;
    if (!Number.isInteger(maxOrder) || maxOrder < 1) {
      throw new ArgumentError(`LMS order must be a positive integer, got ${maxOrder}`);
    }
    const index = this.stepIndexFor(timestep);
    const sigma = this.sigmas[index]!;
    const type = this.config.prediction_type;
    const out = tf.tidy(() => {
      const pred = predictOriginalSample(type, modelOutput, sample, sigma);
      this.derivatives.push(tf.keep(tf.div(tf.sub(sample, pred), sigma)));
      if (this.derivatives.length > maxOrder) this.derivatives.shift()!.dispose();
      // As diffusers: the coefficients assume min(index + 1, order) nodes even when
      // fewer derivatives exist (a run begun mid-schedule), and zip to the shorter list.
      const order = Math.min(index + 1, maxOrder);
      const used = Math.min(order, this.derivatives.length);
      let sum: tf.Tensor | null = null;
      for (let j = 0; j < used; j++) {
        const coeff = Math.fround(this.lmsCoefficient(order, index, j));
        const term = tf.mul(this.derivatives[this.derivatives.length - 1 - j]!, coeff);
        sum = sum === null ? term : tf.add(sum, term);
      }
      return { prevSample: tf.add(sample, sum!), predOriginalSample: pred };
    });
    this.stepIdx = index + 1;
    return out;
  }

  /** Releases the derivative history. */
  override dispose(): void {
    tf.dispose(this.derivatives);
    this.derivatives = [];
  }
}
