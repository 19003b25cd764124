/**
 * Fused GroupNorm (+ SiLU) for the wasm backend: three WebAssembly SIMD
 * passes over the channels-last input on tfjs-wasm's own heap (the
 * GroupNorm exports of winograd_simd/, no copies): per-channel sums, then
 * per-channel sums of squared deviations from the group mean (two-pass,
 * biased variance, as PyTorch and the composed ops in group_norm.ts), then
 * y = (x − mean)·γ/√(var+ε) + β with SiLU (y·sigmoid(y)) on the way out.
 * Sums are float32 over blocks of 16 pixels, float64 beyond; the group
 * statistics and γ/√(var+ε) are float64. The composed tfjs ops take 10
 * full passes and an XNNPACK pooling; this is 3 reads and 1 write.
 *
 * Used by {@link GroupNorm} on the wasm backend when WebAssembly SIMD is
 * there and the channel count is a multiple of 4; elsewhere (or after
 * `setGroupNormSimd(false)`, or with `DIFFUSERS_GROUPNORM_SIMD=0`) the
 * composed ops run.
 *
 * @example
 * ```ts
 * import { ready, tf } from "../../lib/backend.ts";
 * import { groupNormSimd } from "./group_norm_simd.ts";
 * await ready("wasm");
 * const y = groupNormSimd(tf.randomNormal([1, 8, 8, 32]), tf.ones([32]), tf.zeros([32]), 8, 1e-6, true);
 * console.log(y?.shape); // [1, 8, 8, 32] (null where SIMD is missing)
 * ```
 *
 * @module
 */

import { tf } from "../../lib/tf.ts";
import { getEnv } from "../../lib/env.ts";
import { backendMemory, simdTransformsFor } from "./winograd_simd/simd_transforms.ts";

/** The parts of tfjs-wasm's backend used here (public methods of `BackendWasm`). */
interface HeapBackend {
  dataIdMap: {
    has(dataId: object): boolean;
    get(dataId: object): { memoryOffset: number } | undefined;
  };
  makeOutput(shape: number[], dtype: "float32"): tf.TensorInfo;
  disposeData(dataId: object, force?: boolean): boolean;
}

/** Floats per call of a pass (V8 tiers a wasm function up between calls, not inside one). */
const FLOATS_PER_CALL = 1 << 16;

/** On unless set off, or `DIFFUSERS_GROUPNORM_SIMD=0` (read on first use). */
let simdEnabled: boolean | undefined;
let runs = 0;

function enabled(): boolean {
  simdEnabled ??= getEnv("DIFFUSERS_GROUPNORM_SIMD") !== "0";
  return simdEnabled;
}

/**
 * Turns the fused SIMD GroupNorm on (the default, unless the environment
 * has `DIFFUSERS_GROUPNORM_SIMD=0`) or off (the composed tfjs ops run
 * instead, as for benchmarks and tests); returns the previous setting.
 *
 * @example
 * ```ts
 * import { setGroupNormSimd } from "./group_norm_simd.ts";
 * const previous = setGroupNormSimd(false);
 * // ... GroupNorms through the composed ops ...
 * setGroupNormSimd(previous);
 * ```
 */
export function setGroupNormSimd(on: boolean): boolean {
  const previous = enabled();
  simdEnabled = on;
  return previous;
}

/**
 * How many GroupNorms the fused SIMD kernel has run so far.
 *
 * @example
 * ```ts
 * import { groupNormSimdRuns } from "./group_norm_simd.ts";
 * console.log(groupNormSimdRuns()); // 0 before any GroupNorm on wasm
 * ```
 */
export function groupNormSimdRuns(): number {
  return runs;
}

