/**
 * PyTorch-CPU-compatible random numbers: a {@link Generator} that gives the
 * same `torch.randn` / `torch.rand` values as `torch.Generator("cpu")`, bit
 * for bit, so a seed gives diffusers' latents and noise.
 *
 * The algorithm is that of torch 1.13 on an x86-64 build dispatching to AVX2
 * (the fixtures' `rng/torch_rng_reference.py` spells it out):
 *
 * - MT19937 seeded with `seed & 0xffffffff`.
 * - Uniforms: float32 `(u32 & 0xffffff) * 2^-24`, float64 `(u64 & (2^53 - 1)) * 2^-53`.
 * - `randn` with at least 16 values: all uniforms first, then Box-Muller on
 *   blocks of 16 (pairs j, j + 8); a partial tail redraws 16 uniforms into the
 *   last 16 slots. float32 uses avx_mathfun's `log256_ps` / `sincos256_ps`
 *   polynomials in float32 with the FMAs torch's build emitted.
 * - `randn` with fewer than 16 values: scalar double Box-Muller whose second
 *   value is cached in the generator across calls and dtypes.
 *
 * Other torch builds (ARM, no AVX2) can differ in the last bit of float32 `randn`.
 *
 * @example
 * ```ts
 * import { ready } from "./backend.ts";
 * import { Generator, randnTensor } from "./random.ts";
 * await ready("cpu");
 * const g = new Generator().manualSeed(0);
 * console.log(g.randn(4)); // torch.manual_seed(0); torch.randn(4)
 * const latents = randnTensor([1, 64, 64, 4], { generator: g }); // NHWC, torch's NCHW draw order
 * latents.dispose();
 * ```
 *
 * @module
 */

import { tf } from "./tf.ts";
import { ArgumentError } from "./errors.ts";

/**
 * Data type of generated values.
 *
 * @example
 * ```ts
 * import { Generator, type RandomDType } from "./random.ts";
 * const dtype: RandomDType = "float64";
 * console.log(new Generator().manualSeed(0).rand(2, dtype));
 * ```
 */
export type RandomDType = "float32" | "float64";

/** torch's `default_rng_seed_val`: the seed of a `torch.Generator()` nobody seeded. */
const TORCH_DEFAULT_SEED = 67280421310721n;

const MT_N = 624;
const MT_M = 397;
const UPPER_MASK = 0x80000000;
const LOWER_MASK = 0x7fffffff;
const MATRIX_A = 0x9908b0df;

const TWO_POW_M24 = 2 ** -24;
const TWO_POW_M53 = 2 ** -53;
const TWO_POW_32 = 2 ** 32;

const f32 = Math.fround;

/** Rounds `a * b + c` once to float32, as a float32 FMA does (the product is exact in double). */
function fma32(a: number, b: number, c: number): number {
  return f32(a * b + c);
}

// Bit views for the exponent/mantissa split of log256.
const bitsF32 = new Float32Array(1);
const bitsI32 = new Int32Array(bitsF32.buffer);

const SQRT_HALF_F32 = f32(0.707106781186547524);
const LOG_P = [
  7.0376836292e-2,
  -1.1514610310e-1,
  1.1676998740e-1,
  -1.2420140846e-1,
  1.4249322787e-1,
  -1.6668057665e-1,
  2.0000714765e-1,
  -2.4999993993e-1,
  3.3333331174e-1,
].map(f32);
const LOG_Q1 = f32(-2.12194440e-4);
const LOG_Q2 = f32(0.693359375);

/** avx_mathfun `log256_ps` for one positive, normal float32, with torch 1.13's FMAs. */
function log256(x: number): number {
  bitsF32[0] = x;
  const xi = bitsI32[0]!;
  let e = (xi >> 23) - 0x7f + 1;
  bitsI32[0] = (xi & ~0x7f800000) | 0x3f000000;
  const mant = bitsF32[0]!;
  let m: number;
  if (mant < SQRT_HALF_F32) {
    e -= 1;
    m = f32(f32(mant - 1) + mant);
  } else {
    m = f32(mant - 1);
  }
  const z = f32(m * m);
  let y = LOG_P[0]!;
  for (let i = 1; i < LOG_P.length; i++) y = fma32(y, m, LOG_P[i]!);
  y = f32(y * m);
  y = fma32(y, z, f32(e * LOG_Q1));
  y = f32(y - f32(z * 0.5));
  const r = f32(m + y);
  return f32(r + f32(e * LOG_Q2));
}

