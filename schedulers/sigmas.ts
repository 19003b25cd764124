/**
 * Noise levels (sigmas) for the k-diffusion family of schedulers (LMS,
 * Euler, Euler ancestral, Heun, KDPM2) and the multistep solvers that share
 * their helpers (DPM-Solver++, UniPC).
 *
 * A model trained on discrete timesteps with cumulative products ᾱ_t sees
 * noise level σ_t = √((1 − ᾱ_t) / ᾱ_t) (Karras et al. 2022, "Elucidating the
 * Design Space of Diffusion-Based Generative Models", section 2). This module
 * computes those sigmas, picks the inference timesteps, interpolates sigmas
 * between timesteps (and back, sigma → timestep), builds the Karras et al.
 * schedule (their eq. 5, ρ = 7), and provides {@link SigmaSchedulerBase}, the
 * bookkeeping the k-diffusion schedulers share: `sigmas`, step and begin
 * index, `scaleModelInput`, `initNoiseSigma`, `addNoise`.
 *
 * Every function reproduces diffusers 0.27.2's NumPy / PyTorch arithmetic,
 * float32 where diffusers rounds to float32 (including NumPy's own float32
 * `log`, {@link logF32}), so timesteps and sigmas match diffusers' bits;
 * `index_for_timestep` compares timesteps exactly, so this matters.
 *
 * @example
 * ```ts
 * import { karrasSigmas, sigmaToT, sigmaTimesteps, trainSigmas, interpSigmas, logSigmas } from "./sigmas.ts";
 * import { alphasCumprod, linspaceF32 } from "./schedule.ts";
 * const train = trainSigmas(alphasCumprod(linspaceF32(1e-4, 0.02, 1000)));
 * const t = sigmaTimesteps("linspace", 1000, 10);        // 999, 888, ..., 0
 * const s = interpSigmas(t, train);                       // σ at those timesteps
 * const k = karrasSigmas(s[s.length - 1]!, s[0]!, 10);    // Karras schedule between them
 * console.log(k.map((sigma) => sigmaToT(sigma, logSigmas(train))));
 * ```
 *
 * @module
 */

import { tf } from "../lib/tf.ts";
import type { ConfigDict, ConfigSpec } from "../lib/config.ts";
import { ArgumentError, ConfigError } from "../lib/errors.ts";
import { checkChoice, checkNumInferenceSteps, perBatch, SchedulerBase } from "./scheduler.ts";
import { arangeF64, linspaceF64, roundHalfEven, TIMESTEP_SPACINGS } from "./schedule.ts";

const f32 = Math.fround;

/**
 * The inference timesteps of the sigma schedulers (LMS, Euler, Euler
 * ancestral, Heun, KDPM2), descending, as the float32 values diffusers
 * computes with NumPy:
 * - `linspace`: `np.linspace(0, T - 1, n)` (fractional timesteps);
 * - `leading`: `arange(n) * (T // n) + steps_offset`;
 * - `trailing`: `round(arange(T, 0, -T / n)) - 1` (NumPy's float `arange`
 *   and half-to-even rounding).
 *
 * An unknown spacing is a {@link ConfigError} on `timestep_spacing`.
 *
 * @example
 * ```ts
 * import { sigmaTimesteps } from "./sigmas.ts";
 * console.log(sigmaTimesteps("leading", 1000, 4, 1)); // Float32Array [751, 501, 251, 1]
 * console.log(sigmaTimesteps("trailing", 1000, 4));   // Float32Array [999, 749, 499, 249]
 * ```
 */
