/**
 * `nn.Conv2d` in NHWC: the PyTorch OIHW kernel is stored as HWIO (tfjs'
 * filter layout, transposed once at load) and the bias is fused into
 * `tf.fused.conv2d`. Padding is PyTorch's symmetric zero padding, or an
 * explicit `[top, bottom, left, right]` (diffusers' stride-2 downsampler
 * pads (0, 1, 0, 1) and needs no separate pad op this way). In a model too
 * large to hold its weights twice on WASM, the convolution runs as im2col +
 * one 2-D matmul whose packed weight is the only copy kept
 * (models/layers/weight_packing.ts).
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
import { isReleased, packAndRelease } from "./weight_packing.ts";
import { ConvKernel } from "./conv_kernel.ts";
import { winogradTileFor } from "./conv_algorithm.ts";
import { onWasmHeap, winogradConv2d } from "./winograd.ts";
// Side effect: tfjs-wasm slices without copying the whole input first.
import "./wasm_slice.ts";

/** Most bytes of im2col columns made at once (packed-only convs): 32 MiB. */
export const IM2COL_CHUNK_BYTES = 32 * 2 ** 20;

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
    if (isReleased(filter)) return this.#im2colConv(x, filter);
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
   * The same convolution as matmuls: the k² shifted (and strided) views of
   * the padded input side by side [N·H·W, k²·Cin] times the HWIO kernel as
   * [k²·Cin, Cout], whose rows are in the same (kh, kw, cin) order. Output
   * rows go in strips whose columns stay under {@link IM2COL_CHUNK_BYTES}.
   */
  #im2colConv(x: tf.Tensor4D, filter: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      const [k, , cin] = filter.shape;
      const s = this.#stride;
      const padded = this.#pad.flat().some((p) => p !== 0) ? tf.pad(x, this.#pad) : x;
      const [n, hp, wp] = padded.shape;
      const ho = Math.floor((hp - k) / s) + 1;
      const wo = Math.floor((wp - k) / s) + 1;
      const rowBytes = n * wo * k * k * cin * 4;
      const rowsPerStrip = Math.max(1, Math.floor(IM2COL_CHUNK_BYTES / rowBytes));
      const strips: tf.Tensor4D[] = [];
      for (let r = 0; r < ho; r += rowsPerStrip) {
        const rows = Math.min(rowsPerStrip, ho - r);
        strips.push(tf.tidy(() => {
          const input = rows === ho
            ? padded
            : tf.slice(padded, [0, r * s, 0, 0], [n, (rows - 1) * s + k, wp, cin]);
          return this.#im2colStrip(input, filter, rows, wo);
        }));
      }
      return strips.length === 1 ? strips[0]! : tf.concat(strips, 1);
    });
  }

  /** `rows` × `wo` output pixels from the padded input rows they read. */
  #im2colStrip(input: tf.Tensor4D, filter: tf.Tensor4D, rows: number, wo: number): tf.Tensor4D {
    const [k, , cin, cout] = filter.shape;
    const s = this.#stride;
    const n = input.shape[0];
    const views: tf.Tensor[] = [];
    for (let i = 0; i < k; i++) {
      for (let j = 0; j < k; j++) {
        views.push(
          s === 1 ? tf.slice(input, [0, i, j, 0], [n, rows, wo, cin]) : tf.stridedSlice(
            input,
            [0, i, j, 0],
            [n, i + s * (rows - 1) + 1, j + s * (wo - 1) + 1, cin],
            [1, s, s, 1],
          ),
        );
      }
    }
    const columns = views.length === 1 ? views[0]! : tf.concat(views, 3);
    const y = tf.fused.matMul({
      a: tf.reshape(columns, [n * rows * wo, k * k * cin]),
      b: this.#matrix(filter),
      bias: this.bias?.value,
    });
    return tf.reshape(y, [n, rows, wo, cout]);
  }

  /** The HWIO kernel as the [k²·Cin, Cout] matrix of the im2col matmul (same data). */
  #matrix(filter: tf.Tensor4D): tf.Tensor2D {
    const [k, , cin, cout] = filter.shape;
    return tf.reshape(filter, [k * k * cin, cout]);
  }

  /** Keeps only XNNPACK's packed copy of the kernel; later calls run as im2col matmuls. */
  override packWeights(): void {
    const filter = this.weight.value as tf.Tensor4D;
    if (isReleased(filter)) return;
    const matrix = this.#matrix(filter);
    packAndRelease(matrix, this.bias?.value);
    matrix.dispose();
  }
}