const FOUR_OVER_PI_F32 = f32(1.27323954473516);
const DP1 = f32(-0.78515625);
const DP2 = f32(-2.4187564849853515625e-4);
const DP3 = f32(-3.77489497744594108e-8);
const COS_P0 = f32(2.443315711809948e-5);
const COS_P1 = f32(-1.388731625493765e-3);
const COS_P2 = f32(4.166664568298827e-2);
const SIN_P0 = f32(-1.9515295891e-4);
const SIN_P1 = f32(8.3321608736e-3);
const SIN_P2 = f32(-1.6666654611e-1);

// sincos256 writes its two results here, to avoid allocating in the hot loop.
let sinOut = 0;
let cosOut = 0;

/**
 * avx_mathfun `sincos256_ps` for one non-negative float32 (Box-Muller angles
 * are never negative, so the input-sign branch is left out), with torch 1.13's FMAs.
 */
function sincos256(x: number): void {
  let j = Math.trunc(f32(x * FOUR_OVER_PI_F32));
  j = (j + 1) & ~1;
  const swap = (j & 4) !== 0;
  const polyIsSin = (j & 2) === 0;
  const negCos = (~(j - 2) & 4) !== 0;
  let a = fma32(j, DP1, x);
  a = fma32(j, DP2, a);
  a = fma32(j, DP3, a);
  const z = f32(a * a);
  let yc = fma32(COS_P0, z, COS_P1);
  yc = fma32(yc, z, COS_P2);
  yc = f32(yc * z);
  yc = fma32(yc, z, -f32(z * 0.5));
  yc = f32(yc + 1);
  let ys = fma32(SIN_P0, z, SIN_P1);
  ys = fma32(ys, z, SIN_P2);
  ys = f32(ys * z);
  ys = fma32(ys, a, a);
  const s = polyIsSin ? ys : yc;
  const c = polyIsSin ? yc : ys;
  sinOut = swap ? -s : s;
  cosOut = negCos ? -c : c;
}

const TWO_PI_F32 = f32(2 * Math.PI);

/** torch's `normal_fill_16_AVX2`: Box-Muller on the 16 float32 uniforms at `d[o..o+16)`. */
function normalFill16F32(d: Float32Array, o: number): void {
  for (let j = o; j < o + 8; j++) {
    const radius = f32(Math.sqrt(f32(-2 * log256(f32(1 - d[j]!)))));
    sincos256(f32(TWO_PI_F32 * d[j + 8]!));
    d[j] = radius * cosOut;
    d[j + 8] = radius * sinOut;
  }
}

/** torch's `normal_fill_16<double>`: Box-Muller on the 16 float64 uniforms at `d[o..o+16)`. */
function normalFill16F64(d: Float64Array, o: number): void {
  for (let j = o; j < o + 8; j++) {
    const radius = Math.sqrt(-2 * Math.log(1 - d[j]!));
    const theta = 2 * Math.PI * d[j + 8]!;
    d[j] = radius * Math.cos(theta);
    d[j + 8] = radius * Math.sin(theta);
  }
}

/** Throws unless `n` is a valid element count. */
function checkCount(n: number): void {
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new ArgumentError(`element count must be a non-negative integer, got ${n}`);
  }
}

/** Throws unless `dtype` is one of {@link RandomDType} (callers may be untyped JS). */
function checkDType(dtype: string): void {
  if (dtype !== "float32" && dtype !== "float64") {
    throw new ArgumentError(`dtype must be "float32" or "float64", got ${JSON.stringify(dtype)}`);
  }
}

