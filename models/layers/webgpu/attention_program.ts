/**
 * softmax(q·kᵀ·scale [+ bias])·v for every (batch, head) as one WGSL
 * program for tfjs' webgpu backend, in the layout of
 * {@link ../attention.ts multiHeadAttention}: q [batch·nq, heads·d], k and v
 * [batch·nk, heads·d], output [batch·nq, heads·d] (heads side by side, as
 * diffusers' `batch_to_head_dim`). No transposes, and the nq×nk score matrix
 * is never stored: one workgroup takes a tile of 64·r query rows of one
 * (batch, head), r rows per thread, and walks the keys once, keeping per row
 * a running max m, a running sum l of exponentials and an unnormalised
 * output row (online softmax, as FlashAttention): for each key's score s,
 * if s > m the sums so far are rescaled by exp(m − s) and m = s; then
 * `l += exp(s − m)`, `acc += exp(s − m)·v`; at the end `acc / l`. The query
 * row is multiplied by `scale` first, as the composed ops do. An optional
 * additive `bias` [nq, nk] (CLIP's causal mask) is added to every
 * (batch, head)'s scores.
 *
 * By default every thread of a workgroup reads the same key row straight
 * from storage at the same time (a broadcast, served from cache); with
 * `stageKeys` K and V tiles are staged in workgroup memory behind barriers
 * instead, the textbook GPU form. On Mesa's lavapipe the barriers make the
 * shader compile 10-60 s per head width for no speed-up, so staging is off.
 *
 * @example
 * ```ts
 * import { ready, tf } from "../../../lib/backend.ts";
 * import { attentionWebGPU } from "./attention_program.ts";
 * await ready("webgpu");
 * const q = tf.randomNormal([2 * 64, 4 * 40]) as tf.Tensor2D;    // batch 2, 64 tokens, 4 heads of 40
 * const kv = tf.randomNormal([2 * 77, 4 * 40]) as tf.Tensor2D;   // 77 context tokens
 * const y = attentionWebGPU(q, kv, kv, 2, 4, 1 / Math.sqrt(40)); // [128, 160]
 * ```
 *
 * @module
 */

import { tf } from "../../../lib/tf.ts";
import type { WebGPUBackend, WebGPUProgram } from "@tensorflow/tfjs-backend-webgpu";
import { type ProgramUniform, runProgram } from "./wgsl_kernels.ts";

/**
 * Widest head the kernel takes: past it the per-thread registers spill and
 * (on lavapipe) compiling takes tens of seconds; the composed ops are as fast.
 */
export const MAX_KERNEL_HEAD_DIM = 160;

/** Threads per workgroup. */
const WORKGROUP = 64;

/** Keys staged per tile, at most; fewer when K and V tiles would not fit shared memory. */
const MAX_KEY_TILE = 32;

/** The problem and the variant of {@link AttentionProgram}. */
export interface AttentionProgramOptions {
  /** Batch size. */
  batch: number;
  /** Heads. */
  heads: number;
  /** Query tokens per batch element. */
  nq: number;
  /** Key / value tokens per batch element. */
  nk: number;
  /** Channels per head. */
  d: number;
  /** Whether a `bias` [nq, nk] input is added to the scores. */
  bias: boolean;
  /** Query rows per thread: 1, 2 or 4 (default 2 for d ≤ 64, else 1); a workgroup takes 64 × this. */
  rowsPerThread?: 1 | 2 | 4;
  /**
   * Stage K and V tiles in workgroup memory behind barriers (default
   * false: every thread reads the same key row from storage, a broadcast).
   * Lavapipe compiles a staged shader 10-60 s per head width, with no
   * speed-up there.
   */
  stageKeys?: boolean;
  /** Workgroup memory available for staging, in bytes (default 16384, WebGPU's minimum). */
  sharedBytes?: number;
}

