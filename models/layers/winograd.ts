/**
 * Winograd minimal filtering F(m×m, 3×3) for stride-1 3×3 convolutions on
 * the WASM backend (Lavin & Gray 2015). Each m×m output tile comes from an
 * (m+2)×(m+2) input tile: V = Bᵀ d B per tile and channel, then for each of
 * the (m+2)² tile positions one plain 2-D GEMM V_k [tiles, Cin] × U_k [Cin, Cout]
 * (XNNPACK's fast path; batched or transposed matmuls are 15-40× slower
 * there), then Y = Aᵀ M A. F(4,3) does 2.25 multiplies per output where a
 * direct 3×3 conv does 9; F(2,3) does 4.
 *
 * The input and output transforms are WebAssembly SIMD loops
 * (winograd_simd/) running on tfjs-wasm's own heap, four channels at a time;
 * the input one reads the unpadded input and supplies the zero padding
 * itself. Where the channel count is not a multiple of 4, WebAssembly SIMD
 * is missing or {@link setWinogradSimd} turned it off, JavaScript loops over
 * the heap do the same (winograd_js.ts) after a PadV2. The transformed
 * weights U (kept as backend buffers, outside tfjs' tensor count, by
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
import {
  jsInputTransform,
  jsOutputTransform,
  range,
  WINOGRAD_MATRICES,
  type WinogradTile,
} from "./winograd_js.ts";
import {
  backendMemory,
  SIMD_SCRATCH_BYTES,
  SIMD_TABLE_BYTES,
  type SimdTransforms,
  simdTransformsFor,
} from "./winograd_simd/simd_transforms.ts";

export type { WinogradTile };

/** The parts of tfjs-wasm's backend used here (public methods of `BackendWasm`). */
interface HeapBackend {
  dataIdMap: {
    has(dataId: object): boolean;
    get(dataId: object): { memoryOffset: number } | undefined;
  };
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array;
  makeOutput(shape: number[], dtype: "float32"): tf.TensorInfo;
  write(values: Float32Array, shape: number[], dtype: "float32"): object;
  disposeData(dataId: object, force?: boolean): boolean;
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
    const G = WINOGRAD_MATRICES[tile].G;
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

let simdEnabled = true;
const counts = { simd: 0, js: 0 };

/**
 * Turns the WebAssembly SIMD transforms on (the default) or off (then the
 * JavaScript ones run everywhere, as for benchmarks and tests); returns the
 * previous setting.
 *
 * @example
 * ```ts
 * import { setWinogradSimd } from "./winograd.ts";
 * const previous = setWinogradSimd(false);
 * // ... convolutions with the JavaScript transforms ...
 * setWinogradSimd(previous);
 * ```
 */
export function setWinogradSimd(enabled: boolean): boolean {
  const previous = simdEnabled;
  simdEnabled = enabled;
  return previous;
}

/**
 * How many Winograd input and output transforms ran so far with SIMD and
 * with JavaScript (a conv counts one of each kind per transform).
 *
 * @example
 * ```ts
 * import { winogradTransformCounts } from "./winograd.ts";
 * const { simd, js } = winogradTransformCounts();
 * console.log(simd + js); // 0 before any Winograd conv
 * ```
 */
export function winogradTransformCounts(): { simd: number; js: number } {
  return { ...counts };
}

function simdFor(
  backend: HeapBackend,
): { simd: SimdTransforms; memory: WebAssembly.Memory } | null {
  if (!simdEnabled) return null;
  const memory = backendMemory(backend);
  const simd = memory && simdTransformsFor(memory);
  return memory && simd ? { simd, memory } : null;
}

/** Heap byte address of a backend buffer. */
function address(backend: HeapBackend, dataId: object): number {
  const data = backend.dataIdMap.get(dataId);
  if (!data) throw new ArgumentError("Winograd convolution: a tensor is not on the wasm heap");
  return data.memoryOffset;
}

/** Writes the addresses of `buffers` into the table at the start of `work`. */
function writeTable(
  backend: HeapBackend,
  memory: WebAssembly.Memory,
  work: tf.TensorInfo,
  buffers: readonly tf.TensorInfo[],
): number {
  const table = address(backend, work.dataId);
  // A view made now: growing the heap detaches older ones.
  new Uint32Array(memory.buffer, table, buffers.length).set(
    buffers.map((t) => address(backend, t.dataId)),
  );
  return table;
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
  const fast = simdFor(backend);
  const simdIn = fast !== null && c % 4 === 0;
  const simdOut = fast !== null && co % 4 === 0;
  const work = fast && (simdIn || simdOut)
    ? backend.makeOutput([SIMD_SCRATCH_BYTES / 4], "float32")
    : null;
  const v = range(s * s).map(() => backend.makeOutput([1, tiles, c], "float32"));
  if (simdIn) {
    const { simd, memory } = fast!;
    const table = writeTable(backend, memory, work!, v);
    const inputRow = m === 4 ? simd.inputRow4 : simd.inputRow2;
    const xAddress = address(backend, x.dataId);
    for (let b = 0; b < n; b++) {
      for (let ty = 0; ty < tilesH; ty++) {
        const t0 = (b * tilesH + ty) * tilesW;
        inputRow(xAddress, h, w, c, tilesW, b, ty, t0, table, table + SIMD_TABLE_BYTES);
      }
    }
    counts.simd++;
  } else {
    const padded = runWasmKernel("PadV2", { x }, {
      paddings: [[0, 0], [1, 1 + tilesH * m - h], [1, 1 + tilesW * m - w], [0, 0]],
      constantValue: 0,
    });
    // Heap views are taken after every allocation: growing the heap detaches older views.
    jsInputTransform(m)(
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
    counts.js++;
  }
  const products = v.map((vk, k) => {
    const product = runWasmKernel("BatchMatMul", { a: vk, b: weights.position(k) }, {
      transposeA: false,
      transposeB: false,
    });
    backend.disposeData(vk.dataId);
    return product;
  });
  const y = backend.makeOutput([n, h, w, co], "float32");
  if (simdOut) {
    const { simd, memory } = fast!;
    const table = writeTable(backend, memory, work!, products);
    const outputRow = m === 4 ? simd.outputRow4 : simd.outputRow2;
    const yAddress = address(backend, y.dataId);
    const biasAddress = bias ? address(backend, bias.dataId) : 0;
    for (let b = 0; b < n; b++) {
      for (let ty = 0; ty < tilesH; ty++) {
        const t0 = (b * tilesH + ty) * tilesW;
        outputRow(
          yAddress,
          biasAddress,
          h,
          w,
          co,
          tilesW,
          b,
          ty,
          t0,
          table,
          table + SIMD_TABLE_BYTES,
        );
      }
    }
    counts.simd++;
  } else {
    jsOutputTransform(m)(
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
    counts.js++;
  }
  for (const p of products) backend.disposeData(p.dataId);
  if (work) backend.disposeData(work.dataId);
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