/** A seed as torch stores it: an unsigned 64-bit integer (negative seeds wrap, as in torch). */
function toSeed(seed: number | bigint): bigint {
  if (typeof seed === "number" && !Number.isInteger(seed)) {
    throw new ArgumentError(`seed must be an integer, got ${seed}`);
  }
  if (typeof seed !== "number" && typeof seed !== "bigint") {
    throw new ArgumentError(`seed must be a number or bigint, got ${typeof seed}`);
  }
  const s = BigInt(seed);
  if (s < -(1n << 63n) || s >= 1n << 64n) {
    throw new ArgumentError(`seed must be in [-2^63, 2^64), got ${s}`);
  }
  return BigInt.asUintN(64, s);
}

/**
 * MT19937 generator reproducing `torch.Generator("cpu")`: same seeding, same
 * `randn` / `rand` values, same carried state (including the cached second
 * value of the scalar `randn` path) from call to call.
 *
 * @example
 * ```ts
 * import { Generator } from "./random.ts";
 * const g = new Generator().manualSeed(0); // torch.Generator("cpu").manual_seed(0)
 * const a = g.randn(16);                   // torch.randn(16, generator=g)
 * const b = g.rand(3, "float64");          // torch.rand(3, generator=g, dtype=torch.float64)
 * console.log(a[0], b[0]);
 * ```
 */
export class Generator {
  #state = new Uint32Array(MT_N);
  #next = 0;
  #left = 1;
  #seed = 0n;
  /** Second value of the last scalar Box-Muller pair, or `undefined` when used. */
  #cachedNormal: number | undefined = undefined;

  /**
   * A generator seeded with `seed`; without one, with torch's default seed
   * (67280421310721), like a fresh `torch.Generator()`.
   *
   * @example
   * ```ts
   * import { Generator } from "./random.ts";
   * const g = new Generator(42); // same as new Generator().manualSeed(42)
   * console.log(g.initialSeed()); // 42n
   * ```
   */
  constructor(seed: number | bigint = TORCH_DEFAULT_SEED) {
    this.manualSeed(seed);
  }

