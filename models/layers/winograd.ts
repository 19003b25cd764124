/**
 * Winograd minimal filtering F(m×m, 3×3) for stride-1 3×3 convolutions on
 * the WASM backend (Lavin & Gray 2015). Each m×m output tile comes from an
 * (m+2)×(m+2) input tile: V = Bᵀ d B per tile and channel, then for each of
 * the (m+2)² tile positions one plain 2-D GEMM V_k [tiles, Cin] × U_k [Cin, Cout]
 * (XNNPACK's fast path; batched or transposed matmuls are 15-40× slower
 * there), then Y = Aᵀ M A. F(4,3) does 2.25 multiplies per output where a
 * direct 3×3 conv does 9; F(2,3) does 4.
 *
 * The input and output transforms are JavaScript loops over the WASM heap,
 * generated once per tile size from the transform matrices with every
 * coefficient unrolled; they touch each value once, in NHWC order. The
 * transformed weights U (kept as backend buffers, outside tfjs' tensor count, by
 * {@link WinogradWeights}) are made once, from the HWIO kernel in float64.
 *
 * @example
 * ```ts
 * import { ready, tf } from "../../lib/backend.ts";
 * import { WinogradWeights, winogradConv2d } from "./winograd.ts";
 * await ready("wasm");
 * const w = tf.randomNormal([3, 3, 8, 16]) as tf.Tensor4D;
 * const u = WinogradWeights.fromKernel(w, 4);
 * const y = winogradConv2d(tf.zeros([1, 16, 16, 8]), u, null); // [1, 16, 16, 16]
 * u.dispose();
 * ```
 *
 * @module
 */

import { tf } from "../../lib/tf.ts";
import { ArgumentError } from "../../lib/errors.ts";

/** Output tile size m of F(m×m, 3×3). */
export type WinogradTile = 2 | 4;

type Matrix = readonly (readonly number[])[];

/** Bᵀ (input), G (kernel) and Aᵀ (output) of F(m, 3), standard points 0, ±1, ±2, ∞. */
const MATRICES: Readonly<Record<WinogradTile, { BT: Matrix; G: Matrix; AT: Matrix }>> = {
  2: {
    BT: [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]],
    G: [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]],
    AT: [[1, 1, 1, 0], [0, 1, -1, -1]],
  },
  4: {
    BT: [
      [4, 0, -5, 0, 1, 0],
      [0, -4, -4, 1, 1, 0],
      [0, 4, -4, -1, 1, 0],
      [0, -2, -1, 2, 1, 0],
      [0, 2, -1, -2, 1, 0],
      [0, 4, 0, -5, 0, 1],
    ],
    G: [
      [1 / 4, 0, 0],
      [-1 / 6, -1 / 6, -1 / 6],
      [-1 / 6, 1 / 6, -1 / 6],
      [1 / 24, 1 / 12, 1 / 6],
      [1 / 24, -1 / 12, 1 / 6],
      [0, 0, 1],
    ],
    AT: [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]],
  },
};

/** The parts of tfjs-wasm's backend used here (public methods of `BackendWasm`). */
interface HeapBackend {
  dataIdMap: { has(dataId: object): boolean };
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array;
  makeOutput(shape: number[], dtype: "float32"): tf.TensorInfo;
  write(values: Float32Array, shape: number[], dtype: "float32"): object;
  disposeData(dataId: object, force?: boolean): boolean;
}

type InputTransform = (
  x: Float32Array,
  v: Float32Array[],
  n: number,
  h: number,
  w: number,
  c: number,
  tilesH: number,
  tilesW: number,
) => void;

type OutputTransform = (
  m: Float32Array[],
  y: Float32Array,
  bias: Float32Array | null,
  n: number,
  h: number,
  w: number,
  c: number,
  tilesH: number,
  tilesW: number,
) => void;

