/**
 * `nn.Conv2d` in NHWC: the PyTorch OIHW kernel is stored as HWIO (tfjs'
 * filter layout, transposed once at load) and the bias is fused into
 * `tf.fused.conv2d`. Padding is PyTorch's symmetric zero padding, or an
 * explicit `[top, bottom, left, right]` (diffusers' stride-2 downsampler
 * pads (0, 1, 0, 1) and needs no separate pad op this way). In a model too
 * large to hold its weights twice on WASM, the convolution runs as one 2-D
 * matmul per kernel tap, whose packed matrices are the only copy of the
 * kernel kept (models/layers/weight_packing.ts).
 *
 * @example
 * ```ts
 * import { tf } from "../../lib/tf.ts";
 * import { Conv2d } from "./conv2d.ts";
 * const conv = new Conv2d(3, 8, 3, { padding: 1 }).initialize(0);
 * const y = conv.forward(tf.zeros([1, 16, 16, 3])); // [1, 16, 16, 8]
 * ```
 *
 * @module
 */

import { tf } from "../../lib/tf.ts";
import { Module, Parameter } from "./module.ts";
import { kaimingUniform } from "./init.ts";
import { isReleased, packAndRelease, releaseWeight } from "./weight_packing.ts";
import { ConvKernel } from "./conv_kernel.ts";
import { winogradTileFor } from "./conv_algorithm.ts";
import { onWasmHeap, winogradConv2d } from "./winograd.ts";
// Side effect: tfjs-wasm slices without copying the whole input first.
import "./wasm_slice.ts";

/** Most bytes of one shifted input view made at once (packed-only convs): 32 MiB. */
export const TAP_VIEW_BYTES = 32 * 2 ** 20;

/** Options of {@link Conv2d}. */
export interface Conv2dOptions {
  /** Stride in both directions (default 1). */
  stride?: number;
  /** Zero padding: symmetric, or `[top, bottom, left, right]` (default 0). */
  padding?: number | readonly [number, number, number, number];
  /** Whether there is a bias (default true). */
  bias?: boolean;
}

/**
 * A 2-D convolution with a square kernel; keys `weight` [O, I, k, k] and `bias` [O].
 *
 * @example
 * ```ts
 * import { Conv2d } from "./conv2d.ts";
 * const down = new Conv2d(64, 64, 3, { stride: 2, padding: [0, 1, 0, 1] });
 * ```
 */
export class Conv2d extends Module {
  /** Kernel, PyTorch [out, in, k, k], stored HWIO (with its Winograd transform when used). */
  readonly weight: ConvKernel;
  /** Bias [out], or null. */
  readonly bias: Parameter | null;
  readonly #stride: number;
  readonly #pad: [[0, 0], [number, number], [number, number], [0, 0]];
  /** 3×3, stride 1, padding 1: the shape Winograd convolves (see conv_algorithm.ts). */
  readonly #winogradEligible: boolean;
  /** The kernel's taps as packed [Cin, Cout] matrices, once {@link packWeights} has run. */
  #taps: tf.Tensor2D[] = [];

  /** Same arguments as `nn.Conv2d(in, out, kernel_size, stride, padding, bias)`. */
  constructor(
    inChannels: number,
    outChannels: number,
    kernelSize: number,
    options: Conv2dOptions = {},
  ) {
    super();
    const fanIn = inChannels * kernelSize * kernelSize;
    this.weight = new ConvKernel(
      [outChannels, inChannels, kernelSize, kernelSize],
      "conv",
      kaimingUniform(fanIn),
    );
    this.bias = options.bias === false
      ? null
      : new Parameter([outChannels], "none", kaimingUniform(fanIn));
    this.#stride = options.stride ?? 1;
    const p = options.padding ?? 0;
    const [top, bottom, left, right] = typeof p === "number" ? [p, p, p, p] : p;
    this.#pad = [[0, 0], [top, bottom], [left, right], [0, 0]];
    this.#winogradEligible = kernelSize === 3 && this.#stride === 1 &&
      [top, bottom, left, right].every((v) => v === 1);
  }

  /** NHWC in, NHWC out. */
  forward(x: tf.Tensor4D): tf.Tensor4D {
    const filter = this.weight.value as tf.Tensor4D;
    if (isReleased(filter)) return this.#tapConv(x, this.#taps);
    if (this.#winogradEligible && onWasmHeap(x)) {
      const [, height, width, inChannels] = x.shape;
      const outChannels = this.weight.torchShape[0]!;
      const shape = { height, width, inChannels, outChannels };
      const tile = winogradTileFor(shape, this.weight.hasWinograd(4) || this.weight.hasWinograd(2));
      if (tile !== null) {
        return winogradConv2d(x, this.weight.winograd(tile), this.bias?.value ?? null);
      }
    }
    return tf.fused.conv2d({
      x,
      filter,
      bias: this.bias?.value,
      strides: this.#stride,
      pad: this.#pad,
    });
  }

