/**
 * `UniPCMultistepScheduler`: the unified predictor-corrector framework of
 * Zhao et al. (2023, "UniPC: A Unified Predictor-Corrector Framework for
 * Fast Sampling of Diffusion Models"): a multistep predictor (UniP) and a
 * corrector (UniC) that reuses the model evaluation of the next step, with
 * the B(h) variants `bh1` (B(h) = h) and `bh2` (B(h) = e^h − 1). Matches
 * diffusers' `UniPCMultistepScheduler` (v0.27.2).
 *
 * @example
 * ```ts
 * import { tf } from "../lib/tf.ts";
 * import { UniPCMultistepScheduler } from "./unipc_multistep.ts";
 *
 * const scheduler = UniPCMultistepScheduler.fromConfig({ beta_schedule: "scaled_linear" });
 * scheduler.setTimesteps(20);
 * let x = tf.randomNormal([1, 8, 8, 4]);
 * for (const t of scheduler.timesteps) {
 *   const eps = tf.zerosLike(x); // a UNet's noise prediction
 *   const { prevSample } = scheduler.step(eps, t, x);
 *   tf.dispose([eps, x]);
 *   x = prevSample;
 * }
 * scheduler.dispose(); // releases the kept model outputs and sample
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
  perBatch,
  type Scheduler,
  SchedulerBase,
  type SchedulerOutput,
  type StepOptions,
  thresholdSample,
} from "./scheduler.ts";
import {
  alphasCumprod,
  BETA_SCHEDULES,
  betasFromConfig,
  roundHalfEven,
  TIMESTEP_SPACINGS,
} from "./schedule.ts";
import { interpSigmas, karrasSigmas, logSigmas, sigmaToT, trainSigmas } from "./sigmas.ts";
import {
  multistepIndex,
  multistepTimesteps,
  type NoiseLevel,
  noiseLevel,
} from "./dpmsolver_multistep.ts";

const f32 = Math.fround;

/** The config of {@link UniPCMultistepScheduler}: diffusers' keys and defaults. */
export type UniPCMultistepSchedulerConfig = {
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
  /** The order p of UniPC-p (the corrector raises the accuracy to p + 1). */
  solver_order: number;
  /** What the model predicts: `epsilon`, `sample` or `v_prediction`. */
  prediction_type: string;
  /** Dynamic thresholding of the predicted x_0 (Imagen); with `predict_x0` only. */
  thresholding: boolean;
  /** Quantile of |x_0| used as the dynamic threshold. */
  dynamic_thresholding_ratio: number;
  /** Largest dynamic threshold. */
  sample_max_value: number;
  /** Integrate the data prediction x̂_0 (true) or the noise prediction ε̂. */
  predict_x0: boolean;
  /** `bh1` (B(h) = h) or `bh2` (B(h) = e^h − 1). */
  solver_type: string;
  /** Lower the order in the last steps (helps with fewer than 15 steps). */
  lower_order_final: boolean;
  /** Step indices after which the corrector is skipped. */
  disable_corrector: number[];
  /** Another scheduler as predictor; not supported here, so always null. */
  solver_p: null;
  /** Use the Karras et al. (2022) noise schedule (eq. 5, ρ = 7). */
  use_karras_sigmas: boolean | null;
  /** `linspace`, `leading` or `trailing` (Lin et al. 2023, Table 2). */
  timestep_spacing: string;
  /** Added to `leading` timesteps. */
  steps_offset: number;
};

const SOLVER_TYPES = ["bh1", "bh2"];
const FINAL_SIGMAS_TYPES = ["zero", "sigma_min"];
const PREDICTION_TYPES = ["epsilon", "sample", "v_prediction"];

/**
 * Solves the small linear system `a · x = b` (UniPC's order conditions) by
 * Gaussian elimination with partial pivoting, as LAPACK's `gesv`; the
 * result is rounded to float32, the precision diffusers solves in.
 */
