/**
 * `DPMSolverMultistepScheduler`: the multistep DPM-Solver (Lu et al. 2022,
 * "DPM-Solver: A Fast ODE Solver for Diffusion Probabilistic Model Sampling
 * in Around 10 Steps") and DPM-Solver++ (Lu et al. 2022, "DPM-Solver++:
 * Fast Solver for Guided Sampling of Diffusion Probabilistic Models",
 * Algorithms 2 and 3: the 2M and 3M multistep updates, plus the SDE
 * variant), matching diffusers' `DPMSolverMultistepScheduler` (v0.27.2).
 *
 * The module also exports the pieces UniPC shares with it: the float32
 * (α_t, σ_t, λ_t) of a noise level and the multistep timestep spacing.
 *
 * @example
 * ```ts
 * import { tf } from "../lib/tf.ts";
 * import { DPMSolverMultistepScheduler } from "./dpmsolver_multistep.ts";
 *
 * const scheduler = DPMSolverMultistepScheduler.fromConfig({ beta_schedule: "scaled_linear" });
 * scheduler.setTimesteps(20);
 * let x = tf.randomNormal([1, 8, 8, 4]);
 * for (const t of scheduler.timesteps) {
 *   const eps = tf.zerosLike(x); // a UNet's noise prediction
 *   const { prevSample } = scheduler.step(eps, t, x);
 *   tf.dispose([eps, x]);
 *   x = prevSample;
 * }
 * scheduler.dispose(); // releases the kept model outputs
 * ```
 *
 * @module
 */

import { tf } from "../lib/tf.ts";
import { ArgumentError, ConfigError } from "../lib/errors.ts";
import { type ConfigDict, type ConfigSpec, defineConfig, loadConfig } from "../lib/config.ts";
import {
  checkChoice,
  checkNumInferenceSteps,
  checkRange,
  KARRAS_DIFFUSION_SCHEDULERS,
  type Layout,
  perBatch,
  type Scheduler,
  SchedulerBase,
  type SchedulerOutput,
  type StepOptions,
  thresholdSample,
} from "./scheduler.ts";
import {
  alphasCumprod,
  arangeF64,
  BETA_SCHEDULES,
  betasFromConfig,
  linspaceF64,
  rescaleZeroTerminalSnr,
  roundHalfEven,
  TIMESTEP_SPACINGS,
} from "./schedule.ts";
import {
  indexForTimestep,
  interpSigmas,
  karrasSigmas,
  logSigmas,
  sigmaToT,
  trainSigmas,
} from "./sigmas.ts";

const f32 = Math.fround;

/** The config of {@link DPMSolverMultistepScheduler}: diffusers' keys and defaults. */
export type DPMSolverMultistepSchedulerConfig = {
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
  /** 1, 2 or 3: how many past model outputs a step uses. */
  solver_order: number;
  /** What the model predicts: `epsilon`, `sample` or `v_prediction`. */
  prediction_type: string;
  /** Dynamic thresholding of the predicted x_0 (Imagen). */
  thresholding: boolean;
  /** Quantile of |x_0| used as the dynamic threshold. */
  dynamic_thresholding_ratio: number;
  /** Largest dynamic threshold. */
  sample_max_value: number;
  /** `dpmsolver++`, `sde-dpmsolver++`, `dpmsolver` or `sde-dpmsolver`. */
  algorithm_type: string;
  /** Second-order update: `midpoint` or `heun`. */
  solver_type: string;
  /** First order at the last step (and second at the one before) when there are fewer than 15 steps. */
  lower_order_final: boolean;
  /** First order at the last step whatever the step count. */
  euler_at_final: boolean;
  /** Use the Karras et al. (2022) noise schedule (eq. 5, ρ = 7). */
  use_karras_sigmas: boolean | null;
  /** Space the steps uniformly in log-sigma, as Lu et al. do. */
  use_lu_lambdas: boolean | null;
  /** Noise level after the last step: `zero` or `sigma_min` (the first training sigma). */
  final_sigmas_type: string;
  /** Timesteps whose λ_t = log(α_t / σ_t) is below this are not used (needed by the cosine schedule). */
  lambda_min_clipped: number;
  /** `learned` / `learned_range` when the model also predicts a variance, which is split off unused. */
  variance_type: string | null;
  /** `linspace`, `leading` or `trailing` (Lin et al. 2023, Table 2). */
  timestep_spacing: string;
  /** Added to `leading` timesteps. */
  steps_offset: number;
  /** Rescale betas to zero terminal SNR (Lin et al. 2023). */
  rescale_betas_zero_snr: boolean;
};

