/**
 * GroupNorm (+ optional SiLU) as one WGSL program for tfjs' webgpu backend,
 * over channels-last float32 tensors viewed as [N, S, C] (S = every axis
 * between batch and channels). One workgroup per (batch, group) makes three
 * passes over the group's S·C/G values: the sum (→ mean), the sum of squared
 * deviations from that mean (→ biased variance: two-pass, as the composed
 * ops and PyTorch, not E[x²] − E[x]²), then normalise, scale by γ, shift by
 * β (and SiLU, `y·sigmoid(y)`) while writing. Each thread sums a strided
 * share in a register, then the workgroup adds the partial sums as a tree in
 * shared memory. One dispatch instead of the ~15 of the composed ops, and
 * no intermediate tensors.
 *
 * @example
 * ```ts
 * import { ready, tf } from "../../../lib/backend.ts";
 * import { groupNormWebGPU } from "./group_norm_program.ts";
 * await ready("webgpu");
 * const x = tf.randomNormal([1, 8, 8, 64]);
 * const y = groupNormWebGPU(x, tf.ones([64]), tf.zeros([64]), 32, 1e-5, true); // [1, 8, 8, 64]
 * ```
 *
 * @module
 */

import { tf } from "../../../lib/tf.ts";
import type { WebGPUProgram } from "@tensorflow/tfjs-backend-webgpu";
import { type ProgramUniform, runProgram } from "./wgsl_kernels.ts";

/** Threads per workgroup (a power of two, for the tree reduction). */
const WORKGROUP = 256;

/**
 * The WGSL program: inputs `x` [N, S, C], `gamma` [C], `beta` [C]; output
 * [N, S, C]. The channel count and channels per group are compiled in (part
 * of the shader key); N, S and G vary through uniforms.
 *
 * @example
 * ```ts
 * import { GroupNormProgram } from "./group_norm_program.ts";
 * const p = new GroupNormProgram([2, 4096, 320], 32, true);
 * console.log(p.dispatch); // [64, 1, 1]: one workgroup per (batch, group)
 * ```
 */
export class GroupNormProgram implements WebGPUProgram {
  /** Input names, in binding order. */
  variableNames: string[] = ["x", "gamma", "beta"];
  /** [N, S, C]. */
  outputShape: number[];
  /** Cache key of the compiled shader (tfjs appends ranks and dtypes). */
  shaderKey: string;
  /** Workgroups along x only. */
  dispatchLayout: { x: number[] };
  /** N·G workgroups. */
  dispatch: [number, number, number];
  /** {@link WORKGROUP} threads. */
  workgroupSize: [number, number, number] = [WORKGROUP, 1, 1];
  /** Program-defined uniforms, in {@link uniformData}'s order. */
  uniforms = "spatial : i32, groups : i32, workgroups : i32, eps : f32,";
  readonly #channels: number;
  readonly #perGroup: number;
  readonly #silu: boolean;
  readonly #groups: number;

  /** `shape` is [N, S, C]; C must divide by `groups`. */
  constructor(shape: [number, number, number], groups: number, silu: boolean) {
    const [n, , c] = shape;
    this.outputShape = [...shape];
    this.#channels = c;
    this.#perGroup = c / groups;
    this.#silu = silu;
    this.#groups = groups;
    this.dispatchLayout = { x: [0, 1, 2] };
    this.dispatch = [n * groups, 1, 1];
    this.shaderKey = `diffusersGroupNorm_${c}_${this.#perGroup}_${silu ? "silu" : "id"}`;
  }

