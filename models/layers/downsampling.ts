/**
 * diffusers' `Downsample2D`: a stride-2 3×3 conv, or a 2×2 average pool
 * when `useConv` is false. With `padding` 0 diffusers pads (0, 1, 0, 1)
 * (right and bottom only) before the conv; here that padding is passed to
 * the conv itself.
 *
 * @example
 * ```ts
 * import { tf } from "../../lib/tf.ts";
 * import { Downsample2D } from "./downsampling.ts";
 * const down = new Downsample2D(16, { useConv: true, padding: 0 }).initialize(0);
 * const y = down.forward(tf.zeros([1, 8, 8, 16])); // [1, 4, 4, 16]
 * ```
 *
 * @module
 */

import { tf } from "../../lib/tf.ts";
import { Module } from "./module.ts";
import { Conv2d } from "./conv2d.ts";

/** Options of {@link Downsample2D}. */
export interface Downsample2DOptions {
  /** Convolve (stride 2) instead of average-pooling (default false). */
  useConv?: boolean;
  /** Output channels of the conv (default: `channels`). */
  outChannels?: number;
  /** Conv padding; 0 means diffusers' asymmetric (0, 1, 0, 1) (default 1). */
  padding?: number;
}

/**
 * Halves H and W; key `conv.*` when it convolves (diffusers' `name="op"`
 * layout, the one every UNet block uses).
 *
 * @example
 * ```ts
 * import { Downsample2D } from "./downsampling.ts";
 * const pool = new Downsample2D(64); // average pool, no weights
 * ```
 */
export class Downsample2D extends Module {
  /** The stride-2 conv, or null for average pooling. */
  readonly conv: Conv2d | null;

  /** Same arguments as diffusers' `Downsample2D(channels, use_conv, out_channels, padding)`. */
  constructor(channels: number, options: Downsample2DOptions = {}) {
    super();
    const padding = options.padding ?? 1;
    this.conv = options.useConv
      ? new Conv2d(channels, options.outChannels ?? channels, 3, {
        stride: 2,
        padding: padding === 0 ? [0, 1, 0, 1] : padding,
      })
      : null;
  }

  /** NHWC → NHWC at half resolution. */
  forward(x: tf.Tensor4D): tf.Tensor4D {
    return this.conv ? this.conv.forward(x) : tf.avgPool(x, 2, 2, "valid");
  }
}
