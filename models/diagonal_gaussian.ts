/**
 * diffusers' `DiagonalGaussianDistribution`: the posterior an
 * {@link AutoencoderKL} encoder returns. The encoder's moments hold the mean
 * and the log-variance on channels (NHWC: the last axis, first half and
 * second half); the log-variance is clamped to [-30, 20] and
 * std = exp(logvar / 2).
 *
 * @example
 * ```ts
 * import { tf } from "../lib/tf.ts";
 * import { Generator } from "../lib/random.ts";
 * import { DiagonalGaussianDistribution } from "./diagonal_gaussian.ts";
 * const posterior = new DiagonalGaussianDistribution(tf.zeros([1, 4, 4, 8]) as tf.Tensor4D);
 * const z = posterior.sample(new Generator().manualSeed(0)); // [1, 4, 4, 4], = mean + std · torch.randn
 * posterior.dispose();
 * ```
 *
 * @module
 */

import { tf } from "../lib/tf.ts";
import { ArgumentError } from "../lib/errors.ts";
import { type Generator, randnTensor } from "../lib/random.ts";

/**
 * A Gaussian with diagonal covariance over NHWC latents. It owns its
 * tensors: call {@link DiagonalGaussianDistribution.dispose}.
 *
 * @example
 * ```ts
 * // const posterior = vae.encode(image);
 * // const latents = tf.mul(posterior.sample(generator), vae.config.scaling_factor);
 * // posterior.dispose();
 * ```
 */
export class DiagonalGaussianDistribution {
  /** The encoder's moments [B, H, W, 2·C] (a copy; the argument stays the caller's). */
  readonly moments: tf.Tensor4D;
  /** Mean [B, H, W, C]: the first C channels of the moments. */
  readonly mean: tf.Tensor4D;
  /** Log-variance [B, H, W, C]: the last C channels, clamped to [-30, 20]. */
  readonly logvar: tf.Tensor4D;
  /** Standard deviation exp(logvar / 2) [B, H, W, C]. */
  readonly std: tf.Tensor4D;

  /** Splits `moments` [B, H, W, 2·C] into mean and log-variance; `moments` is not consumed. */
  constructor(moments: tf.Tensor4D) {
    const c = moments.shape[3];
    if (moments.rank !== 4 || c % 2 !== 0) {
      throw new ArgumentError(
        `DiagonalGaussianDistribution: moments must be NHWC with an even channel count, got [${moments.shape}]`,
      );
    }
    [this.moments, this.mean, this.logvar, this.std] = tf.tidy(() => {
      const [mean, raw] = tf.split(moments, 2, 3) as [tf.Tensor4D, tf.Tensor4D];
      const logvar = tf.clipByValue(raw, -30, 20);
      return [tf.clone(moments), mean, logvar, tf.exp(tf.mul(logvar, 0.5)) as tf.Tensor4D];
    });
  }

  /**
   * mean + std · ε with ε drawn like diffusers' `randn_tensor` (PyTorch's
   * CPU generator in NCHW order, transposed to NHWC), so a seed gives
   * diffusers' sample.
   *
   * @example
   * ```ts
   * // const z = posterior.sample(new Generator().manualSeed(0));
   * ```
   */
  sample(generator?: Generator): tf.Tensor4D {
    return tf.tidy(() => {
      const noise = randnTensor(this.mean.shape, { generator, layout: "NHWC" });
      return tf.add(this.mean, tf.mul(this.std, noise)) as tf.Tensor4D;
    });
  }

  /**
   * The most likely latent: a copy of the mean.
   *
   * @example
   * ```ts
   * // const z = posterior.mode();
   * ```
   */
  mode(): tf.Tensor4D {
    return tf.clone(this.mean);
  }

  /**
   * Frees the tensors.
   *
   * @example
   * ```ts
   * // posterior.dispose();
   * ```
   */
  dispose(): void {
    tf.dispose([this.moments, this.mean, this.logvar, this.std]);
  }
}