  /**
   * The uniform values for `eps`: spatial size, groups, workgroup count, eps.
   *
   * @example
   * ```ts
   * import { GroupNormProgram } from "./group_norm_program.ts";
   * const u = new GroupNormProgram([1, 64, 32], 8, false).uniformData(1e-6);
   * ```
   */
  uniformData(eps: number): ProgramUniform[] {
    return [
      { type: "int32", data: [this.outputShape[1]!] },
      { type: "int32", data: [this.#groups] },
      { type: "int32", data: [this.dispatch[0]] },
      { type: "float32", data: [eps] },
    ];
  }

  /**
   * The WGSL body (tfjs prepends bindings, uniforms and helpers).
   *
   * @example
   * ```ts
   * import { GroupNormProgram } from "./group_norm_program.ts";
   * console.log(new GroupNormProgram([1, 64, 32], 8, true).getUserCode().includes("exp"));
   * ```
   */
  getUserCode(): string {
    const c = this.#channels;
    const cg = this.#perGroup;
    // A thread's flat index k advances by WORKGROUP = STEP_S·cg + STEP_C each
    // iteration; its (position, channel) advance with it, with no division.
    const stepS = Math.floor(WORKGROUP / cg);
    const stepC = WORKGROUP % cg;
    const activation = this.#silu ? "y = y / (1.0 + exp(-y));" : "";
    return `
      const WG : u32 = ${WORKGROUP}u;
      const C : i32 = ${c};
      const CG : i32 = ${cg};
      var<workgroup> partial : array<f32, ${WORKGROUP}>;

      // Sum of every thread's v; every thread gets it. Call from uniform control flow.
      fn workgroupSum(v : f32) -> f32 {
        partial[localIndex] = v;
        workgroupBarrier();
        for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
          if (localIndex < stride) {
            partial[localIndex] = partial[localIndex] + partial[localIndex + stride];
          }
          workgroupBarrier();
        }
        let total = partial[0];
        workgroupBarrier();
        return total;
      }

      ${mainHeader()} {
        let wg = i32(workgroupId.z * numWorkgroups.x * numWorkgroups.y +
          workgroupId.y * numWorkgroups.x + workgroupId.x);
        // Surplus workgroups (when tfjs reshapes a large dispatch) run with count 0.
        let valid = wg < uniforms.workgroups;
        let n = wg / uniforms.groups;
        let g = wg - n * uniforms.groups;
        let base = n * uniforms.spatial * C + g * CG;
        let count = select(0, uniforms.spatial * CG, valid);
        let first = i32(localIndex);
        let s0 = first / CG;
        let c0 = first - s0 * CG;

        var sum = 0.0;
        var s = s0;
        var ch = c0;
        for (var k = first; k < count; k = k + ${WORKGROUP}) {
          sum = sum + x[base + s * C + ch];
          s = s + ${stepS};
          ch = ch + ${stepC};
          if (ch >= CG) { ch = ch - CG; s = s + 1; }
        }
        let mean = workgroupSum(sum) / f32(max(count, 1));

        var sq = 0.0;
        s = s0;
        ch = c0;
        for (var k = first; k < count; k = k + ${WORKGROUP}) {
          let d = x[base + s * C + ch] - mean;
          sq = sq + d * d;
          s = s + ${stepS};
          ch = ch + ${stepC};
          if (ch >= CG) { ch = ch - CG; s = s + 1; }
        }
        let rstd = inverseSqrt(workgroupSum(sq) / f32(max(count, 1)) + uniforms.eps);

        s = s0;
        ch = c0;
        for (var k = first; k < count; k = k + ${WORKGROUP}) {
          let index = base + s * C + ch;
          let channel = g * CG + ch;
          var y = (x[index] - mean) * (rstd * gamma[channel]) + beta[channel];
          ${activation}
          setOutputAtIndex(index, y);
          s = s + ${stepS};
          ch = ch + ${stepC};
          if (ch >= CG) { ch = ch - CG; s = s + 1; }
        }
      }
    `;
  }
}

/** tfjs' `main` signature for a flat dispatch layout (it passes the global index). */
function mainHeader(): string {
  return "fn main(index : i32)";
}

/**
 * GroupNorm of `x` [N, ..., C] (channels last, float32) with per-channel
 * `gamma` and `beta` [C], `groups` groups and `eps`; with `silu`, SiLU after.
 * Runs the WGSL program on the current backend, which must be `webgpu`.
 *
 * @example
 * ```ts
 * import { ready, tf } from "../../../lib/backend.ts";
 * import { groupNormWebGPU } from "./group_norm_program.ts";
 * await ready("webgpu");
 * const y = groupNormWebGPU(tf.randomNormal([2, 4, 4, 32]), tf.ones([32]), tf.zeros([32]), 8, 1e-6);
 * console.log((await y.data()).length); // 1024
 * ```
 */
export function groupNormWebGPU<T extends tf.Tensor>(
  x: T,
  gamma: tf.Tensor,
  beta: tf.Tensor,
  groups: number,
  eps: number,
  silu = false,
): T {
  return tf.tidy(() => {
    const n = x.shape[0]!;
    const c = x.shape[x.rank - 1]!;
    const shape: [number, number, number] = [n, x.size / (n * c), c];
    const program = new GroupNormProgram(shape, groups, silu);
    const y = runProgram(program, [tf.reshape(x, shape), gamma, beta], program.uniformData(eps));
    return tf.reshape(y, x.shape) as T;
  });
}