const ALGORITHM_TYPES = ["dpmsolver++", "sde-dpmsolver++", "dpmsolver", "sde-dpmsolver"];
const SOLVER_TYPES = ["midpoint", "heun"];
const FINAL_SIGMAS_TYPES = ["zero", "sigma_min"];
const PREDICTION_TYPES = ["epsilon", "sample", "v_prediction"];

/**
 * α_t, σ_t and the half log-SNR λ_t = log α_t − log σ_t of a VP noise
 * level, as float32 values.
 *
 * @example
 * ```ts
 * import { noiseLevel, type NoiseLevel } from "./dpmsolver_multistep.ts";
 * const level: NoiseLevel = noiseLevel(1);
 * console.log(level.lambda); // 0
 * ```
 */
export interface NoiseLevel {
  /** Signal scale α_t = 1 / √(σ² + 1). */
  readonly alpha: number;
  /** Noise scale σ_t = σ · α_t. */
  readonly sigma: number;
  /** λ_t = log α_t − log σ_t (+∞ at σ = 0). */
  readonly lambda: number;
}

/**
 * The VP (α_t, σ_t, λ_t) of the k-diffusion noise level σ = σ_t / α_t,
 * rounded to float32 at every operation as diffusers' 0-dim float32 tensor
 * math (`_sigma_to_alpha_sigma_t`, then `log α − log σ`) rounds them.
 *
 * @example
 * ```ts
 * import { noiseLevel } from "./dpmsolver_multistep.ts";
 * const { alpha, sigma, lambda } = noiseLevel(0); // 1, 0, Infinity: the clean end
 * ```
 */
export function noiseLevel(sigma: number): NoiseLevel {
  const alpha = f32(1 / f32(Math.sqrt(f32(f32(sigma * sigma) + 1))));
  const sigmaT = f32(sigma * alpha);
  return { alpha, sigma: sigmaT, lambda: f32(f32(Math.log(alpha)) - f32(Math.log(sigmaT))) };
}

/**
 * The integer timesteps of diffusers' multistep solvers (DPM-Solver,
 * UniPC, DEIS), descending, as NumPy computes them from `n + 1` points of
 * which the last (t = 0 side) is dropped:
 * - `linspace`: `round(linspace(0, last − 1, n + 1))[::-1][:-1]`;
 * - `leading`: `arange(n + 1) · (last // (n + 1))`, reversed, minus the 0, plus `steps_offset`;
 * - `trailing`: `round(arange(last, 0, −T / n)) − 1`.
 *
 * `last` is `T` unless λ-clipping cut the noisiest timesteps off. An unknown
 * spacing is a {@link ConfigError} on `timestep_spacing`.
 *
 * @example
 * ```ts
 * import { multistepTimesteps } from "./dpmsolver_multistep.ts";
 * console.log(multistepTimesteps("linspace", 1000, 4)); // [999, 749, 500, 250]
 * console.log(multistepTimesteps("leading", 1000, 4, 1000, 1)); // [801, 601, 401, 201]
 * ```
 */
export function multistepTimesteps(
  spacing: string,
  numTrainTimesteps: number,
  numInferenceSteps: number,
  lastTimestep: number = numTrainTimesteps,
  stepsOffset = 0,
): number[] {
  const n = numInferenceSteps;
  switch (spacing) {
    case "linspace":
      return linspaceF64(0, lastTimestep - 1, n + 1).map(roundHalfEven).reverse().slice(0, n);
    case "leading": {
      const ratio = Math.floor(lastTimestep / (n + 1));
      return Array.from({ length: n }, (_, i) => (n - i) * ratio + stepsOffset);
    }
    case "trailing":
      return arangeF64(lastTimestep, 0, -numTrainTimesteps / n).map((t) => roundHalfEven(t) - 1);
    default:
      throw new ConfigError(
        `unknown timestep spacing ${JSON.stringify(spacing)}; valid: ${
          TIMESTEP_SPACINGS.join(", ")
        }`,
        { key: "timestep_spacing" },
      );
  }
}

/**
 * diffusers' `index_for_timestep` of the multistep solvers: the second
 * match when `timestep` repeats, the only match otherwise, and the last
 * index when the timestep is not in the schedule.
 *
 * @example
 * ```ts
 * import { multistepIndex } from "./dpmsolver_multistep.ts";
 * console.log(multistepIndex([999, 500, 0], 7)); // 2
 * ```
 */
