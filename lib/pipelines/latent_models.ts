/**
 * The parts of the networks that latent pipelines use, as structural
 * interfaces: any model with these members fits (the concrete classes live
 * in `models/`; thin adapters in `components.ts` bridge naming).
 *
 * @example
 * ```ts
 * import type { LatentDecoder } from "./latent_models.ts";
 * function scaleFactor(vae: LatentDecoder): number {
 *   return 2 ** (vae.config.block_out_channels.length - 1);
 * }
 * ```
 *
 * @module
 */

import type { tf } from "../tf.ts";
import type { Generator } from "../random.ts";
import type { ModelOutput } from "./pipeline.ts";

/** A text-conditioned denoiser (UNet2DConditionModel). */
export interface ConditionalUNet {
  /** The model config (diffusers keys). */
  readonly config: {
    readonly in_channels: number;
    readonly sample_size: number | readonly number[] | null;
  };
  /**
   * The prediction for an NHWC sample at a timestep, given text embeddings `[B, T, D]`; a Promise
   * of it when the model runs in Workers (lib/workers/worker_unet.ts).
   */
  forward(
    sample: tf.Tensor4D,
    timestep: number,
    encoderHiddenStates: tf.Tensor3D,
  ): ModelOutput<tf.Tensor4D>;
  /** Frees the weights. */
  dispose(): void;
}

/** A latent decoder (AutoencoderKL or VQModel). */
export interface LatentDecoder {
  /** The model config (diffusers keys). */
  readonly config: {
    readonly scaling_factor: number;
    readonly block_out_channels: readonly number[];
  };
  /** Latents `[B, h, w, c]` to images `[B, H, W, 3]` in about [-1, 1]. */
  decode(latents: tf.Tensor4D): tf.Tensor4D;
  /** Frees the weights. */
  dispose(): void;
}

/** A latent encoder-decoder whose encoding is a distribution to sample (AutoencoderKL). */
export interface LatentAutoencoder extends LatentDecoder {
  /** Images `[B, H, W, 3]` in [-1, 1] to a latent sample, drawn with `generator` (PyTorch order). */
  encodeSample(images: tf.Tensor4D, generator?: Generator): tf.Tensor4D;
}

/**
 * `2^(levels - 1)`: how much smaller the latents are than the image.
 *
 * @example
 * ```ts
 * import { vaeScaleFactor } from "./latent_models.ts";
 * console.log(vaeScaleFactor({ config: { scaling_factor: 0.18215, block_out_channels: [128, 256, 512, 512] } }));
 * // 8
 * ```
 */
export function vaeScaleFactor(
  vae: { readonly config: { readonly block_out_channels: readonly number[] } },
): number {
  return 2 ** (vae.config.block_out_channels.length - 1);
}