/**
 * The WGSL program: inputs `q`, `k`, `v` (and `bias` when constructed with
 * one); output [batch·nq, heads·d]. The head width, the rows per thread,
 * the staging and whether there is a bias are compiled in (part of the
 * shader key); batch, heads, nq, nk and the scale vary through uniforms.
 *
 * @example
 * ```ts
 * import { AttentionProgram } from "./attention_program.ts";
 * const p = new AttentionProgram({ batch: 2, heads: 8, nq: 4096, nk: 77, d: 40, bias: false });
 * console.log(p.dispatch); // [512, 1, 1]: 2·8 (batch, head) pairs × 32 tiles of 128 query rows
 * ```
 */
export class AttentionProgram implements WebGPUProgram {
  /** Input names, in binding order. */
  variableNames: string[];
  /** Components per input element: vec4 loads of q, k, v when d divides by 4. */
  variableComponents?: number[];
  /** [batch·nq, heads·d]. */
  outputShape: number[];
  /** Cache key of the compiled shader (tfjs appends ranks and dtypes). */
  shaderKey: string;
  /** Workgroups along x only. */
  dispatchLayout: { x: number[] };
  /** batch·heads·⌈nq / queryTile⌉ workgroups. */
  dispatch: [number, number, number];
  /** 64 threads. */
  workgroupSize: [number, number, number] = [WORKGROUP, 1, 1];
  /** Program-defined uniforms, in {@link uniformData}'s order. */
  uniforms = "nq : i32, nk : i32, heads : i32, tiles : i32, workgroups : i32, scale : f32,";
  /** Query rows per workgroup. */
  readonly queryTile: number;
  /** Keys per staged tile (0 when keys are not staged). */
  readonly keyTile: number;
  readonly #options: Required<AttentionProgramOptions>;

  /** See {@link AttentionProgramOptions}. */
  constructor(options: AttentionProgramOptions) {
    const o: Required<AttentionProgramOptions> = {
      rowsPerThread: options.d <= 64 ? 2 : 1,
      stageKeys: false,
      sharedBytes: 16384,
      ...options,
    };
    this.#options = o;
    const d4 = Math.ceil(o.d / 4);
    let tile = MAX_KEY_TILE;
    while (tile > 1 && 2 * tile * d4 * 16 > o.sharedBytes) tile /= 2;
    this.keyTile = o.stageKeys ? tile : 0;
    this.queryTile = WORKGROUP * o.rowsPerThread;
    this.variableNames = o.bias ? ["q", "k", "v", "bias"] : ["q", "k", "v"];
    if (o.d % 4 === 0) this.variableComponents = o.bias ? [4, 4, 4, 1] : [4, 4, 4];
    this.outputShape = [o.batch * o.nq, o.heads * o.d];
    this.dispatchLayout = { x: [0, 1] };
    this.dispatch = [o.batch * o.heads * Math.ceil(o.nq / this.queryTile), 1, 1];
    this.shaderKey = `diffusersAttention_${o.d}_${o.rowsPerThread}_${this.keyTile}_${o.bias}`;
  }

  /**
   * The uniform values for `scale`.
   *
   * @example
   * ```ts
   * import { AttentionProgram } from "./attention_program.ts";
   * const p = new AttentionProgram({ batch: 1, heads: 1, nq: 16, nk: 16, d: 8, bias: false });
   * const u = p.uniformData(0.35);
   * ```
   */
  uniformData(scale: number): ProgramUniform[] {
    const o = this.#options;
    return [
      { type: "int32", data: [o.nq] },
      { type: "int32", data: [o.nk] },
      { type: "int32", data: [o.heads] },
      { type: "int32", data: [Math.ceil(o.nq / this.queryTile)] },
      { type: "int32", data: [this.dispatch[0]] },
      { type: "float32", data: [scale] },
    ];
  }

