/**
 * `PNDMScheduler`: pseudo numerical methods for diffusion models (Liu et
 * al. 2022, "Pseudo Numerical Methods for Diffusion Models on Manifolds"):
 * the transfer part of eq. 9 driven by a Runge-Kutta warm-up (PRK) and a
 * linear multistep method (PLMS), as F-PNDM, matching diffusers'
 * `PNDMScheduler` (v0.27.2).
 *
 * @example
 * ```ts
 * import { tf } from "../lib/tf.ts";
 * import { PNDMScheduler } from "./pndm.ts";
 *
 * const scheduler = PNDMScheduler.fromConfig({ skip_prk_steps: true });
 * scheduler.setTimesteps(50);
 * let x = tf.randomNormal([1, 64, 64, 4]);
 * for (const t of scheduler.timesteps) {
 *   const eps = tf.zerosLike(x); // a UNet's noise prediction
 *   const { prevSample } = scheduler.step(eps, t, x);
 *   tf.dispose([eps, x]);
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
  addNoiseDiscrete,
  checkChoice,
  checkNumInferenceSteps,
  checkTimestepIndex,
  KARRAS_DIFFUSION_SCHEDULERS,
  type Scheduler,
  SchedulerBase,
  type SchedulerOutput,
  type StepOptions,
} from "./scheduler.ts";
import {
  alphasCumprod,
  BETA_SCHEDULES,
  betasFromConfig,
  spacedTimesteps,
  TIMESTEP_SPACINGS,
} from "./schedule.ts";

const f32 = Math.fround;

/**
 * The config of {@link PNDMScheduler}: diffusers' keys and defaults.
 *
 * @example
 * ```ts
 * import { PNDMScheduler, type PNDMSchedulerConfig } from "./pndm.ts";
 * const config: PNDMSchedulerConfig = { ...PNDMScheduler.spec.defaults, skip_prk_steps: true };
 * const s = PNDMScheduler.fromConfig(config);
 * ```
 */
export type PNDMSchedulerConfig = {
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
  /** Skip the Runge-Kutta warm-up and start with PLMS (as Stable Diffusion configs do). */
  skip_prk_steps: boolean;
  /** ᾱ before the first training step: 1 when true, else ᾱ_0. */
  set_alpha_to_one: boolean;
  /** What the model predicts: `epsilon` or `v_prediction`. */
  prediction_type: string;
  /** `leading`, `trailing` or `linspace` (Lin et al. 2023, Table 2). */
  timestep_spacing: string;
  /** Added to `leading` timesteps. */
  steps_offset: number;
};

const PREDICTION_TYPES = ["epsilon", "v_prediction"];
/** F-PNDM's Runge-Kutta order: four model evaluations per PRK step. */
const PNDM_ORDER = 4;

/**
 * Pseudo numerical methods for diffusion models (Liu et al. 2022). Without
 * `skip_prk_steps`, the first three steps are 4th-order pseudo Runge-Kutta
 * (four model calls each, 12 timesteps), then one pseudo linear multistep
 * (PLMS) step per timestep using up to four past noise predictions; with
 * it, PLMS starts at once with a second-order start-up (crowsonkb's PLMS
 * sampler). `step` picks PRK or PLMS; `stepPrk` / `stepPlms` are the two
 * halves. Matches diffusers' `PNDMScheduler`.
 *
 * The scheduler keeps the past noise predictions between steps;
 * `setTimesteps` and `dispose()` release them.
 *
 * @example
 * ```ts
 * import { PNDMScheduler } from "./pndm.ts";
 * const s = PNDMScheduler.fromConfig({});
 * s.setTimesteps(10);
 * console.log(s.timesteps.length, s.prkTimesteps.length, s.plmsTimesteps.length); // 19 12 7
 * ```
 */