  /**
   * The same convolution as 2-D matmuls, one per kernel tap: the (i, j)
   * shifted (and strided) view of the padded input [N·H·W, Cin] times that
   * tap's packed [Cin, Cout] slice of the kernel, summed (the bias rides on
   * the first). Per tap rather than one im2col matmul with K = k²·Cin:
   * XNNPACK's GEMM does not block K, and at SD's 1280 channels the shorter
   * K runs 1.3× faster here, with no k²-wide column copy. Output rows go in
   * strips whose views stay under {@link TAP_VIEW_BYTES}.
   */
  #tapConv(x: tf.Tensor4D, taps: readonly tf.Tensor2D[]): tf.Tensor4D {
    return tf.tidy(() => {
      const [k, , cin] = this.weight.shape as [number, number, number, number];
      const s = this.#stride;
      const padded = this.#pad.flat().some((p) => p !== 0) ? tf.pad(x, this.#pad) : x;
      const [n, hp, wp] = padded.shape;
      const ho = Math.floor((hp - k) / s) + 1;
      const wo = Math.floor((wp - k) / s) + 1;
      const rowsPerStrip = Math.max(1, Math.floor(TAP_VIEW_BYTES / (n * wo * cin * 4)));
      const strips: tf.Tensor4D[] = [];
      for (let r = 0; r < ho; r += rowsPerStrip) {
        const rows = Math.min(rowsPerStrip, ho - r);
        strips.push(tf.tidy(() => {
          const input = rows === ho
            ? padded
            : tf.slice(padded, [0, r * s, 0, 0], [n, (rows - 1) * s + k, wp, cin]);
          return this.#tapStrip(input, taps, rows, wo);
        }));
      }
      return strips.length === 1 ? strips[0]! : tf.concat(strips, 1);
    });
  }

  /** `rows` × `wo` output pixels from the padded input rows they read. */
  #tapStrip(
    input: tf.Tensor4D,
    taps: readonly tf.Tensor2D[],
    rows: number,
    wo: number,
  ): tf.Tensor4D {
    const [k, , cin, cout] = this.weight.shape as [number, number, number, number];
    const s = this.#stride;
    const n = input.shape[0];
    // Strided views as contiguous blocks seen as [rows, s, wo, s] with offset 0 taken on both s
    // axes (the slice kernel copies runs of Cin; tfjs-wasm's stridedSlice reads the whole
    // input per call). The s extra zero rows and columns keep every block inside the input.
    const source = s === 1 ? input : tf.pad(input, [[0, 0], [0, s], [0, s], [0, 0]]);
    let y: tf.Tensor2D | null = null;
    for (let i = 0; i < k; i++) {
      for (let j = 0; j < k; j++) {
        // One tap at a time: its view and product are freed before the next is made.
        const sum: tf.Tensor2D = tf.tidy(() => {
          const view = k === 1 && s === 1
            ? input
            : s === 1
            ? tf.slice(input, [0, i, j, 0], [n, rows, wo, cin])
            : tf.slice(
              tf.reshape(tf.slice(source, [0, i, j, 0], [n, s * rows, s * wo, cin]), [
                n,
                rows,
                s,
                wo,
                s,
                cin,
              ]),
              [0, 0, 0, 0, 0, 0],
              [n, rows, 1, wo, 1, cin],
            );
          const a = tf.reshape(view, [n * rows * wo, cin]) as tf.Tensor2D;
          const tap = taps[i * k + j]!;
          // The first tap carries the bias: its packed operator was made with it.
          return y === null
            ? tf.fused.matMul({ a, b: tap, bias: this.bias?.value }) as tf.Tensor2D
            : tf.add(y, tf.matMul(a, tap)) as tf.Tensor2D;
        });
        y?.dispose();
        y = sum;
      }
    }
    return tf.reshape(y!, [n, rows, wo, cout]);
  }

  /**
   * Keeps only XNNPACK's packed copies of the kernel, one [Cin, Cout] matrix
   * per tap (the first with the bias); later calls run as per-tap matmuls.
   */
  override packWeights(): void {
    const filter = this.weight.value as tf.Tensor4D;
    if (isReleased(filter)) return;
    const [k, , cin, cout] = filter.shape;
    const taps: tf.Tensor2D[] = [];
    for (let i = 0; i < k; i++) {
      for (let j = 0; j < k; j++) {
        const tap = tf.tidy(() =>
          tf.reshape(tf.slice(filter, [i, j, 0, 0], [1, 1, cin, cout]), [cin, cout])
        ) as tf.Tensor2D;
        packAndRelease(tap, taps.length === 0 ? this.bias?.value : undefined);
        taps.push(tap);
      }
    }
    releaseWeight(filter);
    this.#taps = taps;
  }

  /** Frees the weights, and the per-tap packed kernels if any. */
  override dispose(): void {
    tf.dispose(this.#taps);
    this.#taps = [];
    super.dispose();
  }
}