  /**
   * The WGSL body (tfjs prepends bindings, uniforms and helpers).
   *
   * @example
   * ```ts
   * import { AttentionProgram } from "./attention_program.ts";
   * const p = new AttentionProgram({ batch: 1, heads: 1, nq: 16, nk: 16, d: 8, bias: true });
   * const code = p.getUserCode();
   * ```
   */
  getUserCode(): string {
    const { d, bias, rowsPerThread: rows } = this.#options;
    const d4 = Math.ceil(d / 4);
    const tk = this.keyTile;
    const vec4Input = d % 4 === 0;
    // Four consecutive values of a row of \`buf\` from scalar index \`offset\`
    // (a multiple of 4 past the row start \`col\`), zero past d.
    const load4 = (buf: string, offset: string, col: string): string => {
      if (vec4Input) return `${buf}[(${offset}) / 4]`;
      const lane = (i: number): string =>
        i === 0 ? `${buf}[${offset}]` : `select(0.0, ${buf}[${offset} + ${i}], ${col} + ${i} < D)`;
      return `vec4<f32>(${lane(0)}, ${lane(1)}, ${lane(2)}, ${lane(3)})`;
    };
    // The query rows and accumulators live in named vec4 registers
    // (unrolled here): private arrays indexed in loops are slow on some
    // drivers (lavapipe keeps them in memory).
    const each = (f: (i: number) => string): string =>
      Array.from({ length: d4 }, (_, i) => f(i)).join("\n");
    const eachRow = (f: (r: number) => string): string =>
      Array.from({ length: rows }, (_, r) => f(r)).join("\n");
    // One key (index \`key\`, values kv{i} / vv{i} already loaded) for every row of this thread.
    const scoreRows = (key: string): string =>
      eachRow((r) => `
            var dot${r} = q${r}_0 * kv0;
            ${each((i) => i === 0 ? "" : `dot${r} = fma(q${r}_${i}, kv${i}, dot${r});`)}
            var score${r} = (dot${r}.x + dot${r}.y) + (dot${r}.z + dot${r}.w);
            ${bias ? `score${r} = score${r} + bias[biasRow${r} + ${key}];` : ""}
            // A new running max rescales what was summed so far (rare after the first keys).
            if (score${r} > m${r}) {
              let correction = exp(m${r} - score${r});
              l${r} = l${r} * correction;
              ${each((i) => `acc${r}_${i} = acc${r}_${i} * correction;`)}
              m${r} = score${r};
            }
            let p${r} = vec4<f32>(exp(score${r} - m${r}));
            l${r} = l${r} + p${r}.x;`);
    const accumulateRows = eachRow((r) =>
      each((i) => `acc${r}_${i} = fma(p${r}, vv${i}, acc${r}_${i});`)
    );
    const keyLoop = tk === 0
      ? `
        for (var key = 0; key < uniforms.nk; key = key + 1) {
          let kOffset = (b * uniforms.nk + key) * width + column;
          ${each((i) => `let kv${i} = ${load4("k", `kOffset + ${4 * i}`, `${4 * i}`)};`)}
          ${scoreRows("key")}
          ${each((i) => `let vv${i} = ${load4("v", `kOffset + ${4 * i}`, `${4 * i}`)};`)}
          ${accumulateRows}
        }`
      : `
        for (var j0 = 0; j0 < uniforms.nk; j0 = j0 + TK) {
          for (var e = i32(localIndex); e < TK * D4; e = e + WG) {
            let j = e / D4;
            let col = 4 * (e - j * D4);
            let offset = (b * uniforms.nk + min(j0 + j, uniforms.nk - 1)) * width + column + col;
            kTile[e] = ${load4("k", "offset", "col")};
            vTile[e] = ${load4("v", "offset", "col")};
          }
          workgroupBarrier();
          let keys = min(TK, uniforms.nk - j0);
          for (var j = 0; j < keys; j = j + 1) {
            let t = j * D4;
            ${each((i) => `let kv${i} = kTile[t + ${i}];`)}
            ${scoreRows("j0 + j")}
            ${each((i) => `let vv${i} = vTile[t + ${i}];`)}
            ${accumulateRows}
          }
          workgroupBarrier();
        }`;
    const staging = tk === 0 ? "" : `
      const TK : i32 = ${tk};
      var<workgroup> kTile : array<vec4<f32>, ${tk * d4}>;
      var<workgroup> vTile : array<vec4<f32>, ${tk * d4}>;`;
    const writeRow = (r: number): string => `
        if (valid && row${r} < uniforms.nq) {
          let outOffset = (b * uniforms.nq + row${r}) * width + column;
          let inv = 1.0 / l${r};
          ${
      each((i) =>
        [0, 1, 2, 3].filter((c) => 4 * i + c < d).map((c) =>
          `setOutputAtIndex(outOffset + ${4 * i + c}, acc${r}_${i}[${c}] * inv);`
        ).join("\n")
      )
    }
        }`;
    return `
      const D : i32 = ${d};
      const D4 : i32 = ${d4};
      const WG : i32 = ${WORKGROUP};
      ${staging}

      fn main(index : i32) {
        let wg = i32(workgroupId.z * numWorkgroups.x * numWorkgroups.y +
          workgroupId.y * numWorkgroups.x + workgroupId.x);
        // Surplus workgroups (when tfjs reshapes a large dispatch) compute row 0 and write nothing.
        let valid = wg < uniforms.workgroups;
        let bh = wg / uniforms.tiles;
        let b = bh / uniforms.heads;
        let h = bh - b * uniforms.heads;
        let firstRow = (wg - bh * uniforms.tiles) * ${this.queryTile} + i32(localIndex);
        let width = uniforms.heads * D;
        let column = h * D;
        ${
      eachRow((r) => `
        let row${r} = firstRow + ${r * WORKGROUP};
        let clamped${r} = min(row${r}, uniforms.nq - 1);
        let biasRow${r} = clamped${r} * uniforms.nk;
        let qOffset${r} = (b * uniforms.nq + clamped${r}) * width + column;
        ${
        each((i) =>
          `let q${r}_${i} = ${load4("q", `qOffset${r} + ${4 * i}`, `${4 * i}`)} * uniforms.scale;`
        )
      }
        ${each((i) => `var acc${r}_${i} = vec4<f32>(0.0);`)}
        // Running max: lowest f32 rather than -inf, so exp(m - m') never sees inf - inf.
        var m${r} = -3.402823e38;
        var l${r} = 0.0;`)
    }
        ${keyLoop}
        ${eachRow(writeRow)}
      }
    `;
  }
}