function solve(a: number[][], b: number[]): number[] {
  const n = b.length;
  const m = a.map((row, i) => [...row.slice(0, n), b[i]!]);
  for (let col = 0; col < n; col++) {
    let pivot = col;
    for (let r = col + 1; r < n; r++) {
      if (Math.abs(m[r]![col]!) > Math.abs(m[pivot]![col]!)) pivot = r;
    }
    [m[col], m[pivot]] = [m[pivot]!, m[col]!];
    for (let r = col + 1; r < n; r++) {
      const factor = m[r]![col]! / m[col]![col]!;
      for (let k = col; k <= n; k++) m[r]![k]! -= factor * m[col]![k]!;
    }
  }
  const x = new Array<number>(n).fill(0);
  for (let r = n - 1; r >= 0; r--) {
    let acc = m[r]![n]!;
    for (let k = r + 1; k < n; k++) acc -= m[r]![k]! * x[k]!;
    x[r] = acc / m[r]![r]!;
  }
  return x.map(f32);
}

/**
 * UniPC (Zhao et al. 2023): each step first corrects the sample the
 * previous step predicted, using the model output just evaluated at it
 * (UniC, free of extra model calls), then predicts the next sample from the
 * last `solver_order` model outputs (UniP). `bh1` is recommended for
 * unconditional sampling with fewer than 10 steps, `bh2` otherwise.
 * Matches diffusers' `UniPCMultistepScheduler`, including Karras sigmas,
 * `disable_corrector`, lower-order final steps and dynamic thresholding.
 *
 * `final_sigmas_type` (`zero` or `sigma_min`) came to UniPC in diffusers
 * 0.28; a UniPC config (or overrides) that has it is honoured, one without
 * it keeps v0.27.2's behaviour (`sigma_min`), and the key is never added on
 * save. The key in another class's config (DPM-Solver's defaults to `zero`)
 * is dropped, as v0.27.2 ignores it there.
 *
 * The last `solver_order` converted model outputs and the last sample are
 * kept between steps; `setTimesteps` and `dispose` release them.
 *
 * @example
 * ```ts
 * import { tf } from "../lib/tf.ts";
 * import { UniPCMultistepScheduler } from "./unipc_multistep.ts";
 * const s = UniPCMultistepScheduler.fromConfig({ solver_type: "bh1", solver_order: 3 });
 * s.setTimesteps(10);
 * const x = tf.ones([1, 8, 8, 3]);
 * const { prevSample } = s.step(tf.zerosLike(x), s.timesteps[0]!, x);
 * s.dispose();
 * ```
 */
