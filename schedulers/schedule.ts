/**
 * The noise schedules every discrete scheduler starts from, computed the way
 * diffusers computes them in PyTorch float32, so `alphas_cumprod` matches to
 * the bit: `linear` and `scaled_linear` are float32 `torch.linspace` (the
 * second squared), `squaredcos_cap_v2` is the cosine schedule of Nichol &
 * Dhariwal (2021) computed in float64 and stored in float32, and the
 * cumulative product accumulates in float64 as PyTorch's CPU `cumprod` does.
 *
 * @example
 * ```ts
 * import { alphasCumprod, betasFromConfig } from "./schedule.ts";
 * const betas = betasFromConfig({
 *   num_train_timesteps: 1000, beta_start: 0.00085, beta_end: 0.012,
 *   beta_schedule: "scaled_linear", trained_betas: null,
 * });
 * console.log(alphasCumprod(betas)[999]); // ≈ 0.0047
 * ```
 *
 * @module
 */

import { ConfigError } from "../lib/errors.ts";

const f32 = Math.fround;

/** The config keys that define a beta schedule. */
export interface BetaScheduleConfig {
  /** Number of diffusion steps the model was trained with. */
  readonly num_train_timesteps: number;
  /** First beta of `linear` / `scaled_linear`. */
  readonly beta_start: number;
  /** Last beta of `linear` / `scaled_linear`. */
  readonly beta_end: number;
  /** `linear`, `scaled_linear` or `squaredcos_cap_v2`. */
  readonly beta_schedule: string;
  /** Explicit betas, which take precedence over `beta_schedule`. */
  readonly trained_betas: readonly number[] | null;
}

/** The beta schedule names diffusers accepts. */
export const BETA_SCHEDULES: readonly string[] = ["linear", "scaled_linear", "squaredcos_cap_v2"];

/**
 * `torch.linspace(start, end, steps, dtype=torch.float32)` as PyTorch's CPU
 * kernel computes it: a float32 step; the output is written in 8-lane AVX2
 * vectors whose first lane is `start + step·i` (or `end - step·(steps-1-i)`
 * from the halfway point on) and whose other lanes add `k·step` to it; the
 * tail after the last full vector is computed element by element.
 *
 * @example
 * ```ts
 * import { linspaceF32 } from "./schedule.ts";
 * console.log(linspaceF32(0, 1, 3)); // Float32Array [0, 0.5, 1]
 * ```
 */
export function linspaceF32(start: number, end: number, steps: number): Float32Array {
  const out = new Float32Array(steps);
  const s = f32(start);
  const e = f32(end);
  if (steps === 1) {
    out[0] = s;
    return out;
  }
  const step = f32(f32(e - s) / (steps - 1));
  const halfway = Math.floor(steps / 2);
  // The compiler contracts `start + step * i` into one fused multiply-add (exact product, one rounding).
  const at = (i: number) => i < halfway ? f32(s + step * i) : f32(e - step * (steps - i - 1));
  const LANES = 8;
  const vectorEnd = steps - (steps % LANES);
  for (let i = 0; i < vectorEnd; i += LANES) {
    const base = at(i);
    out[i] = base;
    for (let k = 1; k < LANES; k++) out[i + k] = f32(base + f32(k * step));
  }
  for (let i = vectorEnd; i < steps; i++) out[i] = at(i);
  return out;
}

/**
 * diffusers' `betas_for_alpha_bar` with the cosine transform: betas such that
 * the cumulative product of `1 - beta` follows `cos²((t + 0.008) / 1.008 · π/2)`,
 * each capped at `maxBeta`.
 *
 * @example
 * ```ts
 * import { betasForAlphaBar } from "./schedule.ts";
 * console.log(betasForAlphaBar(1000).length); // 1000
 * ```
 */
export function betasForAlphaBar(numDiffusionTimesteps: number, maxBeta = 0.999): Float32Array {
  const alphaBar = (t: number) => Math.cos(((t + 0.008) / 1.008) * Math.PI / 2) ** 2;
  const betas = new Float32Array(numDiffusionTimesteps);
  for (let i = 0; i < numDiffusionTimesteps; i++) {
    const t1 = i / numDiffusionTimesteps;
    const t2 = (i + 1) / numDiffusionTimesteps;
    betas[i] = Math.min(1 - alphaBar(t2) / alphaBar(t1), maxBeta);
  }
  return betas;
}