/**
 * softmax(q·kᵀ·scale + bias)·v per (batch, head) on the current backend,
 * which must be `webgpu`; same arguments and result as
 * {@link ../attention.ts multiHeadAttention} (no chunking needed: no score
 * matrix is stored).
 *
 * @example
 * ```ts
 * import { ready, tf } from "../../../lib/backend.ts";
 * import { attentionWebGPU } from "./attention_program.ts";
 * await ready("webgpu");
 * const x = tf.randomNormal([16, 64]) as tf.Tensor2D;
 * const y = attentionWebGPU(x, x, x, 1, 8, 1 / Math.sqrt(8)); // [16, 64]
 * ```
 */
export function attentionWebGPU(
  q: tf.Tensor2D,
  k: tf.Tensor2D,
  v: tf.Tensor2D,
  batch: number,
  heads: number,
  scale: number,
  scoreBias?: tf.Tensor2D,
  options: Pick<AttentionProgramOptions, "rowsPerThread" | "stageKeys"> = {},
): tf.Tensor2D {
  const nq = q.shape[0] / batch;
  const nk = k.shape[0] / batch;
  const d = q.shape[1] / heads;
  const program = new AttentionProgram({
    batch,
    heads,
    nq,
    nk,
    d,
    bias: scoreBias !== undefined,
    ...options,
    sharedBytes: (tf.backend() as unknown as WebGPUBackend).device.limits
      .maxComputeWorkgroupStorageSize,
  });
  const inputs = scoreBias ? [q, k, v, scoreBias] : [q, k, v];
  return runProgram(program, inputs, program.uniformData(scale)) as tf.Tensor2D;
}