/**
 * GroupNorm of `x` [N, ..., C] (channels last, float32) with `gamma`,
 * `beta` [C], `groups` groups and `eps`, then SiLU with `silu`, as one
 * tracked tensor; null (nothing done) unless the backend is wasm with
 * WebAssembly SIMD, the kernel is on, C is a multiple of 4 and every input
 * is on the wasm heap.
 *
 * @example
 * ```ts
 * import { ready, tf } from "../../lib/backend.ts";
 * import { groupNormSimd } from "./group_norm_simd.ts";
 * await ready("wasm");
 * const x = tf.randomNormal([2, 5, 7, 64]);
 * const y = groupNormSimd(x, tf.ones([64]), tf.zeros([64]), 32, 1e-5) ?? x;
 * ```
 */
export function groupNormSimd<T extends tf.Tensor>(
  x: T,
  gamma: tf.Tensor,
  beta: tf.Tensor,
  groups: number,
  eps: number,
  silu = false,
): T | null {
  if (!enabled() || tf.getBackend() !== "wasm" || x.dtype !== "float32" || x.size === 0) {
    return null;
  }
  const c = x.shape[x.rank - 1]!;
  if (c % 4 !== 0 || c % groups !== 0 || gamma.size !== c || beta.size !== c) return null;
  const backend = tf.backend() as unknown as HeapBackend;
  if (![x, gamma, beta].every((t) => backend.dataIdMap.has(t.dataId))) return null;
  const memory = backendMemory(backend);
  const simd = memory && simdTransformsFor(memory);
  if (!memory || !simd) return null;

  const n = x.shape[0]!;
  const pixels = x.size / (n * c);
  const perGroup = c / groups;
  const count = pixels * perGroup;
  // working memory: total f64 [c], then acc, mean, scale f32 [c]
  const work = backend.makeOutput([5 * c], "float32");
  const y = backend.makeOutput([...x.shape], "float32");
  const at = (t: tf.TensorInfo): number => backend.dataIdMap.get(t.dataId)!.memoryOffset;
  const base = at(work);
  if (base % 8 !== 0) {
    backend.disposeData(work.dataId);
    backend.disposeData(y.dataId);
    return null;
  }
  const [total, acc, mean, scale] = [base, base + 8 * c, base + 12 * c, base + 16 * c];
  const [xAt, yAt, betaAt] = [at(x), at(y), at(beta)];
  // Views made after every allocation (growing the heap detaches older ones); the passes allocate nothing.
  const totals = new Float64Array(memory.buffer, total, c);
  const means = new Float32Array(memory.buffer, mean, c);
  const scales = new Float32Array(memory.buffer, scale, c);
  const gammas = new Float32Array(memory.buffer, at(gamma), c);
  const rows = Math.max(16, Math.floor(FLOATS_PER_CALL / c / 16) * 16);
  const rowBytes = 4 * c;
  /** One pass of sums over image `b` (deviations from `means` with `centred`), per group / count. */
  const groupSums = (b: number, centred: boolean): Float64Array => {
    totals.fill(0);
    const image = xAt + b * pixels * rowBytes;
    for (let p = 0; p < pixels; p += rows) {
      const m = Math.min(rows, pixels - p);
      simd.groupNormSums(image + p * rowBytes, m, c, centred ? mean : 0, acc, total);
    }
    const out = new Float64Array(groups);
    for (let ch = 0; ch < c; ch++) out[Math.floor(ch / perGroup)]! += totals[ch]!;
    return out.map((s) => s / count);
  };
  for (let b = 0; b < n; b++) {
    const groupMean = groupSums(b, false);
    for (let ch = 0; ch < c; ch++) means[ch] = groupMean[Math.floor(ch / perGroup)]!;
    const variance = groupSums(b, true);
    for (let ch = 0; ch < c; ch++) {
      scales[ch] = gammas[ch]! / Math.sqrt(variance[Math.floor(ch / perGroup)]! + eps);
    }
    const offset = b * pixels * rowBytes;
    for (let p = 0; p < pixels; p += rows) {
      const m = Math.min(rows, pixels - p);
      const o = offset + p * rowBytes;
      simd.groupNormApply(xAt + o, yAt + o, m, c, mean, scale, betaAt, silu ? 1 : 0);
    }
  }
  backend.disposeData(work.dataId);
  runs++;
  return tf.engine().makeTensorFromTensorInfo(y) as T;
}