export class PNDMScheduler extends SchedulerBase<PNDMSchedulerConfig> implements Scheduler {
  /** Config keys, defaults and kinds. */
  static readonly spec: ConfigSpec<PNDMSchedulerConfig> = defineConfig<PNDMSchedulerConfig>(
    "PNDMScheduler",
    "scheduler_config.json",
    {
      num_train_timesteps: 1000,
      beta_start: 0.0001,
      beta_end: 0.02,
      beta_schedule: "linear",
      trained_betas: null,
      skip_prk_steps: false,
      set_alpha_to_one: false,
      prediction_type: "epsilon",
      timestep_spacing: "leading",
      steps_offset: 0,
    },
    {
      num_train_timesteps: ["integer"],
      trained_betas: ["number[]", "null"],
      steps_offset: ["integer"],
    },
  );
  /** diffusers' `_compatibles`: the KarrasDiffusionSchedulers names. */
  static readonly compatibles: readonly string[] = KARRAS_DIFFUSION_SCHEDULERS;

  /** Model evaluations per step, as diffusers declares it (PRK steps are counted per call). */
  readonly order = 1;
  /** Standard deviation of the initial noise. */
  readonly initNoiseSigma = 1;
  /** The float32 betas. */
  readonly betas: Float32Array;
  /** The float32 cumulative products of `1 - beta`. */
  readonly alphasCumprod: Float32Array;
  /** ᾱ used after the last timestep: 1 with `set_alpha_to_one`, else ᾱ_0. */
  readonly finalAlphaCumprod: number;
  #timesteps: readonly number[] = Object.freeze([]);
  #prkTimesteps: readonly number[] = Object.freeze([]);
  #plmsTimesteps: readonly number[] = Object.freeze([]);
  #numInferenceSteps: number | null = null;
  #counter: number = 0;

  /** Past noise predictions, newest last (at most four kept). */
  #ets: tf.Tensor[] = [];
  /** The sample a PRK step or the PLMS start-up returns to. */
  #curSample: tf.Tensor | null = null;
  /** The running Runge-Kutta sum of the current PRK step. */
  #curModelOutput: tf.Tensor | null = null;

  /** PRK timesteps then PLMS timesteps; empty until `setTimesteps`. */
  get timesteps(): readonly number[] {
    return this.#timesteps;
  }

  /** The Runge-Kutta part of `timesteps` (empty with `skip_prk_steps`). */
  get prkTimesteps(): readonly number[] {
    return this.#prkTimesteps;
  }

  /** The linear multistep part of `timesteps`. */
  get plmsTimesteps(): readonly number[] {
    return this.#plmsTimesteps;
  }

  /** The step count of the last `setTimesteps`; null before it. */
  get numInferenceSteps(): number | null {
    return this.#numInferenceSteps;
  }

  /** Model calls consumed since `setTimesteps`. */
  get counter(): number {
    return this.#counter;
  }

  /** Use {@link PNDMScheduler.fromConfig}. */
  protected constructor(config: Readonly<PNDMSchedulerConfig>) {
    super(PNDMScheduler.spec, config);
    const name = PNDMScheduler.spec.className;
    checkChoice(name, "prediction_type", config.prediction_type, PREDICTION_TYPES);
    checkChoice(name, "timestep_spacing", config.timestep_spacing, TIMESTEP_SPACINGS);
    if (config.trained_betas === null) {
      checkChoice(name, "beta_schedule", config.beta_schedule, BETA_SCHEDULES);
    }
    this.betas = betasFromConfig(config);
    this.alphasCumprod = alphasCumprod(this.betas);
    this.finalAlphaCumprod = config.set_alpha_to_one ? 1 : this.alphasCumprod[0]!;
  }

  /**
   * Builds a scheduler from `scheduler_config.json` content (any
   * scheduler's: unknown keys are kept) plus overrides.
   *
   * @example
   * ```ts
   * import { PNDMScheduler } from "./pndm.ts";
   * const s = PNDMScheduler.fromConfig({ beta_schedule: "scaled_linear" }, { skip_prk_steps: true });
   * ```
   */
  static fromConfig(json: ConfigDict = {}, overrides: ConfigDict = {}): PNDMScheduler {
    return new PNDMScheduler(loadConfig(PNDMScheduler.spec, json, overrides));
  }