export function multistepIndex(schedule: readonly number[], timestep: number): number {
  return schedule.includes(timestep) ? indexForTimestep(schedule, timestep) : schedule.length - 1;
}

/** The noise prediction of a learned-variance output: its first `channels` channels. */
function leadingChannels(
  modelOutput: tf.Tensor,
  channels: number,
  layout: Layout,
): tf.Tensor {
  const axis = layout === "NCHW" ? 1 : modelOutput.rank - 1;
  const size = modelOutput.shape.map((d, i) => (i === axis ? channels : d));
  return tf.slice(modelOutput, new Array(modelOutput.rank).fill(0), size);
}

/**
 * Multistep DPM-Solver / DPM-Solver++ (Lu et al. 2022): a fast solver of
 * the diffusion ODE in λ_t (half log-SNR) that reuses the model outputs of
 * the previous one or two steps for second- and third-order accuracy
 * (`solver_order` 2 = "DPM-Solver++(2M)", 3 = "3M"). `dpmsolver++` solves
 * with the data prediction x̂_0 (recommended, and for guidance), `dpmsolver`
 * with the noise prediction; the `sde-` variants add fresh noise each step
 * (drawn from `generator`, or `varianceNoise`). Matches diffusers'
 * `DPMSolverMultistepScheduler`, including Karras and uniform-λ sigmas,
 * λ clipping, lower-order final steps and dynamic thresholding.
 *
 * The last `solver_order` converted model outputs are kept between steps;
 * `setTimesteps` and `dispose` release them.
 *
 * @example
 * ```ts
 * import { tf } from "../lib/tf.ts";
 * import { DPMSolverMultistepScheduler } from "./dpmsolver_multistep.ts";
 * const s = DPMSolverMultistepScheduler.fromConfig({ solver_order: 3, use_karras_sigmas: true });
 * s.setTimesteps(10);
 * const x = tf.ones([1, 8, 8, 3]);
 * const { prevSample } = s.step(tf.zerosLike(x), s.timesteps[0]!, x);
 * s.dispose();
 * ```
 */