  /**
   * Seeds the generator like `torch.manual_seed(seed)`: MT19937 is
   * initialised from `seed & 0xffffffff`, the cached normal is dropped, and
   * {@link initialSeed} reports the full seed (negative seeds wrap to
   * unsigned 64-bit, as in torch). Returns `this` for chaining.
   *
   * @example
   * ```ts
   * import { Generator } from "./random.ts";
   * const g = new Generator().manualSeed(0);
   * const a = g.randn(3);
   * g.manualSeed(0);
   * console.log(g.randn(3)[0] === a[0]); // true
   * ```
   */
  manualSeed(seed: number | bigint): this {
    this.#seed = toSeed(seed);
    const st = this.#state;
    st[0] = Number(this.#seed & 0xffffffffn);
    for (let i = 1; i < MT_N; i++) {
      const prev = st[i - 1]!;
      st[i] = Math.imul(1812433253, prev ^ (prev >>> 30)) + i;
    }
    this.#next = 0;
    this.#left = 1;
    this.#cachedNormal = undefined;
    return this;
  }

  /**
   * Re-seeds from the platform's secure random source and returns the new
   * seed, like `torch.Generator.seed()` (a 53-bit value, as torch draws).
   *
   * @example
   * ```ts
   * import { Generator } from "./random.ts";
   * const g = new Generator();
   * const s = g.seed();
   * console.log(g.initialSeed() === s); // true
   * ```
   */
  seed(): bigint {
    const words = crypto.getRandomValues(new Uint32Array(2));
    const s = ((BigInt(words[0]!) << 32n) | BigInt(words[1]!)) & ((1n << 53n) - 1n);
    this.manualSeed(s);
    return s;
  }

  /**
   * The seed last given to {@link manualSeed} (as an unsigned 64-bit integer),
   * like `torch.Generator.initial_seed()`.
   *
   * @example
   * ```ts
   * import { Generator } from "./random.ts";
   * console.log(new Generator().manualSeed(-1).initialSeed()); // 18446744073709551615n
   * ```
   */
  initialSeed(): bigint {
    return this.#seed;
  }

  /**
   * An independent copy with the full state (MT19937 position and the
   * cached normal): both continue with identical draws.
   *
   * @example
   * ```ts
   * import { Generator } from "./random.ts";
   * const g = new Generator().manualSeed(0);
   * g.randn(3);
   * const h = g.clone();
   * console.log(g.randn(5)[4] === h.randn(5)[4]); // true
   * ```
   */
  clone(): Generator {
    const copy = new Generator(this.#seed);
    copy.#state.set(this.#state);
    copy.#next = this.#next;
    copy.#left = this.#left;
    copy.#cachedNormal = this.#cachedNormal;
    return copy;
  }

  /** Regenerates the 624 state words (the MT19937 "twist"). */
  #twist(): void {
    const st = this.#state;
    let i = 0;
    for (; i < MT_N - MT_M; i++) {
      const y = (st[i]! & UPPER_MASK) | (st[i + 1]! & LOWER_MASK);
      st[i] = st[i + MT_M]! ^ (y >>> 1) ^ (st[i + 1]! & 1 ? MATRIX_A : 0);
    }
    for (; i < MT_N - 1; i++) {
      const y = (st[i]! & UPPER_MASK) | (st[i + 1]! & LOWER_MASK);
      st[i] = st[i + MT_M - MT_N]! ^ (y >>> 1) ^ (st[i + 1]! & 1 ? MATRIX_A : 0);
    }
    const y = (st[MT_N - 1]! & UPPER_MASK) | (st[0]! & LOWER_MASK);
    st[MT_N - 1] = st[MT_M - 1]! ^ (y >>> 1) ^ (st[0]! & 1 ? MATRIX_A : 0);
    this.#next = 0;
    this.#left = MT_N;
  }

  /** The next tempered 32-bit output, as an unsigned number. */
  #random(): number {
    if (--this.#left === 0) this.#twist();
    let y = this.#state[this.#next++]!;
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  /** float32 uniform in [0, 1): the low 24 bits of one draw. */
  #uniform32(): number {
    return (this.#random() & 0xffffff) * TWO_POW_M24;
  }

  /** float64 uniform in [0, 1): the low 53 bits of `(hi << 32) | lo`, built without BigInt. */
  #uniform64(): number {
    const hi = this.#random() & 0x1fffff;
    const lo = this.#random();
    return (hi * TWO_POW_32 + lo) * TWO_POW_M53;
  }

  /** `at::normal_distribution<double>` with its cached second value. */
  #normalScalar(): number {
    const cached = this.#cachedNormal;
    if (cached !== undefined) {
      this.#cachedNormal = undefined;
      return cached;
    }
    const u1 = this.#uniform64();
    const u2 = this.#uniform64();
    const radius = Math.sqrt(-2 * Math.log(1 - u2));
    const theta = 2 * Math.PI * u1;
    this.#cachedNormal = radius * Math.sin(theta);
    return radius * Math.cos(theta);
  }

  /**
   * `n` standard normal values, equal to `torch.randn(n, generator=g,
   * dtype=...)` (and to any contiguous shape with `n` elements).
   *
   * @example
   * ```ts
   * import { Generator } from "./random.ts";
   * const g = new Generator().manualSeed(0);
   * const x: Float32Array = g.randn(16);
   * const y: Float64Array = g.randn(8, "float64");
   * console.log(x.length, y.length); // 16 8
   * ```
   */
  randn(n: number, dtype?: "float32"): Float32Array;
  /** `torch.randn(n, generator=g, dtype=torch.float64)` values. */
  randn(n: number, dtype: "float64"): Float64Array;
  /** `torch.randn(n, generator=g, dtype=...)` values, dtype known at run time. */
  randn(n: number, dtype?: RandomDType): Float32Array | Float64Array;
  randn(n: number, dtype: RandomDType = "float32"): Float32Array | Float64Array {
    checkCount(n);
    checkDType(dtype);
    const out = dtype === "float32" ? new Float32Array(n) : new Float64Array(n);
    if (n < 16) {
      for (let i = 0; i < n; i++) out[i] = this.#normalScalar();
      return out;
    }
    const draw = dtype === "float32" ? () => this.#uniform32() : () => this.#uniform64();
    const fill16 = dtype === "float32"
      ? (o: number) => normalFill16F32(out as Float32Array, o)
      : (o: number) => normalFill16F64(out as Float64Array, o);
    for (let i = 0; i < n; i++) out[i] = draw();
    for (let o = 0; o + 16 <= n; o += 16) fill16(o);
    if (n % 16 !== 0) {
      // torch redraws the tail block: the last 16 slots get fresh uniforms.
      for (let i = n - 16; i < n; i++) out[i] = draw();
      fill16(n - 16);
    }
    return out;
  }