/** Real models train on 1000 (at most a few thousand) steps; a hostile config must not make every table huge. */
const MAX_TRAIN_TIMESTEPS = 1_000_000;

/**
 * Checks `num_train_timesteps`: a whole number from 1 to 1,000,000, else a
 * {@link ConfigError} (every per-timestep table is this long).
 *
 * @example
 * ```ts
 * import { checkTrainTimesteps } from "./schedule.ts";
 * checkTrainTimesteps(1000); // fine
 * ```
 */
export function checkTrainTimesteps(n: number, file?: string): void {
  if (!Number.isInteger(n) || n < 1 || n > MAX_TRAIN_TIMESTEPS) {
    throw new ConfigError(`must be a whole number from 1 to ${MAX_TRAIN_TIMESTEPS}, got ${n}`, {
      file,
      key: "num_train_timesteps",
    });
  }
}

/**
 * The float32 betas a config describes. An unknown `beta_schedule` or
 * `trained_betas` of the wrong length is a {@link ConfigError} naming the key.
 *
 * @example
 * ```ts
 * import { betasFromConfig } from "./schedule.ts";
 * const b = betasFromConfig({ num_train_timesteps: 1000, beta_start: 1e-4, beta_end: 0.02,
 *   beta_schedule: "linear", trained_betas: null });
 * console.log(b[0], b[999]); // 0.0001 0.02 (as float32)
 * ```
 */
export function betasFromConfig(config: BetaScheduleConfig, file?: string): Float32Array {
  const n = config.num_train_timesteps;
  checkTrainTimesteps(n, file);
  if (config.trained_betas !== null) {
    if (config.trained_betas.length !== n) {
      throw new ConfigError(
        `has ${config.trained_betas.length} values but num_train_timesteps is ${n}`,
        { file, key: "trained_betas" },
      );
    }
    return Float32Array.from(config.trained_betas);
  }
  switch (config.beta_schedule) {
    case "linear":
      return linspaceF32(config.beta_start, config.beta_end, n);
    case "scaled_linear":
      return linspaceF32(Math.sqrt(config.beta_start), Math.sqrt(config.beta_end), n).map((b) =>
        b * b
      );
    case "squaredcos_cap_v2":
      return betasForAlphaBar(n);
    default:
      throw new ConfigError(
        `unknown beta schedule ${JSON.stringify(config.beta_schedule)}; valid: ${
          BETA_SCHEDULES.join(", ")
        }`,
        { file, key: "beta_schedule" },
      );
  }
}

/**
 * `torch.cumprod(1 - betas)` in float32, accumulated in float64 like
 * PyTorch's CPU kernel.
 *
 * @example
 * ```ts
 * import { alphasCumprod } from "./schedule.ts";
 * console.log(alphasCumprod(new Float32Array([0.5, 0.5]))); // Float32Array [0.5, 0.25]
 * ```
 */
export function alphasCumprod(betas: Float32Array): Float32Array {
  const out = new Float32Array(betas.length);
  let acc = 1;
  for (let i = 0; i < betas.length; i++) {
    acc *= f32(1 - betas[i]!);
    out[i] = acc;
  }
  return out;
}

/**
 * diffusers' `rescale_zero_terminal_snr` (Lin et al. 2023, Algorithm 1):
 * rescales betas so the last timestep has zero signal-to-noise ratio.
 *
 * @example
 * ```ts
 * import { alphasCumprod, linspaceF32, rescaleZeroTerminalSnr } from "./schedule.ts";
 * const betas = rescaleZeroTerminalSnr(linspaceF32(1e-4, 0.02, 1000));
 * console.log(alphasCumprod(betas)[999]); // 0
 * ```
 */
