/**
 * diffusers' `Upsample2D`: nearest-neighbour 2× (PyTorch's
 * `F.interpolate(mode="nearest")`: output pixel i reads input ⌊i/2⌋), then
 * an optional 3×3 conv.
 *
 * @example
 * ```ts
 * import { tf } from "../../lib/tf.ts";
 * import { Upsample2D } from "./upsampling.ts";
 * const up = new Upsample2D(16, { useConv: true }).initialize(0);
 * const y = up.forward(tf.zeros([1, 4, 4, 16])); // [1, 8, 8, 16]
 * ```
 *
 * @module
 */

import { tf } from "../../lib/tf.ts";
import { Module } from "./module.ts";
import { Conv2d } from "./conv2d.ts";

/** Options of {@link Upsample2D}. */
export interface Upsample2DOptions {
  /** Convolve after the resize (default false). */
  useConv?: boolean;
  /** Output channels of the conv (default: `channels`). */
  outChannels?: number;
}

/**
 * Doubles H and W; key `conv.*` when it convolves.
 *
 * @example
 * ```ts
 * import { Upsample2D } from "./upsampling.ts";
 * const up = new Upsample2D(128, { useConv: true });
 * ```
 */
export class Upsample2D extends Module {
  /** The 3×3 conv after the resize, or null. */
  readonly conv: Conv2d | null;

  /** Same arguments as diffusers' `Upsample2D(channels, use_conv, out_channels)`. */
  constructor(channels: number, options: Upsample2DOptions = {}) {
    super();
    this.conv = options.useConv
      ? new Conv2d(channels, options.outChannels ?? channels, 3, { padding: 1 })
      : null;
  }

  /** NHWC → NHWC at twice the resolution. */
  forward(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      const [, h, w] = x.shape;
      const up = tf.image.resizeNearestNeighbor(x, [h * 2, w * 2]);
      return this.conv ? this.conv.forward(up) : up;
    });
  }
}