export class DPMSolverMultistepScheduler extends SchedulerBase<DPMSolverMultistepSchedulerConfig>
  implements Scheduler {
  /** Config keys, defaults and kinds. */
  static readonly spec: ConfigSpec<DPMSolverMultistepSchedulerConfig> = defineConfig<
    DPMSolverMultistepSchedulerConfig
  >(
    "DPMSolverMultistepScheduler",
    "scheduler_config.json",
    {
      num_train_timesteps: 1000,
      beta_start: 0.0001,
      beta_end: 0.02,
      beta_schedule: "linear",
      trained_betas: null,
      solver_order: 2,
      prediction_type: "epsilon",
      thresholding: false,
      dynamic_thresholding_ratio: 0.995,
      sample_max_value: 1.0,
      algorithm_type: "dpmsolver++",
      solver_type: "midpoint",
      lower_order_final: true,
      euler_at_final: false,
      use_karras_sigmas: false,
      use_lu_lambdas: false,
      final_sigmas_type: "zero",
      lambda_min_clipped: -Infinity,
      variance_type: null,
      timestep_spacing: "linspace",
      steps_offset: 0,
      rescale_betas_zero_snr: false,
    },
    {
      num_train_timesteps: ["integer"],
      trained_betas: ["number[]", "null"],
      solver_order: ["integer"],
      use_karras_sigmas: ["boolean", "null"],
      use_lu_lambdas: ["boolean", "null"],
      variance_type: ["string", "null"],
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
  /** The timesteps to evaluate, descending; all training timesteps until `setTimesteps`. */
  timesteps: readonly number[];
  /** σ of each timestep, then the final σ; the training sigmas until `setTimesteps`. */
  sigmas: Float32Array;
  /** The number of timesteps set by `setTimesteps`; null before it. */
  numInferenceSteps: number | null = null;

  /** σ of every training timestep. */
  private readonly trainSigmas: Float32Array;
  /** The converted model outputs of the last `solver_order` steps, oldest first. */
  private modelOutputs: (tf.Tensor | null)[];
  /** How many steps have run, capped at `solver_order` (warm-up of the multistep order). */
  private lowerOrderNums = 0;
  private stepIdx: number | null = null;
  private beginIdx: number | null = null;

  /** Use {@link DPMSolverMultistepScheduler.fromConfig}. */
  protected constructor(config: Readonly<DPMSolverMultistepSchedulerConfig>) {
    super(DPMSolverMultistepScheduler.spec, config);
    const name = DPMSolverMultistepScheduler.spec.className;
    checkChoice(name, "algorithm_type", config.algorithm_type, ALGORITHM_TYPES);
    checkChoice(name, "solver_type", config.solver_type, SOLVER_TYPES);
    checkChoice(name, "final_sigmas_type", config.final_sigmas_type, FINAL_SIGMAS_TYPES);
    checkChoice(name, "prediction_type", config.prediction_type, PREDICTION_TYPES);
    checkChoice(name, "timestep_spacing", config.timestep_spacing, TIMESTEP_SPACINGS);
    if (config.trained_betas === null) {
      checkChoice(name, "beta_schedule", config.beta_schedule, BETA_SCHEDULES);
    }
    checkRange("solver_order", config.solver_order, 1, 3);
    if (config.thresholding) {
      checkRange("dynamic_thresholding_ratio", config.dynamic_thresholding_ratio, 0, 1);
    }
    if (!config.algorithm_type.endsWith("dpmsolver++") && config.final_sigmas_type === "zero") {
      // The noise-prediction solvers divide by σ_t, which a final σ of 0 makes infinite.
      throw new ConfigError(
        `"zero" is not supported with algorithm_type ${config.algorithm_type}; use "sigma_min"`,
        { key: "final_sigmas_type" },
      );
    }
    if (config.algorithm_type.startsWith("sde-") && config.solver_order === 3) {
      // diffusers has no third-order SDE update (it fails at the third step).
      throw new ConfigError(`3 is not supported with algorithm_type ${config.algorithm_type}`, {
        key: "solver_order",
      });
    }
    let betas = betasFromConfig(config);
    if (config.rescale_betas_zero_snr) betas = rescaleZeroTerminalSnr(betas);
    this.betas = betas;
    const cumprod = alphasCumprod(betas);
    // Zero terminal SNR would make the first sigma infinite; diffusers uses float16's smallest subnormal.
    if (config.rescale_betas_zero_snr) cumprod[cumprod.length - 1] = 2 ** -24;
    this.alphasCumprod = cumprod;
    this.trainSigmas = trainSigmas(cumprod);
    this.sigmas = this.trainSigmas;
    const T = config.num_train_timesteps;
    this.timesteps = Object.freeze(Array.from({ length: T }, (_, i) => T - 1 - i));
    this.modelOutputs = new Array(config.solver_order).fill(null);
  }

  /**
   * Builds a scheduler from `scheduler_config.json` content (any
   * scheduler's: unknown keys are kept) plus overrides. As in diffusers, the
   * DEIS `algorithm_type` `deis` becomes `dpmsolver++` and the UniPC / DEIS
   * solver types `bh1`, `bh2`, `logrho` become `midpoint`, so configs can
   * be swapped between the multistep solvers.
   *
   * @example
   * ```ts
   * import { DPMSolverMultistepScheduler } from "./dpmsolver_multistep.ts";
   * const s = DPMSolverMultistepScheduler.fromConfig({ _class_name: "UniPCMultistepScheduler", solver_type: "bh2" });
   * console.log(s.config.solver_type); // "midpoint"
   * ```
   */
  static fromConfig(
    json: ConfigDict = {},
    overrides: ConfigDict = {},
  ): DPMSolverMultistepScheduler {
    const spec = DPMSolverMultistepScheduler.spec;
    let config = loadConfig(spec, json, overrides);
    const fixes: ConfigDict = {};
    if (config.algorithm_type === "deis") fixes.algorithm_type = "dpmsolver++";
    if (["logrho", "bh1", "bh2"].includes(config.solver_type)) fixes.solver_type = "midpoint";
    if (Object.keys(fixes).length > 0) config = loadConfig(spec, config, fixes);
    return new DPMSolverMultistepScheduler(config);
  }

  /** The index of the next step in `timesteps`, or null before the first step. */
  get stepIndex(): number | null {
    return this.stepIdx;
  }

  /** The index the run starts at, if set with {@link setBeginIndex}. */
  get beginIndex(): number | null {
    return this.beginIdx;
  }

  /**
   * Sets the index of the first timestep of the run (pipelines call this
   * before an img2img loop that starts mid-schedule).
   *
   * @example
   * ```ts
   * import { DPMSolverMultistepScheduler } from "./dpmsolver_multistep.ts";
   * const s = DPMSolverMultistepScheduler.fromConfig({});
   * s.setTimesteps(20);
   * s.setBeginIndex(10);
   * ```
   */
  setBeginIndex(beginIndex = 0): void {
    if (!Number.isInteger(beginIndex) || beginIndex < 0 || beginIndex >= this.timesteps.length) {
      throw new ArgumentError(
        `begin index must be an integer in [0, ${this.timesteps.length - 1}], got ${beginIndex}`,
      );
    }
    this.beginIdx = beginIndex;
  }

  /**
   * Sets `numInferenceSteps` timesteps and their sigmas (plus the final σ)
   * and starts a new run: kept model outputs are released and the order
   * warm-up and step index reset. An {@link ArgumentError} unless
   * 1 ≤ n ≤ `num_train_timesteps`.
   *
   * @example
   * ```ts
   * import { DPMSolverMultistepScheduler } from "./dpmsolver_multistep.ts";
   * const s = DPMSolverMultistepScheduler.fromConfig({});
   * s.setTimesteps(10);
   * console.log(s.timesteps); // [999, 899, 799, 699, 599, 500, 400, 300, 200, 100]
   * ```
   */
  setTimesteps(numInferenceSteps: number): void {
    const c = this.config;
    const T = c.num_train_timesteps;
    checkNumInferenceSteps(numInferenceSteps, T);
    const lastTimestep = T - this.clippedCount();
    let timesteps = multistepTimesteps(
      c.timestep_spacing,
      T,
      numInferenceSteps,
      lastTimestep,
      c.steps_offset,
    );
    let sigmas: ArrayLike<number>;
    if (c.use_karras_sigmas) {
      sigmas = karrasSigmas(this.trainSigmas[0]!, this.trainSigmas[T - 1]!, numInferenceSteps);
      timesteps = this.timestepsOf(sigmas);
    } else if (c.use_lu_lambdas) {
      // Uniform in log σ between the ends of the training schedule (Lu et al.).
      const table = logSigmas(this.trainSigmas);
      const lo = table[0]!;
      const hi = table[T - 1]!;
      sigmas = linspaceF64(0, 1, numInferenceSteps).map((r) => Math.exp(hi + r * (lo - hi)));
      timesteps = this.timestepsOf(sigmas);
    } else {
      sigmas = interpSigmas(timesteps, this.trainSigmas);
    }
    const last = c.final_sigmas_type === "zero" ? 0 : this.trainSigmas[0]!;
    this.sigmas = Float32Array.from([...Array.from(sigmas), last]);
    this.timesteps = Object.freeze(timesteps);
    this.numInferenceSteps = timesteps.length;
    this.resetHistory();
    this.stepIdx = null;
    this.beginIdx = null;
  }

  /**
   * One multistep DPM-Solver step from `timestep` to the next timestep:
   * first order (DDIM-like) while the history warms up and, per
   * `lower_order_final` / `euler_at_final` / `final_sigmas_type`, at the
   * end; otherwise `solver_order`. The `sde-` algorithms add noise from
   * `varianceNoise` or `generator`. An {@link ArgumentError} before
   * `setTimesteps`.
   *
   * @example
   * ```ts
   * import { tf } from "../lib/tf.ts";
   * import { DPMSolverMultistepScheduler } from "./dpmsolver_multistep.ts";
   * const s = DPMSolverMultistepScheduler.fromConfig({});
   * s.setTimesteps(10);
   * const x = tf.ones([1, 4, 4, 3]);
   * const { prevSample } = s.step(tf.zerosLike(x), 999, x);
   * s.dispose();
   * ```
   */
  step(
    modelOutput: tf.Tensor,
    timestep: number,
    sample: tf.Tensor,
    options: StepOptions = {},
  ): SchedulerOutput {
    if (this.numInferenceSteps === null) {
      throw new ArgumentError("call setTimesteps before step");
    }
    const c = this.config;
    if (this.stepIdx === null) {
      this.stepIdx = this.beginIdx ?? multistepIndex(this.timesteps, timestep);
    }
    const i = this.stepIdx;
    if (i >= this.timesteps.length) {
      throw new ArgumentError(
        `step called after the last timestep (${this.timesteps.length} steps)`,
      );
    }
    const n = this.timesteps.length;
    // Lower orders at the end stabilise sampling with few steps.
    const lowerOrderFinal = i === n - 1 &&
      (c.euler_at_final || (c.lower_order_final && n < 15) || c.final_sigmas_type === "zero");
    const lowerOrderSecond = i === n - 2 && c.lower_order_final && n < 15;

    const converted = tf.keep(tf.tidy(() => this.convertModelOutput(modelOutput, sample, i)));
    this.modelOutputs.shift()?.dispose();
    this.modelOutputs.push(converted);

    const sde = c.algorithm_type.startsWith("sde-");
    const noise = sde ? this.noiseLike(sample, options) : null;
    const prevSample = tf.tidy(() => {
      if (c.solver_order === 1 || this.lowerOrderNums < 1 || lowerOrderFinal) {
        return this.firstOrderUpdate(converted, sample, noise, i);
      }
      if (c.solver_order === 2 || this.lowerOrderNums < 2 || lowerOrderSecond) {
        return this.secondOrderUpdate(sample, noise, i);
      }
      return this.thirdOrderUpdate(sample, i);
    });
    if (noise && noise !== options.varianceNoise) noise.dispose();
    if (this.lowerOrderNums < c.solver_order) this.lowerOrderNums++;
    this.stepIdx = i + 1;
    return { prevSample };
  }

  /**
   * Forward diffusion `α_t · original + σ_t · noise` at each timestep's
   * noise level: the timestep's position in `timesteps` before a run (the
   * second match when repeated), else the current (or begin) index.
   *
   * @example
   * ```ts
   * import { tf } from "../lib/tf.ts";
   * import { DPMSolverMultistepScheduler } from "./dpmsolver_multistep.ts";
   * const s = DPMSolverMultistepScheduler.fromConfig({});
   * s.setTimesteps(10);
   * const x0 = tf.zeros([2, 8, 8, 3]);
   * const xt = s.addNoise(x0, tf.randomNormal(x0.shape), [999, 500]);
   * ```
   */
  addNoise(original: tf.Tensor, noise: tf.Tensor, timesteps: readonly number[]): tf.Tensor {
    const index = this.beginIdx === null ? null : this.stepIdx ?? this.beginIdx;
    const levels = timesteps.map((t) =>
      noiseLevel(this.sigmas[index ?? multistepIndex(this.timesteps, t)]!)
    );
    return tf.tidy(() =>
      tf.add(
        tf.mul(perBatch(levels.map((l) => l.alpha), original.rank), original),
        tf.mul(perBatch(levels.map((l) => l.sigma), original.rank), noise),
      )
    );
  }

  /** Releases the kept model outputs. */
  override dispose(): void {
    this.resetHistory();
  }

  /** Frees the model-output history and restarts the order warm-up. */
  private resetHistory(): void {
    for (const m of this.modelOutputs) m?.dispose();
    this.modelOutputs = new Array(this.config.solver_order).fill(null);
    this.lowerOrderNums = 0;
  }

  /** How many of the noisiest training timesteps have λ_t below `lambda_min_clipped`. */
  private clippedCount(): number {
    const threshold = f32(this.config.lambda_min_clipped);
    if (threshold === -Infinity) return 0;
    // torch.searchsorted (left) over λ_t flipped to ascending order.
    const lambdaAt = (k: number) => {
      const a = this.alphasCumprod[this.alphasCumprod.length - 1 - k]!;
      const alpha = f32(Math.sqrt(a));
      const sigma = f32(Math.sqrt(f32(1 - a)));
      return f32(f32(Math.log(alpha)) - f32(Math.log(sigma)));
    };
    let lo = 0;
    let hi = this.alphasCumprod.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (lambdaAt(mid) < threshold) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** The rounded training timesteps of float64 sigmas (Karras or uniform-λ schedules). */
  private timestepsOf(sigmas: ArrayLike<number>): number[] {
    const table = logSigmas(this.trainSigmas);
    return Array.from(sigmas, (s) => roundHalfEven(sigmaToT(s, table)));
  }

  /**
   * The model output in the form the algorithm integrates: x̂_0 for
   * DPM-Solver++, ε̂ for DPM-Solver (Lu et al. 2022), thresholded if configured.
   * Never returns `modelOutput` itself, as the result is kept.
   */
  private convertModelOutput(modelOutput: tf.Tensor, sample: tf.Tensor, index: number): tf.Tensor {
    const c = this.config;
    const { alpha, sigma } = noiseLevel(this.sigmas[index]!);
    const learned = c.variance_type === "learned" || c.variance_type === "learned_range";
    const channels = sample.shape[this.noiseLayout === "NCHW" ? 1 : sample.rank - 1]!;
    const threshold = (x0: tf.Tensor) =>
      c.thresholding ? thresholdSample(x0, c.dynamic_thresholding_ratio, c.sample_max_value) : x0;
    if (c.algorithm_type.endsWith("dpmsolver++")) {
      switch (c.prediction_type) {
        case "epsilon": {
          const eps = learned
            ? leadingChannels(modelOutput, channels, this.noiseLayout)
            : modelOutput;
          return threshold(tf.div(tf.sub(sample, tf.mul(eps, sigma)), alpha));
        }
        case "sample":
          return threshold(tf.clone(modelOutput));
        default: // v_prediction
          return threshold(tf.sub(tf.mul(sample, alpha), tf.mul(modelOutput, sigma)));
      }
    }
    let eps: tf.Tensor;
    switch (c.prediction_type) {
      case "epsilon":
        eps = learned
          ? leadingChannels(modelOutput, channels, this.noiseLayout)
          : tf.clone(modelOutput);
        break;
      case "sample":
        eps = tf.div(tf.sub(sample, tf.mul(modelOutput, alpha)), sigma);
        break;
      default: // v_prediction
        eps = tf.add(tf.mul(modelOutput, alpha), tf.mul(sample, sigma));
    }
    if (!c.thresholding) return eps;
    // Threshold x̂_0, then return the ε̂ consistent with it.
    const x0 = threshold(tf.div(tf.sub(sample, tf.mul(eps, sigma)), alpha));
    return tf.div(tf.sub(sample, tf.mul(x0, alpha)), sigma);
  }

  /** The (α, σ, λ) of the step's target (`index + 1`) and of the last `count` steps' sources. */
  private levels(index: number, count: number): NoiseLevel[] {
    return Array.from({ length: count + 1 }, (_, k) => noiseLevel(this.sigmas[index + 1 - k]!));
  }

  /** The kept converted output `back` steps ago (0 = this step). */
  private history(back: number): tf.Tensor {
    return this.modelOutputs[this.modelOutputs.length - 1 - back]!;
  }

  /** First-order update (DDIM, or its SDE counterpart): Lu et al. 2022, eq. 3.7 / DPM-Solver++ eq. 5. */
  private firstOrderUpdate(
    m: tf.Tensor,
    sample: tf.Tensor,
    noise: tf.Tensor | null,
    index: number,
  ): tf.Tensor {
    const [t, s] = this.levels(index, 1) as [NoiseLevel, NoiseLevel];
    const h = f32(t.lambda - s.lambda);
    const emh = f32(Math.exp(-h));
    const eh = f32(Math.exp(h));
    switch (this.config.algorithm_type) {
      case "dpmsolver++":
        return tf.sub(
          tf.mul(sample, f32(t.sigma / s.sigma)),
          tf.mul(m, f32(t.alpha * f32(emh - 1))),
        );
      case "dpmsolver":
        return tf.sub(
          tf.mul(sample, f32(t.alpha / s.alpha)),
          tf.mul(m, f32(t.sigma * f32(eh - 1))),
        );
      case "sde-dpmsolver++": {
        const e2 = f32(Math.exp(f32(-2 * h)));
        return tf.add(
          tf.add(
            tf.mul(sample, f32(f32(t.sigma / s.sigma) * emh)),
            tf.mul(m, f32(t.alpha * f32(1 - e2))),
          ),
          tf.mul(noise!, f32(t.sigma * f32(Math.sqrt(f32(1 - e2))))),
        );
      }
      default: { // sde-dpmsolver
        const e2 = f32(Math.exp(f32(2 * h)));
        return tf.add(
          tf.sub(
            tf.mul(sample, f32(t.alpha / s.alpha)),
            tf.mul(m, f32(2 * f32(t.sigma * f32(eh - 1)))),
          ),
          tf.mul(noise!, f32(t.sigma * f32(Math.sqrt(f32(e2 - 1))))),
        );
      }
    }
  }

  /** Second-order multistep update (DPM-Solver++(2M), Algorithm 2, midpoint or Heun form). */
  private secondOrderUpdate(sample: tf.Tensor, noise: tf.Tensor | null, index: number): tf.Tensor {
    const [t, s0, s1] = this.levels(index, 2) as [NoiseLevel, NoiseLevel, NoiseLevel];
    const m0 = this.history(0);
    const m1 = this.history(1);
    const h = f32(t.lambda - s0.lambda);
    const h0 = f32(s0.lambda - s1.lambda);
    const r0 = f32(h0 / h);
    const d0 = m0;
    const d1 = tf.mul(tf.sub(m0, m1), f32(1 / r0));
    const midpoint = this.config.solver_type === "midpoint";
    const emh = f32(Math.exp(-h));
    const eh = f32(Math.exp(h));
    switch (this.config.algorithm_type) {
      case "dpmsolver++": {
        const c0 = f32(t.alpha * f32(emh - 1));
        const x = tf.sub(tf.mul(sample, f32(t.sigma / s0.sigma)), tf.mul(d0, c0));
        return midpoint
          ? tf.sub(x, tf.mul(d1, f32(0.5 * c0)))
          : tf.add(x, tf.mul(d1, f32(t.alpha * f32(f32(f32(emh - 1) / h) + 1))));
      }
      case "dpmsolver": {
        const c0 = f32(t.sigma * f32(eh - 1));
        const x = tf.sub(tf.mul(sample, f32(t.alpha / s0.alpha)), tf.mul(d0, c0));
        return midpoint
          ? tf.sub(x, tf.mul(d1, f32(0.5 * c0)))
          : tf.sub(x, tf.mul(d1, f32(t.sigma * f32(f32(f32(eh - 1) / h) - 1))));
      }
      case "sde-dpmsolver++": {
        const e2 = f32(Math.exp(f32(-2 * h)));
        const c0 = f32(t.alpha * f32(1 - e2));
        const x = tf.add(tf.mul(sample, f32(f32(t.sigma / s0.sigma) * emh)), tf.mul(d0, c0));
        const c1 = midpoint
          ? f32(0.5 * c0)
          : f32(t.alpha * f32(f32(f32(1 - e2) / f32(-2 * h)) + 1));
        return tf.add(
          tf.add(x, tf.mul(d1, c1)),
          tf.mul(noise!, f32(t.sigma * f32(Math.sqrt(f32(1 - e2))))),
        );
      }
      default: { // sde-dpmsolver
        const e2 = f32(Math.exp(f32(2 * h)));
        const c0 = f32(t.sigma * f32(eh - 1));
        const x = tf.sub(tf.mul(sample, f32(t.alpha / s0.alpha)), tf.mul(d0, f32(2 * c0)));
        const c1 = midpoint ? c0 : f32(2 * f32(t.sigma * f32(f32(f32(eh - 1) / h) - 1)));
        return tf.add(
          tf.sub(x, tf.mul(d1, c1)),
          tf.mul(noise!, f32(t.sigma * f32(Math.sqrt(f32(e2 - 1))))),
        );
      }
    }
  }

  /** Third-order multistep update (DPM-Solver++(3M) / DPM-Solver-3, Lu et al. 2022). */
  private thirdOrderUpdate(sample: tf.Tensor, index: number): tf.Tensor {
    const [t, s0, s1, s2] = this.levels(index, 3) as [
      NoiseLevel,
      NoiseLevel,
      NoiseLevel,
      NoiseLevel,
    ];
    const m0 = this.history(0);
    const m1 = this.history(1);
    const m2 = this.history(2);
    const h = f32(t.lambda - s0.lambda);
    const h0 = f32(s0.lambda - s1.lambda);
    const h1 = f32(s1.lambda - s2.lambda);
    const r0 = f32(h0 / h);
    const r1 = f32(h1 / h);
    const d10 = tf.mul(tf.sub(m0, m1), f32(1 / r0));
    const d11 = tf.mul(tf.sub(m1, m2), f32(1 / r1));
    const diff = tf.sub(d10, d11);
    const d1 = tf.add(d10, tf.mul(diff, f32(r0 / f32(r0 + r1))));
    const d2 = tf.mul(diff, f32(1 / f32(r0 + r1)));
    const hh = f32(h * h);
    if (this.config.algorithm_type === "dpmsolver++") {
      const em1 = f32(f32(Math.exp(-h)) - 1);
      const x = tf.add(
        tf.sub(tf.mul(sample, f32(t.sigma / s0.sigma)), tf.mul(m0, f32(t.alpha * em1))),
        tf.mul(d1, f32(t.alpha * f32(f32(em1 / h) + 1))),
      );
      return tf.sub(x, tf.mul(d2, f32(t.alpha * f32(f32(f32(em1 + h) / hh) - 0.5))));
    }
    // dpmsolver (the SDE variants have no third order; the constructor rejects them).
    const ep1 = f32(f32(Math.exp(h)) - 1);
    const x = tf.sub(
      tf.sub(tf.mul(sample, f32(t.alpha / s0.alpha)), tf.mul(m0, f32(t.sigma * ep1))),
      tf.mul(d1, f32(t.sigma * f32(f32(ep1 / h) - 1))),
    );
    return tf.sub(x, tf.mul(d2, f32(t.sigma * f32(f32(f32(ep1 - h) / hh) - 0.5))));
  }
}