export function sigmaTimesteps(
  spacing: string,
  numTrainTimesteps: number,
  numInferenceSteps: number,
  stepsOffset = 0,
): Float32Array {
  const T = numTrainTimesteps;
  const n = numInferenceSteps;
  switch (spacing) {
    case "linspace":
      return Float32Array.from(linspaceF64(0, T - 1, n).reverse());
    case "leading": {
      const ratio = Math.floor(T / n);
      return Float32Array.from({ length: n }, (_, i) => (n - 1 - i) * ratio + stepsOffset);
    }
    case "trailing":
      return Float32Array.from(arangeF64(T, 0, -T / n), (t) => roundHalfEven(t) - 1);
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
 * σ_t = √((1 − ᾱ_t) / ᾱ_t) for every training timestep, ascending in t,
 * computed in float32 like diffusers' `((1 - alphas_cumprod) / alphas_cumprod) ** 0.5`.
 *
 * @example
 * ```ts
 * import { trainSigmas } from "./sigmas.ts";
 * console.log(trainSigmas(new Float32Array([0.5, 0.2]))); // Float32Array [1, 2]
 * ```
 */
export function trainSigmas(alphasCumprod: Float32Array): Float32Array {
  return alphasCumprod.map((a) => f32(Math.sqrt(f32(f32(1 - a) / a))));
}

// Bit views for the exponent / mantissa split and float32 neighbours.
const bitsF32 = new Float32Array(1);
const bitsI32 = new Int32Array(bitsF32.buffer);

/** The float32 next to `x` (a float32 value) towards `direction`'s sign. */
function nextF32(x: number, direction: number): number {
  if (x === 0) return direction > 0 ? 2 ** -149 : -(2 ** -149);
  bitsF32[0] = x;
  bitsI32[0]! += (x > 0) === (direction > 0) ? 1 : -1;
  return bitsF32[0]!;
}

/**
 * A float32 fused multiply-add: `a * b + c` rounded once. The product of two
 * float32 values is exact in float64; the sum's float64 rounding error
 * (TwoSum) breaks the ties that a second rounding to float32 would get wrong.
 */
function fma32(a: number, b: number, c: number): number {
  const p = a * b;
  const s = p + c;
  const r = f32(s);
  const bb = s - p;
  const err = (p - (s - bb)) + (c - bb);
  if (err === 0 || s === r) return r;
  const other = nextF32(r, s - r);
  // s lies exactly halfway between two float32 values: the exact sum decides.
  if (s - r === other - s) return (err > 0) === (other > r) ? other : r;
  return r;
}

const bitsOf = (bits: number): number => {
  bitsI32[0] = bits;
  return bitsF32[0]!;
};
// NumPy's float32 log constants (npy_simd_data.h), as float32 bit patterns.
const LOG_P = [0x00000000, 0x3f800000, 0x4007361c, 0x3fbd70a9, 0x3ec30333, 0x3cd42bcd].map(
  bitsOf,
);
const LOG_Q = [0x3f800000, 0x4027361c, 0x401cfe0d, 0x3f7c8ae4, 0x3e1e5bf3, 0x3bc083df].map(
  bitsOf,
);
const SQRT1_2_F32 = bitsOf(0x3f3504f3);
const LN2_F32 = bitsOf(0x3f317218);
const FLT_MIN = 2 ** -126;

/**
 * `np.log` of one float32 value as NumPy (1.2x, x86-64 with AVX2/FMA3 or
 * AVX-512) computes it: mantissa in [√½, √2), a degree-5 rational
 * approximation of log(1 + x) evaluated with float32 FMAs, plus k·ln 2.
 * Up to ~4 ulp from the correctly rounded log, and diffusers' timesteps
 * depend on those exact bits.
 *
 * @example
 * ```ts
 * import { logF32 } from "./sigmas.ts";
 * console.log(logF32(1), logF32(0)); // 0 -Infinity
 * ```
 */
export function logF32(value: number): number {
  const x = f32(value);
  if (Number.isNaN(x) || x < 0) return NaN;
  if (x === 0) return -Infinity;
  if (x === Infinity) return Infinity;
  // Subnormals are scaled by 2^100 first (exactly), then the exponent corrected.
  const subnormal = x < FLT_MIN;
  bitsF32[0] = subnormal ? x * 2 ** 100 : x;
  const bits = bitsI32[0]!;
  let exponent = (bits >>> 23) - 126 - (subnormal ? 100 : 0);
  let m = bitsOf((bits & 0x7fffff) | (126 << 23));
  if (m <= SQRT1_2_F32) {
    m = f32(m + m);
    exponent -= 1;
  }
  m = f32(m - 1);
  let num = fma32(LOG_P[5]!, m, LOG_P[4]!);
  for (let i = 3; i >= 0; i--) num = fma32(num, m, LOG_P[i]!);
  let den = fma32(LOG_Q[5]!, m, LOG_Q[4]!);
  for (let i = 3; i >= 0; i--) den = fma32(den, m, LOG_Q[i]!);
  return fma32(exponent, LN2_F32, f32(num / den));
}

/**
 * `np.log` of float32 sigmas, in float32 exactly as NumPy computes it
 * ({@link logF32}); the table {@link sigmaToT} searches.
 *
 * @example
 * ```ts
 * import { logSigmas } from "./sigmas.ts";
 * console.log(logSigmas(new Float32Array([1, 2]))); // Float32Array [0, 0.6931472]
 * ```
 */
export function logSigmas(sigmas: Float32Array): Float32Array {
  return sigmas.map(logF32);
}

/**
 * `np.interp(timesteps, arange(len(sigmas)), sigmas)`: the sigma at each
 * (possibly fractional) timestep, linearly interpolated between training
 * timesteps, in float64. Timesteps outside `[0, len - 1]` clamp to the ends.
 *
 * @example
 * ```ts
 * import { interpSigmas } from "./sigmas.ts";
 * console.log(interpSigmas([1.5, 0], new Float32Array([1, 2, 4]))); // Float64Array [3, 1]
 * ```
 */
export function interpSigmas(
  timesteps: ArrayLike<number>,
  sigmas: ArrayLike<number>,
): Float64Array {
  const last = sigmas.length - 1;
  const out = new Float64Array(timesteps.length);
  for (let i = 0; i < timesteps.length; i++) {
    const x = timesteps[i]!;
    if (x <= 0) out[i] = sigmas[0]!;
    else if (x >= last) out[i] = sigmas[last]!;
    else {
      const j = Math.floor(x);
      const slope = sigmas[j + 1]! - sigmas[j]!;
      out[i] = j === x ? sigmas[j]! : slope * (x - j) + sigmas[j]!;
    }
  }
  return out;
}

/**
 * The noise schedule of Karras et al. (2022), eq. 5:
 * σ_i = (σ_max^{1/ρ} + i/(n−1) · (σ_min^{1/ρ} − σ_max^{1/ρ}))^ρ, i = 0..n−1,
 * descending from `sigmaMax` to `sigmaMin`, in float64 like diffusers'
 * `_convert_to_karras`.
 *
 * @example
 * ```ts
 * import { karrasSigmas } from "./sigmas.ts";
 * const s = karrasSigmas(0.03, 14.6, 5);
 * console.log(s[0], s[4]); // ≈ 14.6 ≈ 0.03
 * ```
 */
export function karrasSigmas(
  sigmaMin: number,
  sigmaMax: number,
  numInferenceSteps: number,
  rho = 7,
): Float64Array {
  const minInvRho = sigmaMin ** (1 / rho);
  const maxInvRho = sigmaMax ** (1 / rho);
  return Float64Array.from(
    linspaceF64(0, 1, numInferenceSteps),
    (r) => (maxInvRho + r * (minInvRho - maxInvRho)) ** rho,
  );
}

/** Options of {@link sigmaToT}. */
export interface SigmaToTOptions {
  /**
   * Compute as diffusers does when `sigma` is a float32 torch tensor
   * (KDPM2's interpolated sigmas): log σ is NumPy's float32 log and every
   * operation rounds to float32. By default (a float64 NumPy sigma) log σ
   * is a float64 log rounded to float32 and the final blend is float64.
   */
  float32?: boolean;
}

/**
 * diffusers' `_sigma_to_t`: the fractional timestep whose noise level is
 * `sigma`, interpolating linearly in log-sigma between the two training
 * timesteps that bracket it (clamped to `[0, len − 1]`). `logSigmas` is the
 * ascending float32 table from {@link logSigmas}; the arithmetic follows
 * NumPy's float32 promotion (log σ and the weight are float32).
 *
 * @example
 * ```ts
 * import { logSigmas, sigmaToT } from "./sigmas.ts";
 * const table = logSigmas(new Float32Array([1, 2, 4]));
 * console.log(sigmaToT(2, table), sigmaToT(Math.SQRT2 * 2, table)); // 1 ≈1.5
 * ```
 */
export function sigmaToT(
  sigma: number,
  logSigmas: Float32Array,
  options: SigmaToTOptions = {},
): number {
  // A float32 sigma takes NumPy's float32 log; a float64 one float64 log, then float32.
  const logSigma = options.float32
    ? logF32(Math.max(sigma, f32(1e-10)))
    : f32(Math.log(Math.max(sigma, 1e-10)));
  // argmax(cumsum(log σ ≥ table)): the last index at or below log σ, or 0.
  let low = 0;
  for (let i = 0; i < logSigmas.length; i++) if (logSigma >= logSigmas[i]!) low = i;
  low = Math.min(low, logSigmas.length - 2);
  const high = low + 1;
  const lo = logSigmas[low]!;
  const hi = logSigmas[high]!;
  let w = f32(f32(lo - logSigma) / f32(lo - hi));
  if (w < 0) w = 0;
  else if (w > 1) w = 1;
  const oneMinusW = f32(1 - w);
  return options.float32 ? f32(f32(oneMinusW * low) + f32(w * high)) : oneMinusW * low + w * high;
}

/**
 * The position of `timestep` in `schedule`, as diffusers' `index_for_timestep`:
 * the second match when the timestep occurs more than once (Heun and KDPM2
 * repeat timesteps; starting mid-schedule must not skip a sigma), else the
 * only one. A timestep not in the schedule is an {@link ArgumentError}.
 *
 * @example
 * ```ts
 * import { indexForTimestep } from "./sigmas.ts";
 * console.log(indexForTimestep([999, 500, 500, 0], 500)); // 2
 * ```
 */
export function indexForTimestep(schedule: readonly number[], timestep: number): number {
  let first = -1;
  for (let i = 0; i < schedule.length; i++) {
    if (schedule[i] !== timestep) continue;
    if (first >= 0) return i;
    first = i;
  }
  if (first < 0) {
    throw new ArgumentError(
      `timestep ${timestep} is not one of this scheduler's timesteps; pass a value of \`timesteps\``,
    );
  }
  return first;
}

/**
 * The denoised estimate x̂_0 from the model output at noise level `sigma`
 * (Karras et al. 2022, Table 1 preconditioning, as diffusers writes it):
 * - `epsilon`: x − σ·ε̂;
 * - `v_prediction`: v̂ · (−σ / √(σ² + 1)) + x / (σ² + 1);
 * - `sample` (and its legacy name `original_sample`): the output itself (a clone).
 *
 * Scalars are rounded to float32 as diffusers' 0-dim tensors are. Call it
 * inside `tf.tidy`; an unknown type is a {@link ConfigError} on `prediction_type`.
 *
 * @example
 * ```ts
 * import { tf } from "../lib/tf.ts";
 * import { predictOriginalSample } from "./sigmas.ts";
 * const x0 = tf.tidy(() => predictOriginalSample("epsilon", tf.ones([1, 2, 2, 1]), tf.ones([1, 2, 2, 1]), 0.5));
 * x0.dispose(); // all 0.5
 * ```
 */
export function predictOriginalSample(
  predictionType: string,
  modelOutput: tf.Tensor,
  sample: tf.Tensor,
  sigma: number,
): tf.Tensor {
  switch (predictionType) {
    case "epsilon":
      return tf.sub(sample, tf.mul(modelOutput, sigma));
    case "v_prediction": {
      const variance = f32(f32(sigma * sigma) + 1);
      const cOut = f32(-sigma / f32(Math.sqrt(variance)));
      return tf.add(tf.mul(modelOutput, cOut), tf.div(sample, variance));
    }
    case "sample":
    case "original_sample":
      return tf.clone(modelOutput);
    default:
      throw new ConfigError(`unknown prediction type ${JSON.stringify(predictionType)}`, {
        key: "prediction_type",
      });
  }
}

/** The config keys {@link SigmaSchedulerBase} reads. */
export type SigmaSchedulerConfig = {
  num_train_timesteps: number;
  timestep_spacing: string;
  steps_offset: number;
  prediction_type: string;
};

/**
 * What the k-diffusion schedulers share: the `sigmas` of the current
 * schedule, the step index (found from the first timestep seen, or set with
 * {@link SigmaSchedulerBase.setBeginIndex}), input scaling by
 * 1/√(σ² + 1), the initial noise scale and `addNoise` (x + σ·ε).
 * Subclasses fill `timesteps` and `sigmas` in `setTimesteps` and implement
 * `step`.
 *
 * @example
 * ```ts
 * import { EulerDiscreteScheduler } from "./euler_discrete.ts";
 * const s = EulerDiscreteScheduler.fromConfig({});
 * s.setTimesteps(10);
 * console.log(s.sigmas.length, s.stepIndex); // 11 null
 * ```
 */
export abstract class SigmaSchedulerBase<C extends ConfigDict & SigmaSchedulerConfig>
  extends SchedulerBase<C> {
  /** The noise level of each entry of `timesteps`, then the final one (0). */
  sigmas: Float32Array = new Float32Array(0);
  /** The timesteps to evaluate the model at, in order. */
  timesteps: number[] = [];
  /** The `n` of the last `setTimesteps(n)`, or null before it. */
  numInferenceSteps: number | null = null;
  /** ᾱ_t of the training schedule (float32). */
  readonly alphasCumprod: Float32Array;
  /** Index into `timesteps` of the next step, or null until the first `scaleModelInput`/`step`. */
  protected stepIdx: number | null = null;
  /** Index the run starts at (img2img), or null to find it from the first timestep. */
  protected beginIdx: number | null = null;

  /** Stores the config and the training ᾱ_t. */
  protected constructor(spec: ConfigSpec<C>, config: Readonly<C>, alphasCumprod: Float32Array) {
    super(spec, config);
    this.alphasCumprod = alphasCumprod;
    checkChoice(spec.className, "timestep_spacing", config.timestep_spacing, TIMESTEP_SPACINGS);
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
   * before an img2img or inpainting loop that starts mid-schedule).
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
   * Standard deviation of the initial noise: σ_max, or √(σ_max² + 1) with
   * `leading` spacing (whose first timestep is below T − 1), as diffusers.
   */
  get initNoiseSigma(): number {
    let max = -Infinity;
    for (const s of this.sigmas) max = Math.max(max, s);
    const spacing = this.config.timestep_spacing;
    return spacing === "linspace" || spacing === "trailing"
      ? max
      : f32(Math.sqrt(f32(f32(max * max) + 1)));
  }

  /** The position of `timestep` in `schedule` (second match when repeated). */
  indexForTimestep(timestep: number, schedule: readonly number[] = this.timesteps): number {
    return indexForTimestep(schedule, timestep);
  }

  /** Sets the step index on the first call of a run, from the timestep or the begin index. */
  protected initStepIndex(timestep: number): number {
    if (this.stepIdx === null) {
      this.stepIdx = this.beginIdx ?? this.indexForTimestep(timestep);
    }
    return this.stepIdx;
  }

  /**
   * The index of the step about to run (set from `timestep` on the first
   * call); an {@link ArgumentError} once the schedule is used up.
   */
  protected stepIndexFor(timestep: number): number {
    const index = this.initStepIndex(timestep);
    if (index >= this.timesteps.length) {
      throw new ArgumentError("the schedule has ended; call setTimesteps before a new run");
    }
    return index;
  }

  /** The sigma the model input is scaled with at step `index` (KDPM2 overrides it). */
  protected inputSigma(index: number): number {
    return this.sigmas[index]!;
  }

  /** Checks `n` for `setTimesteps` and clears the step and begin index. */
  protected startSchedule(numInferenceSteps: number): void {
    checkNumInferenceSteps(numInferenceSteps, this.config.num_train_timesteps);
    this.numInferenceSteps = numInferenceSteps;
    this.stepIdx = null;
    this.beginIdx = null;
  }

  /** Divides `sample` by √(σ² + 1), making the model input unit-variance (Karras et al. c_in). */
  override scaleModelInput(sample: tf.Tensor, timestep: number): tf.Tensor {
    const sigma = this.inputSigma(this.initStepIndex(timestep));
    const scale = f32(Math.sqrt(f32(f32(sigma * sigma) + 1)));
    return tf.tidy(() => tf.div(sample, scale));
  }

  /**
   * Forward diffusion x + σ·ε, one σ per batch item: from each timestep's
   * position in `timesteps` before a run, else from the current (or begin) index.
   */
  addNoise(original: tf.Tensor, noise: tf.Tensor, timesteps: readonly number[]): tf.Tensor {
    const index = this.beginIdx === null ? null : this.stepIdx ?? this.beginIdx;
    const sigma = timesteps.map((t) => this.sigmas[index ?? this.indexForTimestep(t)]!);
    return tf.tidy(() => tf.add(original, tf.mul(noise, perBatch(sigma, original.rank))));
  }
}