export class UniPCMultistepScheduler extends SchedulerBase<UniPCMultistepSchedulerConfig>
  implements Scheduler {
  /** Config keys, defaults and kinds. */
  static readonly spec: ConfigSpec<UniPCMultistepSchedulerConfig> = defineConfig<
    UniPCMultistepSchedulerConfig
  >(
    "UniPCMultistepScheduler",
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
      predict_x0: true,
      solver_type: "bh2",
      lower_order_final: true,
      disable_corrector: [],
      solver_p: null,
      use_karras_sigmas: false,
      timestep_spacing: "linspace",
      steps_offset: 0,
    },
    {
      num_train_timesteps: ["integer"],
      trained_betas: ["number[]", "null"],
      solver_order: ["integer"],
      disable_corrector: ["integer[]"],
      solver_p: ["null"],
      use_karras_sigmas: ["boolean", "null"],
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
  /** The v0.28 `final_sigmas_type` when the config has it. */
  private readonly finalSigmasType: string | null;
  /** The converted model outputs of the last `solver_order` steps, oldest first. */
  private modelOutputs: (tf.Tensor | null)[];
  /** The sample the last predictor started from, which the next corrector refines. */
  private lastSample: tf.Tensor | null = null;
  /** The order of the last predictor, which the next corrector uses. */
  private thisOrder = 0;
  /** How many steps have run, capped at `solver_order` (warm-up of the multistep order). */
  private lowerOrderNums = 0;
  private stepIdx: number | null = null;
  private beginIdx: number | null = null;

  /** Use {@link UniPCMultistepScheduler.fromConfig}. */
  protected constructor(config: Readonly<UniPCMultistepSchedulerConfig>) {
    super(UniPCMultistepScheduler.spec, config);
    const name = UniPCMultistepScheduler.spec.className;
    checkChoice(name, "solver_type", config.solver_type, SOLVER_TYPES);
    checkChoice(name, "prediction_type", config.prediction_type, PREDICTION_TYPES);
    checkChoice(name, "timestep_spacing", config.timestep_spacing, TIMESTEP_SPACINGS);
    if (config.trained_betas === null) {
      checkChoice(name, "beta_schedule", config.beta_schedule, BETA_SCHEDULES);
    }
    if (config.solver_order < 1) {
      throw new ConfigError(`must be at least 1, got ${config.solver_order}`, {
        key: "solver_order",
      });
    }
    if (config.thresholding) {
      checkRange("dynamic_thresholding_ratio", config.dynamic_thresholding_ratio, 0, 1);
    }
    const finalSigmasType = (config as ConfigDict).final_sigmas_type;
    if (finalSigmasType !== undefined) {
      checkChoice(name, "final_sigmas_type", finalSigmasType, FINAL_SIGMAS_TYPES);
    }
    this.finalSigmasType = (finalSigmasType as string | undefined) ?? null;
    this.betas = betasFromConfig(config);
    this.alphasCumprod = alphasCumprod(this.betas);
    this.trainSigmas = trainSigmas(this.alphasCumprod);
    this.sigmas = this.trainSigmas;
    const T = config.num_train_timesteps;
    this.timesteps = Object.freeze(Array.from({ length: T }, (_, i) => T - 1 - i));
    this.modelOutputs = new Array(config.solver_order).fill(null);
  }

  /**
   * Builds a scheduler from `scheduler_config.json` content (any
   * scheduler's: unknown keys are kept) plus overrides. As in diffusers, the
   * DPM-Solver / DEIS solver types `midpoint`, `heun` and `logrho` become
   * `bh2`, so configs can be swapped between the multistep solvers.
   *
   * @example
   * ```ts
   * import { UniPCMultistepScheduler } from "./unipc_multistep.ts";
   * const s = UniPCMultistepScheduler.fromConfig({ _class_name: "DPMSolverMultistepScheduler", solver_type: "midpoint" });
   * console.log(s.config.solver_type); // "bh2"
   * ```
   */
  static fromConfig(json: ConfigDict = {}, overrides: ConfigDict = {}): UniPCMultistepScheduler {
    const spec = UniPCMultistepScheduler.spec;
    const foreign = typeof json._class_name === "string" && json._class_name !== spec.className;
    if (foreign && "final_sigmas_type" in json) {
      // Another class's key (DPM-Solver's defaults to "zero"), which v0.27.2 UniPC ignores.
      const { final_sigmas_type: _dropped, ...rest } = json;
      json = rest;
    }
    let config = loadConfig(spec, json, overrides);
    if (["midpoint", "heun", "logrho"].includes(config.solver_type)) {
      config = loadConfig(spec, config, { solver_type: "bh2" });
    }
    return new UniPCMultistepScheduler(config);
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
   * import { UniPCMultistepScheduler } from "./unipc_multistep.ts";
   * const s = UniPCMultistepScheduler.fromConfig({});
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
   * and starts a new run: kept model outputs and sample are released and
   * the order warm-up and step index reset. An {@link ArgumentError} unless
   * 1 ≤ n ≤ `num_train_timesteps`.
   *
   * @example
   * ```ts
   * import { UniPCMultistepScheduler } from "./unipc_multistep.ts";
   * const s = UniPCMultistepScheduler.fromConfig({});
   * s.setTimesteps(10);
   * console.log(s.timesteps); // [999, 899, 799, 699, 599, 500, 400, 300, 200, 100]
   * ```
   */
  setTimesteps(numInferenceSteps: number): void {
    const c = this.config;
    const T = c.num_train_timesteps;
    checkNumInferenceSteps(numInferenceSteps, T);
    let timesteps = multistepTimesteps(
      c.timestep_spacing,
      T,
      numInferenceSteps,
      T,
      c.steps_offset,
    );
    let sigmas: number[];
    let last: number;
    if (c.use_karras_sigmas) {
      sigmas = Array.from(
        karrasSigmas(this.trainSigmas[0]!, this.trainSigmas[T - 1]!, numInferenceSteps),
      );
      const table = logSigmas(this.trainSigmas);
      timesteps = sigmas.map((s) => roundHalfEven(sigmaToT(s, table)));
      // v0.27.2 repeats the last Karras sigma.
      last = this.finalSigmasType === "zero" ? 0 : sigmas[sigmas.length - 1]!;
    } else {
      sigmas = Array.from(interpSigmas(timesteps, this.trainSigmas));
      last = this.finalSigmasType === "zero" ? 0 : this.trainSigmas[0]!;
    }
    this.sigmas = Float32Array.from([...sigmas, last]);
    this.timesteps = Object.freeze(timesteps);
    this.numInferenceSteps = timesteps.length;
    this.resetHistory();
    this.stepIdx = null;
    this.beginIdx = null;
  }

  /**
   * One UniPC step: corrects `sample` with UniC (except on the first step
   * and after the indices in `disable_corrector`), then predicts the sample
   * at the next timestep with UniP of order `solver_order` (lower during
   * warm-up and, with `lower_order_final`, at the end). An
   * {@link ArgumentError} before `setTimesteps` or past the last timestep.
   *
   * @example
   * ```ts
   * import { tf } from "../lib/tf.ts";
   * import { UniPCMultistepScheduler } from "./unipc_multistep.ts";
   * const s = UniPCMultistepScheduler.fromConfig({});
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
    _options: StepOptions = {},
  ): SchedulerOutput {
    if (this.numInferenceSteps === null) {
      throw new ArgumentError("call setTimesteps before step");
    }
    const c = this.config;
    if (this.stepIdx === null) {
      this.stepIdx = this.beginIdx ?? multistepIndex(this.timesteps, timestep);
    }
    const i = this.stepIdx;
    const n = this.timesteps.length;
    if (i >= n) {
      // diffusers asserts here; repeated (rounded) timesteps can send the index past the end.
      throw new ArgumentError(`step called after the last timestep (${n} steps)`);
    }
    const useCorrector = i > 0 && !c.disable_corrector.includes(i - 1) && this.lastSample !== null;
    const converted = tf.keep(tf.tidy(() => this.convertModelOutput(modelOutput, sample, i)));
    const corrected = useCorrector
      ? tf.keep(tf.tidy(() => this.correct(converted, this.lastSample!, i)))
      : tf.keep(tf.clone(sample));

    this.modelOutputs.shift()?.dispose();
    this.modelOutputs.push(converted);
    const order = c.lower_order_final ? Math.min(c.solver_order, n - i) : c.solver_order;
    this.thisOrder = Math.min(order, this.lowerOrderNums + 1);
    this.lastSample?.dispose();
    this.lastSample = corrected;

    const prevSample = tf.tidy(() => this.predict(corrected, i));
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
   * import { UniPCMultistepScheduler } from "./unipc_multistep.ts";
   * const s = UniPCMultistepScheduler.fromConfig({});
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

  /** Releases the kept model outputs and sample. */
  override dispose(): void {
    this.resetHistory();
  }

  /** Frees the history and restarts the order warm-up. */
  private resetHistory(): void {
    for (const m of this.modelOutputs) m?.dispose();
    this.modelOutputs = new Array(this.config.solver_order).fill(null);
    this.lastSample?.dispose();
    this.lastSample = null;
    this.lowerOrderNums = 0;
    this.thisOrder = 0;
  }

  /**
   * The model output as the solver integrates it: x̂_0 with `predict_x0`
   * (thresholded if configured), else ε̂. Never returns `modelOutput`
   * itself, as the result is kept.
   */
  private convertModelOutput(modelOutput: tf.Tensor, sample: tf.Tensor, index: number): tf.Tensor {
    const c = this.config;
    const { alpha, sigma } = noiseLevel(this.sigmas[index]!);
    if (c.predict_x0) {
      let x0: tf.Tensor;
      switch (c.prediction_type) {
        case "epsilon":
          x0 = tf.div(tf.sub(sample, tf.mul(modelOutput, sigma)), alpha);
          break;
        case "sample":
          x0 = tf.clone(modelOutput);
          break;
        default: // v_prediction
          x0 = tf.sub(tf.mul(sample, alpha), tf.mul(modelOutput, sigma));
      }
      return c.thresholding
        ? thresholdSample(x0, c.dynamic_thresholding_ratio, c.sample_max_value)
        : x0;
    }
    switch (c.prediction_type) {
      case "epsilon":
        return tf.clone(modelOutput);
      case "sample":
        return tf.div(tf.sub(sample, tf.mul(modelOutput, alpha)), sigma);
      default: // v_prediction
        return tf.add(tf.mul(modelOutput, alpha), tf.mul(sample, sigma));
    }
  }

  /**
   * The B(h)-scaled φ-function coefficients shared by UniP and UniC
   * (Zhao et al. 2023, Algorithms 2 and 3): with hh = −h for x̂_0 (h for ε̂),
   * h·φ_1 = e^hh − 1, and b_k = k! · h·φ_{k+1}(hh) / B(h), k = 1..order.
   */
  private coefficients(h: number, order: number): { hPhi1: number; bH: number; b: number[] } {
    const hh = this.config.predict_x0 ? -h : h;
    const hPhi1 = f32(Math.expm1(hh));
    const bH = this.config.solver_type === "bh1" ? hh : hPhi1;
    let hPhiK = f32(f32(hPhi1 / hh) - 1);
    let factorial = 1;
    const b: number[] = [];
    for (let k = 1; k <= order; k++) {
      b.push(f32(f32(hPhiK * factorial) / bH));
      factorial *= k + 1;
      hPhiK = f32(f32(hPhiK / hh) - f32(1 / factorial));
    }
    return { hPhi1, bH, b };
  }

  /**
   * The first-order part x_t' shared by UniP and UniC: the DDIM-like step
   * from the source level `s0` with model output `m0` to the level `t`.
   */
  private firstOrder(
    x: tf.Tensor,
    m0: tf.Tensor,
    t: NoiseLevel,
    s0: NoiseLevel,
    hPhi1: number,
  ): tf.Tensor {
    return this.config.predict_x0
      ? tf.sub(tf.mul(x, f32(t.sigma / s0.sigma)), tf.mul(m0, f32(t.alpha * hPhi1)))
      : tf.sub(tf.mul(x, f32(t.alpha / s0.alpha)), tf.mul(m0, f32(t.sigma * hPhi1)));
  }

  /** Σ_k ρ_k · D_k, the weighted sum of the scaled output differences. */
  private weighted(rhos: readonly number[], ds: readonly tf.Tensor[]): tf.Tensor {
    let acc = tf.mul(ds[0]!, rhos[0]!);
    for (let k = 1; k < ds.length; k++) acc = tf.add(acc, tf.mul(ds[k]!, rhos[k]!));
    return acc;
  }

  /**
   * The scaled differences D_k = (m_k − m_0) / r_k of the older outputs and
   * their ratios r_k = (λ_{s_k} − λ_{s_0}) / h, for `count` older steps
   * whose sigma indices are `sigmaIndex(k)`.
   */
  private differences(
    count: number,
    sigmaIndex: (k: number) => number,
    m0: tf.Tensor,
    s0: NoiseLevel,
    h: number,
  ): { rks: number[]; ds: tf.Tensor[] } {
    const rks: number[] = [];
    const ds: tf.Tensor[] = [];
    for (let k = 1; k <= count; k++) {
      const level = noiseLevel(this.sigmas[sigmaIndex(k)]!);
      const rk = f32(f32(level.lambda - s0.lambda) / h);
      rks.push(rk);
      ds.push(tf.div(tf.sub(this.history(k), m0), rk));
    }
    return { rks, ds };
  }

  /** The kept converted output `back` steps ago (0 = the newest kept). */
  private history(back: number): tf.Tensor {
    return this.modelOutputs[this.modelOutputs.length - 1 - back]!;
  }

  /** The matrix of powers R[i][k] = r_k^i (float32) of the order conditions. */
  private powers(rks: readonly number[], order: number): number[][] {
    const all = [...rks, 1];
    return Array.from({ length: order }, (_, i) => all.map((r) => f32(r ** i)));
  }

  /** UniP-p (Zhao et al. 2023, Algorithm 2 with B(h)): the sample at the next timestep. */
  private predict(x: tf.Tensor, index: number): tf.Tensor {
    const order = this.thisOrder;
    const t = noiseLevel(this.sigmas[index + 1]!);
    const s0 = noiseLevel(this.sigmas[index]!);
    const h = f32(t.lambda - s0.lambda);
    const m0 = this.history(0);
    const { rks, ds } = this.differences(order - 1, (k) => index - k, m0, s0, h);
    const { hPhi1, bH, b } = this.coefficients(h, order);
    const xt = this.firstOrder(x, m0, t, s0, hPhi1);
    if (ds.length === 0) return xt;
    // Order 2 uses ρ = 1/2; higher orders solve the order conditions without the last row.
    const rhos = order === 2
      ? [0.5]
      : solve(this.powers(rks, order - 1).map((row) => row.slice(0, -1)), b.slice(0, -1));
    const scale = f32(this.config.predict_x0 ? t.alpha * bH : t.sigma * bH);
    return tf.sub(xt, tf.mul(this.weighted(rhos, ds), scale));
  }

  /**
   * UniC-p (Zhao et al. 2023, Algorithm 3 with B(h)): the corrected sample
   * at step `index`, redoing the last predictor's step from `lastSample`
   * with the model output `modelT` just evaluated at the predicted sample.
   */
  private correct(modelT: tf.Tensor, lastSample: tf.Tensor, index: number): tf.Tensor {
    const order = this.thisOrder;
    const t = noiseLevel(this.sigmas[index]!);
    const s0 = noiseLevel(this.sigmas[index - 1]!);
    const h = f32(t.lambda - s0.lambda);
    const m0 = this.history(0);
    const { rks, ds } = this.differences(order - 1, (k) => index - 1 - k, m0, s0, h);
    const { hPhi1, bH, b } = this.coefficients(h, order);
    // Order 1 uses ρ = 1/2; higher orders solve the full order conditions.
    const rhos = order === 1 ? [0.5] : solve(this.powers(rks, order), b);
    const xt = this.firstOrder(lastSample, m0, t, s0, hPhi1);
    const d1t = tf.mul(tf.sub(modelT, m0), rhos[order - 1]!);
    const correction = ds.length === 0 ? d1t : tf.add(this.weighted(rhos, ds), d1t);
    const scale = f32(this.config.predict_x0 ? t.alpha * bH : t.sigma * bH);
    return tf.sub(xt, tf.mul(correction, scale));
  }
}