  /**
   * `n` uniform values in [0, 1), equal to `torch.rand(n, generator=g, dtype=...)`.
   *
   * @example
   * ```ts
   * import { Generator } from "./random.ts";
   * const g = new Generator().manualSeed(0);
   * console.log(g.rand(2)); // Float32Array, = torch.rand(2)
   * console.log(g.rand(2, "float64")); // Float64Array
   * ```
   */
  rand(n: number, dtype?: "float32"): Float32Array;
  /** `torch.rand(n, generator=g, dtype=torch.float64)` values. */
  rand(n: number, dtype: "float64"): Float64Array;
  /** `torch.rand(n, generator=g, dtype=...)` values, dtype known at run time. */
  rand(n: number, dtype?: RandomDType): Float32Array | Float64Array;
  rand(n: number, dtype: RandomDType = "float32"): Float32Array | Float64Array {
    checkCount(n);
    checkDType(dtype);
    if (dtype === "float32") {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = this.#uniform32();
      return out;
    }
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) out[i] = this.#uniform64();
    return out;
  }
}

let defaultGen: Generator | undefined;

/**
 * The process-wide default generator, used when no generator is passed.
 * Unlike torch's (fixed seed 67280421310721), it is seeded from
 * `crypto.getRandomValues` on first use, so unseeded runs differ; call
 * {@link manualSeed} for reproducible draws.
 *
 * @example
 * ```ts
 * import { defaultGenerator } from "./random.ts";
 * console.log(defaultGenerator().initialSeed()); // some 53-bit seed
 * ```
 */
export function defaultGenerator(): Generator {
  if (defaultGen === undefined) {
    defaultGen = new Generator();
    defaultGen.seed();
  }
  return defaultGen;
}

/**
 * Seeds the default generator and returns it, like `torch.manual_seed(seed)`.
 *
 * @example
 * ```ts
 * import { ready } from "./backend.ts";
 * import { manualSeed, randn } from "./random.ts";
 * await ready("cpu");
 * manualSeed(0);
 * const x = randn([4]); // torch.manual_seed(0); torch.randn(4)
 * x.dispose();
 * ```
 */
export function manualSeed(seed: number | bigint): Generator {
  return defaultGenerator().manualSeed(seed);
}

/**
 * Options of {@link randn} and {@link rand}.
 *
 * @example
 * ```ts
 * import { ready } from "./backend.ts";
 * import { Generator, rand, type RandomOptions } from "./random.ts";
 * await ready("cpu");
 * const options: RandomOptions = { generator: new Generator(0), dtype: "float64" };
 * rand([2, 2], options).dispose();
 * ```
 */
export interface RandomOptions {
  /** Generator to draw from (default: the process-wide default generator). */
  generator?: Generator;
  /**
   * dtype PyTorch draws in (default float32). The tensor is float32 either
   * way (tfjs has no float64): "float64" gives `torch.randn(..., dtype=torch.float64).float()`.
   */
  dtype?: RandomDType;
}

/**
 * Options of {@link randnTensor}.
 *
 * @example
 * ```ts
 * import { ready } from "./backend.ts";
 * import { Generator, randnTensor, type RandomTensorOptions } from "./random.ts";
 * await ready("cpu");
 * const options: RandomTensorOptions = { generator: new Generator(0), layout: "NCHW" };
 * randnTensor([1, 4, 8, 8], options).dispose();
 * ```
 */