  /**
   * Sets the PRK and PLMS timesteps for `numInferenceSteps` (an
   * {@link ArgumentError} unless 1 ≤ n ≤ `num_train_timesteps`) and forgets
   * the previous run's history. As in diffusers, the Runge-Kutta warm-up
   * takes the last four spaced timesteps, so n < 4 gives a shorter warm-up.
   *
   * @example
   * ```ts
   * import { PNDMScheduler } from "./pndm.ts";
   * const s = PNDMScheduler.fromConfig({ skip_prk_steps: true });
   * s.setTimesteps(4); // [750, 500, 500, 250, 0]
   * ```
   */
  setTimesteps(numInferenceSteps: number): void {
    const T = this.config.num_train_timesteps;
    checkNumInferenceSteps(numInferenceSteps, T);
    const ascending = spacedTimesteps(
      this.config.timestep_spacing,
      T,
      numInferenceSteps,
      this.config.steps_offset,
    ).reverse();
    let prk: number[];
    let plms: number[];
    if (this.config.skip_prk_steps) {
      // crowsonkb's PLMS: the second-to-last timestep is repeated for the start-up step.
      prk = [];
      plms = [...ascending.slice(0, -1), ...ascending.slice(-2, -1), ...ascending.slice(-1)]
        .reverse();
    } else {
      // The last four timesteps interleaved with their half-step points (the
      // final half point dropped), each evaluated twice except the two ends.
      const half = Math.floor(Math.floor(T / numInferenceSteps) / 2);
      const points = ascending.slice(-PNDM_ORDER).flatMap((t) => [t, t + half]).slice(0, -1);
      prk = points.flatMap((t) => [t, t]).slice(1, -1).reverse();
      plms = ascending.slice(0, -3).reverse();
    }
    this.#prkTimesteps = Object.freeze(prk);
    this.#plmsTimesteps = Object.freeze(plms);
    this.#timesteps = Object.freeze([...prk, ...plms]);
    this.#numInferenceSteps = numInferenceSteps;
    this.resetHistory();
  }

  /**
   * One step: a Runge-Kutta stage while PRK timesteps remain (and
   * `skip_prk_steps` is off), else a linear multistep step. Options are
   * ignored (PNDM is deterministic).
   *
   * @example
   * ```ts
   * import { tf } from "../lib/tf.ts";
   * import { PNDMScheduler } from "./pndm.ts";
   * const s = PNDMScheduler.fromConfig({ skip_prk_steps: true });
   * s.setTimesteps(10);
   * const x = tf.ones([1, 4, 4, 3]);
   * const { prevSample } = s.step(tf.zerosLike(x), s.timesteps[0]!, x);
   * ```
   */
  step(
    modelOutput: tf.Tensor,
    timestep: number,
    sample: tf.Tensor,
    _options: StepOptions = {},
  ): SchedulerOutput {
    return this.counter < this.prkTimesteps.length && !this.config.skip_prk_steps
      ? this.stepPrk(modelOutput, timestep, sample)
      : this.stepPlms(modelOutput, timestep, sample);
  }