/** `Σ coefs[i]·names[i]` as a JavaScript expression, zero terms left out. */
function combination(coefs: readonly number[], names: readonly string[]): string {
  const terms = coefs.flatMap((c, i) =>
    c === 0 ? [] : [`${c < 0 ? "-" : "+"}${Math.abs(c) === 1 ? "" : `${Math.abs(c)}*`}${names[i]}`]
  );
  return terms.length === 0 ? "0" : terms.join("");
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

/**
 * V_k[t, c] = (Bᵀ d B)_k for every tile t of the padded NHWC input `x`
 * [n, h, w, c] (h = tilesH·m + 2): inner loop over channels, so reads and
 * writes are contiguous.
 */
function compileInputTransform(m: WinogradTile): InputTransform {
  const { BT } = MATRICES[m];
  const s = m + 2;
  const body = [
    "const rowStride = w * c; let t = 0;",
    ...range(s * s).map((k) => `const v${k} = v[${k}];`),
    "for (let b = 0; b < n; b++) for (let ty = 0; ty < tilesH; ty++) for (let tx = 0; tx < tilesW; tx++, t++) {",
    `const base = ((b * h + ty * ${m}) * w + tx * ${m}) * c; const o = t * c;`,
    "for (let ch = 0; ch < c; ch++) { const p = base + ch;",
    ...range(s).flatMap((i) =>
      range(s).map((j) => `const d${i}_${j} = x[p + ${i} * rowStride + ${j} * c];`)
    ),
    ...range(s).flatMap((a) =>
      range(s).map((j) =>
        `const r${a}_${j} = ${combination(BT[a]!, range(s).map((i) => `d${i}_${j}`))};`
      )
    ),
    ...range(s).flatMap((a) =>
      range(s).map((q) =>
        `v${a * s + q}[o + ch] = ${combination(BT[q]!, range(s).map((j) => `r${a}_${j}`))};`
      )
    ),
    "}}",
  ];
  return new Function(
    "x",
    "v",
    "n",
    "h",
    "w",
    "c",
    "tilesH",
    "tilesW",
    body.join("\n"),
  ) as InputTransform;
}

/** y[b, ty·m + i, tx·m + j, c] = (Aᵀ M A)_ij + bias[c], cropped to h × w. */
function compileOutputTransform(m: WinogradTile): OutputTransform {
  const { AT } = MATRICES[m];
  const s = m + 2;
  const store = (i: number, j: number): string =>
    `y[((b * h + y0 + ${i}) * w + x0 + ${j}) * c + ch] = bc + ${
      combination(AT[j]!, range(s).map((q) => `r${i}_${q}`))
    };`;
  const body = [
    "let t = 0;",
    ...range(s * s).map((k) => `const m${k} = m[${k}];`),
    "for (let b = 0; b < n; b++) for (let ty = 0; ty < tilesH; ty++) for (let tx = 0; tx < tilesW; tx++, t++) {",
    `const o = t * c; const y0 = ty * ${m}; const x0 = tx * ${m};`,
    `const full = y0 + ${m} <= h && x0 + ${m} <= w;`,
    "for (let ch = 0; ch < c; ch++) { const bc = bias === null ? 0 : bias[ch];",
    ...range(s * s).map((k) => `const a${k} = m${k}[o + ch];`),
    ...range(m).flatMap((i) =>
      range(s).map((j) =>
        `const r${i}_${j} = ${combination(AT[i]!, range(s).map((a) => `a${a * s + j}`))};`
      )
    ),
    "if (full) {",
    ...range(m).flatMap((i) => range(m).map((j) => store(i, j))),
    "} else {",
    ...range(m).flatMap((i) =>
      range(m).map((j) => `if (y0 + ${i} < h && x0 + ${j} < w) ${store(i, j)}`)
    ),
    "}}}",
  ];
  return new Function(
    "m",
    "y",
    "bias",
    "n",
    "h",
    "w",
    "c",
    "tilesH",
    "tilesW",
    body.join("\n"),
  ) as OutputTransform;
}

/** Bytes of every live {@link WinogradWeights}, for memory budgets. */
let liveBytes = 0;

/**
 * Bytes held by every live {@link WinogradWeights} (not counted by
 * `tf.memory()`; XNNPACK keeps a packed copy of the same size once used).
 *
 * @example
 * ```ts
 * import { winogradLiveBytes } from "./winograd.ts";
 * console.log(winogradLiveBytes()); // 0 before any Winograd conv
 * ```
 */
export function winogradLiveBytes(): number {
  return liveBytes;
}

const inputTransforms = new Map<WinogradTile, InputTransform>();
const outputTransforms = new Map<WinogradTile, OutputTransform>();

function heapBackend(): HeapBackend {
  if (tf.getBackend() !== "wasm") {
    throw new ArgumentError(`Winograd convolution needs the wasm backend, not ${tf.getBackend()}`);
  }
  return tf.backend() as unknown as HeapBackend;
}

/** Runs a registered wasm kernel on backend buffers (no engine tensors are made). */
function runWasmKernel(
  name: string,
  inputs: Record<string, tf.TensorInfo>,
  attrs: Record<string, unknown>,
): tf.TensorInfo {
  const kernel = tf.getKernel(name, "wasm");
  if (!kernel) throw new ArgumentError(`the wasm backend has no ${name} kernel`);
  return kernel.kernelFunc({
    inputs,
    attrs: attrs as tf.NamedAttrMap,
    backend: tf.backend(),
  }) as tf.TensorInfo;
}

/**
 * The transformed kernel U_k = (G g Gᵀ)_k of one conv, one [Cin, Cout]
 * buffer per tile position, held by the wasm backend (so they are not
 * engine tensors and do not show in `tf.memory().numTensors`); free them
 * with {@link WinogradWeights.dispose}.
 *
 * @example
 * ```ts
 * import { ready, tf } from "../../lib/backend.ts";
 * import { WinogradWeights } from "./winograd.ts";
 * await ready("wasm");
 * const u = WinogradWeights.fromKernel(tf.ones([3, 3, 4, 4]) as tf.Tensor4D, 2);
 * console.log(u.tile, u.inChannels, u.outChannels); // 2 4 4
 * u.dispose();
 * ```
 */
export class WinogradWeights {
  /** Output tile size m. */
  readonly tile: WinogradTile;
  /** Input channels. */
  readonly inChannels: number;
  /** Output channels. */
  readonly outChannels: number;
  readonly #backend: HeapBackend;
  #positions: tf.TensorInfo[];

  private constructor(
    tile: WinogradTile,
    inChannels: number,
    outChannels: number,
    backend: HeapBackend,
    positions: tf.TensorInfo[],
  ) {
    this.tile = tile;
    this.inChannels = inChannels;
    this.outChannels = outChannels;
    this.#backend = backend;
    this.#positions = positions;
  }

  /**
   * Transforms an HWIO [3, 3, Cin, Cout] kernel (read once from the
   * backend) for tile size `tile`, in float64.
   *
   * @example
   * ```ts
   * // const u = WinogradWeights.fromKernel(conv.weight.value as tf.Tensor4D, 4);
   * ```
   */
  static fromKernel(kernel: tf.Tensor4D, tile: WinogradTile): WinogradWeights {
    const [kh, kw, ci, co] = kernel.shape;
    if (kh !== 3 || kw !== 3) {
      throw new ArgumentError(`Winograd F(${tile},3) needs a 3×3 kernel, got ${kh}×${kw}`);
    }
    const backend = heapBackend();
    const g = kernel.dataSync() as Float32Array;
    const G = MATRICES[tile].G;
    const s = tile + 2;
    const out = range(s * s).map(() => new Float32Array(ci * co));
    const gg = new Float64Array(9);
    const half = new Float64Array(s * 3);
    for (let i = 0; i < ci; i++) {
      for (let o = 0; o < co; o++) {
        for (let k = 0; k < 9; k++) gg[k] = g[(k * ci + i) * co + o]!;
        // half = G·g (s×3), then U = half·Gᵀ (s×s)
        for (let a = 0; a < s; a++) {
          for (let q = 0; q < 3; q++) {
            half[a * 3 + q] = G[a]![0]! * gg[q]! + G[a]![1]! * gg[3 + q]! + G[a]![2]! * gg[6 + q]!;
          }
        }
        for (let a = 0; a < s; a++) {
          for (let b = 0; b < s; b++) {
            out[a * s + b]![i * co + o] = half[a * 3]! * G[b]![0]! + half[a * 3 + 1]! * G[b]![1]! +
              half[a * 3 + 2]! * G[b]![2]!;
          }
        }
      }
    }
    const positions = out.map((values) => {
      const dataId = backend.write(values, [1, ci, co], "float32");
      return { dataId, shape: [1, ci, co], dtype: "float32" as const };
    });
    liveBytes += 4 * s * s * ci * co;
    return new WinogradWeights(tile, ci, co, backend, positions);
  }

  /** Whether these buffers belong to the backend now active (false after a switch or dispose). */
  get usable(): boolean {
    return this.#positions.length > 0 && tf.backend() === (this.#backend as unknown);
  }

  /** The buffer of tile position k, as a [1, Cin, Cout] tensor info. */
  position(k: number): tf.TensorInfo {
    return this.#positions[k]!;
  }

  /** Frees every buffer; idempotent. */
  dispose(): void {
    if (this.#positions.length > 0) {
      liveBytes -= 4 * this.#positions.length * this.inChannels * this.outChannels;
    }
    for (const p of this.#positions) this.#backend.disposeData(p.dataId, true);
    this.#positions = [];
  }
}

/**
 * A stride-1, zero-padding-1 3×3 convolution (PyTorch `padding=1`) of NHWC
 * `x` with Winograd weights, plus an optional bias [Cout]. Runs as one
 * engine op: only the output is a tracked tensor. Needs the wasm backend.
 *
 * @example
 * ```ts
 * // const y = winogradConv2d(x, WinogradWeights.fromKernel(w, 4), bias);
 * ```
 */
export function winogradConv2d(
  x: tf.Tensor4D,
  weights: WinogradWeights,
  bias: tf.Tensor | null,
): tf.Tensor4D {
  const backend = heapBackend();
  const [n, h, w, c] = x.shape;
  if (c !== weights.inChannels || !weights.usable) {
    throw new ArgumentError(
      `Winograd weights for ${weights.inChannels} channels on another backend do not fit input [${x.shape}]`,
    );
  }
  const m = weights.tile;
  const s = m + 2;
  const co = weights.outChannels;
  const tilesH = Math.ceil(h / m);
  const tilesW = Math.ceil(w / m);
  const tiles = n * tilesH * tilesW;
  const padded = runWasmKernel("PadV2", { x }, {
    paddings: [[0, 0], [1, 1 + tilesH * m - h], [1, 1 + tilesW * m - w], [0, 0]],
    constantValue: 0,
  });
  const v = range(s * s).map(() => backend.makeOutput([1, tiles, c], "float32"));
  // Heap views are taken after every allocation: growing the heap detaches older views.
  const inputTransform = inputTransforms.get(m) ?? compileInputTransform(m);
  inputTransforms.set(m, inputTransform);
  inputTransform(
    backend.typedArrayFromHeap(padded),
    v.map((t) => backend.typedArrayFromHeap(t)),
    n,
    padded.shape[1]!,
    padded.shape[2]!,
    c,
    tilesH,
    tilesW,
  );
  backend.disposeData(padded.dataId);
  const products = v.map((vk, k) => {
    const product = runWasmKernel("BatchMatMul", { a: vk, b: weights.position(k) }, {
      transposeA: false,
      transposeB: false,
    });
    backend.disposeData(vk.dataId);
    return product;
  });
  const y = backend.makeOutput([n, h, w, co], "float32");
  const outputTransform = outputTransforms.get(m) ?? compileOutputTransform(m);
  outputTransforms.set(m, outputTransform);
  outputTransform(
    products.map((t) => backend.typedArrayFromHeap(t)),
    backend.typedArrayFromHeap(y),
    bias ? backend.typedArrayFromHeap(bias) : null,
    n,
    h,
    w,
    co,
    tilesH,
    tilesW,
  );
  for (const p of products) backend.disposeData(p.dataId);
  return tf.engine().makeTensorFromTensorInfo(y) as tf.Tensor4D;
}

/**
 * Whether `x` lives in the active wasm backend's heap (false for tensors
 * made on another backend, which the engine would move on its own).
 *
 * @example
 * ```ts
 * // if (onWasmHeap(x)) y = winogradConv2d(x, u, bias);
 * ```
 */
export function onWasmHeap(x: tf.Tensor): boolean {
  return tf.getBackend() === "wasm" &&
    (tf.backend() as unknown as HeapBackend).dataIdMap.has(x.dataId);
}