export interface RandomTensorOptions {
  /** Generator to draw from (default: the process-wide default generator). */
  generator?: Generator;
  /**
   * Layout of a rank-4 `shape` (default "NHWC"): for "NHWC" `[B, H, W, C]`
   * the values are drawn as `torch.randn([B, C, H, W])` and transposed, so a
   * seed gives diffusers' values. Other ranks are drawn in the given shape.
   */
  layout?: "NHWC" | "NCHW";
}

/** Throws unless `shape` is a list of non-negative integers; returns its element count. */
function shapeSize(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) {
      throw new ArgumentError(`shape must hold non-negative integers, got [${shape.join(", ")}]`);
    }
    n *= d;
  }
  checkCount(n);
  return n;
}

/** A float32 tensor of `shape` from float32 or float64 draws. */
function toTensor(values: Float32Array | Float64Array, shape: readonly number[]): tf.Tensor {
  const data = values instanceof Float32Array ? values : Float32Array.from(values);
  return tf.tensor(data, [...shape], "float32");
}

/**
 * `torch.randn(shape, generator=g)` as a float32 tensor, in the given shape
 * and PyTorch's row-major draw order (no layout change).
 *
 * @example
 * ```ts
 * import { ready } from "./backend.ts";
 * import { Generator, randn } from "./random.ts";
 * await ready("cpu");
 * const g = new Generator().manualSeed(0);
 * const noise = randn([1, 3, 32, 32], { generator: g }); // NCHW, as torch.randn
 * noise.dispose();
 * ```
 */
export function randn(shape: readonly number[], options: RandomOptions = {}): tf.Tensor {
  const n = shapeSize(shape);
  const g = options.generator ?? defaultGenerator();
  return toTensor(g.randn(n, options.dtype ?? "float32"), shape);
}

/**
 * `torch.rand(shape, generator=g)` as a float32 tensor, in the given shape
 * and PyTorch's row-major draw order.
 *
 * @example
 * ```ts
 * import { ready } from "./backend.ts";
 * import { Generator, rand } from "./random.ts";
 * await ready("cpu");
 * const u = rand([2, 3], { generator: new Generator(0) }); // values in [0, 1)
 * u.dispose();
 * ```
 */
export function rand(shape: readonly number[], options: RandomOptions = {}): tf.Tensor {
  const n = shapeSize(shape);
  const g = options.generator ?? defaultGenerator();
  return toTensor(g.rand(n, options.dtype ?? "float32"), shape);
}

/**
 * Standard normal float32 noise for the library's tensors: with layout
 * "NHWC" (the default) and a rank-4 `[B, H, W, C]` shape, draws
 * `torch.randn([B, C, H, W])` and transposes it to NHWC, so the same seed
 * gives diffusers' latents; otherwise draws in the given shape.
 *
 * @example
 * ```ts
 * import { ready } from "./backend.ts";
 * import { Generator, randnTensor } from "./random.ts";
 * await ready("cpu");
 * const g = new Generator().manualSeed(0);
 * const latents = randnTensor([1, 64, 64, 4], { generator: g }); // = torch.randn(1, 4, 64, 64), NHWC
 * latents.dispose();
 * ```
 */
export function randnTensor(
  shape: readonly number[],
  options: RandomTensorOptions = {},
): tf.Tensor {
  const layout = options.layout ?? "NHWC";
  if (layout !== "NHWC" && layout !== "NCHW") {
    throw new ArgumentError(`layout must be "NHWC" or "NCHW", got ${JSON.stringify(layout)}`);
  }
  const generator = options.generator;
  if (layout === "NCHW" || shape.length !== 4) return randn(shape, { generator });
  const [b, h, w, c] = shape as [number, number, number, number];
  return tf.tidy(() => tf.transpose(randn([b, c, h, w], { generator }), [0, 2, 3, 1]));
}