  /**
   * One stage of the pseudo Runge-Kutta method: the four model outputs of a
   * PRK step are combined with weights 1/6, 1/3, 1/3, 1/6, each stage moving
   * from the step's start sample by a half or a full step.
   *
   * @example
   * ```ts
   * import { tf } from "../lib/tf.ts";
   * import { PNDMScheduler } from "./pndm.ts";
   * const s = PNDMScheduler.fromConfig({});
   * s.setTimesteps(10);
   * const x = tf.ones([1, 4, 4, 3]);
   * const { prevSample } = s.stepPrk(tf.zerosLike(x), s.prkTimesteps[0]!, x);
   * ```
   */
  stepPrk(modelOutput: tf.Tensor, timestep: number, sample: tf.Tensor): SchedulerOutput {
    const n = this.requireSteps();
    if (this.counter >= this.prkTimesteps.length) {
      throw new ArgumentError(`all ${this.prkTimesteps.length} PRK stages are done; use stepPlms`);
    }
    const T = this.config.num_train_timesteps;
    const stage = this.counter % 4;
    // Odd stages stay at the half-step point; even ones move a half step.
    const prevTimestep = timestep - (this.counter % 2 ? 0 : Math.floor(Math.floor(T / n) / 2));
    const start = this.prkTimesteps[this.counter - stage]!;

    const prevSample = tf.tidy(() => {
      let eps = modelOutput;
      if (stage === 0) {
        this.replaceCurModelOutput(tf.mul(1 / 6, modelOutput));
        this.#ets.push(tf.keep(tf.clone(modelOutput)));
        this.replaceCurSample(sample);
      } else if (stage === 3) {
        eps = tf.add(this.#curModelOutput!, tf.mul(1 / 6, modelOutput));
        this.replaceCurModelOutput(null);
      } else {
        this.replaceCurModelOutput(tf.add(this.#curModelOutput!, tf.mul(1 / 3, modelOutput)));
      }
      return this.prevSample(this.#curSample ?? sample, start, prevTimestep, eps);
    });
    this.#counter++;
    return { prevSample };
  }

  /**
   * One pseudo linear multistep step (Adams-Bashforth weights of order 1 to
   * 4 over the kept noise predictions). With `skip_prk_steps`, the first two
   * calls are the start-up: a step from the first timestep, then a repeat
   * of it with the averaged prediction.
   *
   * @example
   * ```ts
   * import { tf } from "../lib/tf.ts";
   * import { PNDMScheduler } from "./pndm.ts";
   * const s = PNDMScheduler.fromConfig({ skip_prk_steps: true });
   * s.setTimesteps(10);
   * const x = tf.ones([1, 4, 4, 3]);
   * const { prevSample } = s.stepPlms(tf.zerosLike(x), s.plmsTimesteps[0]!, x);
   * ```
   */
  stepPlms(modelOutput: tf.Tensor, timestep: number, sample: tf.Tensor): SchedulerOutput {
    const n = this.requireSteps();
    if (!this.config.skip_prk_steps && this.#ets.length < 3) {
      throw new ArgumentError(
        "stepPlms runs only after the 12 Runge-Kutta stages (stepPrk), unless skip_prk_steps is set",
      );
    }
    const stride = Math.floor(this.config.num_train_timesteps / n);
    let from = timestep;
    let prevTimestep = timestep - stride;
    if (this.counter !== 1) {
      this.#ets.push(tf.keep(tf.clone(modelOutput)));
      // Four predictions are the most any formula below uses.
      while (this.#ets.length > 4) this.#ets.shift()!.dispose();
    } else {
      // The start-up's second call repeats the first step.
      prevTimestep = timestep;
      from = timestep + stride;
    }

    const prevSample = tf.tidy(() => {
      const e = (k: number) => this.#ets[this.#ets.length - k]!;
      let x = sample;
      let eps: tf.Tensor;
      if (this.#ets.length === 1 && this.counter === 0) {
        eps = modelOutput;
        this.replaceCurSample(sample);
      } else if (this.#ets.length === 1 && this.counter === 1) {
        eps = tf.div(tf.add(modelOutput, e(1)), 2);
        x = this.#curSample!;
      } else if (this.#ets.length === 2) {
        eps = tf.div(tf.sub(tf.mul(3, e(1)), e(2)), 2);
      } else if (this.#ets.length === 3) {
        eps = tf.div(tf.add(tf.sub(tf.mul(23, e(1)), tf.mul(16, e(2))), tf.mul(5, e(3))), 12);
      } else {
        const sum = tf.sub(
          tf.add(tf.sub(tf.mul(55, e(1)), tf.mul(59, e(2))), tf.mul(37, e(3))),
          tf.mul(9, e(4)),
        );
        eps = tf.mul(1 / 24, sum);
      }
      return this.prevSample(x, from, prevTimestep, eps);
    });
    // The start-up sample is used once.
    if (this.#ets.length === 1 && this.counter === 1) this.replaceCurSample(null);
    this.#counter++;
    return { prevSample };
  }

  /**
   * Noises `original` to `timesteps` (one integer per batch item, or one
   * for all): `sqrt(ᾱ_t) · x_0 + sqrt(1 - ᾱ_t) · noise`.
   *
   * @example
   * ```ts
   * import { tf } from "../lib/tf.ts";
   * import { PNDMScheduler } from "./pndm.ts";
   * const x0 = tf.zeros([2, 8, 8, 3]);
   * const xt = PNDMScheduler.fromConfig({}).addNoise(x0, tf.randomNormal(x0.shape), [10, 500]);
   * ```
   */
  addNoise(original: tf.Tensor, noise: tf.Tensor, timesteps: readonly number[]): tf.Tensor {
    return addNoiseDiscrete(this.alphasCumprod, original, noise, timesteps);
  }

  /** Releases the kept noise predictions and samples. */
  override dispose(): void {
    this.resetHistory();
  }

  /**
   * x_{t-δ} from x_t and ε by eq. 9 of Liu et al. (2022): the DDIM-like
   * transfer `sqrt(ᾱ_prev/ᾱ_t) · x - (ᾱ_prev - ᾱ_t) · ε / (ᾱ_t sqrt(1-ᾱ_prev) + sqrt(ᾱ_t (1-ᾱ_t) ᾱ_prev))`.
   */
  private prevSample(
    sample: tf.Tensor,
    timestep: number,
    prevTimestep: number,
    modelOutput: tf.Tensor,
  ): tf.Tensor {
    checkTimestepIndex(timestep, this.config.num_train_timesteps);
    const alphaProd = this.alphasCumprod[timestep]!;
    const alphaProdPrev = prevTimestep >= 0
      ? this.alphasCumprod[prevTimestep]!
      : this.finalAlphaCumprod;
    const betaProd = f32(1 - alphaProd);
    const betaProdPrev = f32(1 - alphaProdPrev);
    let eps = modelOutput;
    if (this.config.prediction_type === "v_prediction") {
      eps = tf.add(
        tf.mul(f32(Math.sqrt(alphaProd)), modelOutput),
        tf.mul(f32(Math.sqrt(betaProd)), sample),
      );
    }
    const sampleCoeff = f32(Math.sqrt(f32(alphaProdPrev / alphaProd)));
    const denom = f32(
      f32(alphaProd * f32(Math.sqrt(betaProdPrev))) +
        f32(Math.sqrt(f32(f32(alphaProd * betaProd) * alphaProdPrev))),
    );
    return tf.sub(
      tf.mul(sampleCoeff, sample),
      tf.div(tf.mul(f32(alphaProdPrev - alphaProd), eps), denom),
    );
  }

  private requireSteps(): number {
    const n = this.#numInferenceSteps;
    if (n === null) throw new ArgumentError("call setTimesteps before step");
    return n;
  }

  /** Keeps `value` (or nothing) as the start-up / PRK sample, releasing the old one. */
  private replaceCurSample(value: tf.Tensor | null): void {
    this.#curSample?.dispose();
    this.#curSample = value === null ? null : tf.keep(tf.clone(value));
  }

  /** Keeps `value` (or nothing) as the running Runge-Kutta sum, releasing the old one. */
  private replaceCurModelOutput(value: tf.Tensor | null): void {
    this.#curModelOutput?.dispose();
    this.#curModelOutput = value === null ? null : tf.keep(value);
  }

  private resetHistory(): void {
    tf.dispose([...this.#ets, this.#curSample ?? [], this.#curModelOutput ?? []]);
    this.#ets = [];
    this.#curSample = null;
    this.#curModelOutput = null;
    this.#counter = 0;
  }
}