export function rescaleZeroTerminalSnr(betas: Float32Array): Float32Array {
  const sqrtAbar = alphasCumprod(betas).map(Math.sqrt);
  const first = sqrtAbar[0]!;
  const last = sqrtAbar[sqrtAbar.length - 1]!;
  const shifted = sqrtAbar.map((v) => f32(f32(v - last) * f32(first / (first - last))));
  const abar = shifted.map((v) => v * v);
  const out = new Float32Array(betas.length);
  out[0] = f32(1 - abar[0]!);
  for (let i = 1; i < abar.length; i++) out[i] = f32(1 - f32(abar[i]! / abar[i - 1]!));
  return out;
}

/** The `timestep_spacing` values of Lin et al. (2023), Table 2, that diffusers accepts. */
export const TIMESTEP_SPACINGS: readonly string[] = ["linspace", "leading", "trailing"];

/**
 * `numpy.round` for one float64: halves go to the even neighbour (`rint`),
 * unlike `Math.round`, which rounds them up.
 *
 * @example
 * ```ts
 * import { roundHalfEven } from "./schedule.ts";
 * console.log(roundHalfEven(166.5), roundHalfEven(167.5), Math.round(166.5)); // 166 168 167
 * ```
 */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * `numpy.linspace(start, stop, num)` in float64, element for element: `i * step + start`
 * with the last element set to `stop` exactly.
 *
 * @example
 * ```ts
 * import { linspaceF64 } from "./schedule.ts";
 * console.log(linspaceF64(0, 999, 4)); // [0, 333, 666, 999]
 * ```
 */
export function linspaceF64(start: number, stop: number, num: number): number[] {
  const div = num - 1;
  const step = (stop - start) / div;
  const out = Array.from({ length: num }, (_, i) => div > 0 ? i * step + start : start);
  if (num > 1) out[num - 1] = stop;
  return out;
}

/**
 * `numpy.arange(start, stop, step)` for float64 arguments: the length is
 * `ceil((stop - start) / step)`, and elements from the third on are
 * `start + i * delta` with `delta = (start + step) - start`, as numpy fills them.
 *
 * @example
 * ```ts
 * import { arangeF64 } from "./schedule.ts";
 * console.log(arangeF64(1000, 0, -250)); // [1000, 750, 500, 250]
 * ```
 */
export function arangeF64(start: number, stop: number, step: number): number[] {
  const length = Math.max(0, Math.ceil((stop - start) / step));
  const second = start + step;
  const delta = second - start;
  return Array.from({ length }, (_, i) => i === 0 ? start : i === 1 ? second : start + i * delta);
}

/**
 * The integer inference timesteps of DDPM, DDIM and PNDM, in descending
 * order, for a `timestep_spacing` of Lin et al. (2023), Table 2, computed as
 * diffusers computes them with numpy:
 * - `linspace`: `round(linspace(0, T - 1, n))`;
 * - `leading`: `arange(n) * (T // n) + steps_offset`;
 * - `trailing`: `round(arange(T, 0, -T / n)) - 1`.
 *
 * An unknown spacing is a {@link ConfigError} naming `timestep_spacing`.
 *
 * @example
 * ```ts
 * import { spacedTimesteps } from "./schedule.ts";
 * console.log(spacedTimesteps("leading", 1000, 5, 1)); // [801, 601, 401, 201, 1]
 * console.log(spacedTimesteps("trailing", 1000, 4)); // [999, 749, 499, 249]
 * ```
 */
export function spacedTimesteps(
  spacing: string,
  numTrainTimesteps: number,
  numInferenceSteps: number,
  stepsOffset = 0,
): number[] {
  const T = numTrainTimesteps;
  const n = numInferenceSteps;
  switch (spacing) {
    case "linspace":
      return linspaceF64(0, T - 1, n).map(roundHalfEven).reverse();
    case "leading": {
      const ratio = Math.floor(T / n);
      return Array.from({ length: n }, (_, i) => (n - 1 - i) * ratio + stepsOffset);
    }
    case "trailing":
      return arangeF64(T, 0, -T / n).map((t) => roundHalfEven(t) - 1);
    default:
      throw new ConfigError(
        `unknown timestep spacing ${JSON.stringify(spacing)}; valid: ${
          TIMESTEP_SPACINGS.join(", ")
        }`,
        { key: "timestep_spacing" },
      );
  }
}
