/**
 * `LDMPipeline`: unconditional latent diffusion (Rombach et al. 2022) with
 * a VQ decoder, as CompVis/ldm-celebahq-256. As diffusers does: latents of
 * the UNet's `sample_size` drawn in PyTorch order and scaled by
 * `init_noise_sigma`, the input scaled each step, `eta` passed to the
 * scheduler, and the final latents divided by the VQ model's
 * `scaling_factor` before a (quantising) decode.
 *
 * @example
 * ```ts
 * import { DiffusionPipeline } from "./diffusion_pipeline.ts";
 * import type { LDMPipeline } from "./latent_diffusion_uncond.ts";
 * const pipe = await DiffusionPipeline.fromPretrained("CompVis/ldm-celebahq-256") as LDMPipeline;
 * const { images } = await pipe.call({ numInferenceSteps: 200 });
 * ```
 *
 * @module
 */

import { tf } from "../tf.ts";
import { type Generator, randnTensor } from "../random.ts";
import { ArgumentError } from "../errors.ts";
import type { Scheduler } from "../../schedulers/scheduler.ts";
import {
  type CallOptionsBase,
  checkSteps,
  denoise,
  type OutputType,
  type Pipeline,
  type PipelineOutput,
  postprocess,
  registerPipeline,
} from "./pipeline.ts";
import type { LatentDecoder } from "./latent_models.ts";
import type { UnconditionalUNet } from "./unconditional.ts";

/** Arguments of {@link LDMPipeline.call}. */
export interface LDMCallOptions<T extends OutputType = "image"> extends CallOptionsBase {
  /** Number of images (default 1). */
  batchSize?: number;
  /** Denoising steps (default 50). */
  numInferenceSteps?: number;
  /** DDIM eta (default 0). */
  eta?: number;
  /** Source of all random draws, as a seeded torch generator. */
  generator?: Generator;
  /** `"image"` (default) or `"tensor"`. */
  outputType?: T;
}

/** diffusers' `LDMPipeline`. */
export class LDMPipeline implements Pipeline {
  /** The diffusers `_class_name`. */
  static readonly className = "LDMPipeline";
  /** The components it reads from `model_index.json`. */
  static readonly componentNames: readonly string[] = ["vqvae", "unet", "scheduler"];
  /** The diffusers `_class_name`. */
  readonly className: string = LDMPipeline.className;
  /** The VQ decoder. */
  vqvae: LatentDecoder;
  /** The unconditional UNet over latents. */
  unet: UnconditionalUNet;
  /** The scheduler. */
  scheduler: Scheduler;

  /** Holds the components. */
  constructor(vqvae: LatentDecoder, unet: UnconditionalUNet, scheduler: Scheduler) {
    this.vqvae = vqvae;
    this.unet = unet;
    this.scheduler = scheduler;
  }

  /**
   * Builds the pipeline from loaded components.
   *
   * @example
   * ```ts
   * import { LDMPipeline } from "./latent_diffusion_uncond.ts";
   * // const pipe = LDMPipeline.fromComponents({ vqvae, unet, scheduler });
   * ```
   */
  static fromComponents(components: Record<string, unknown>): LDMPipeline {
    return new LDMPipeline(
      components.vqvae as LatentDecoder,
      components.unet as UnconditionalUNet,
      components.scheduler as Scheduler,
    );
  }

  /**
   * Generates images.
   *
   * @example
   * ```ts
   * import type { LDMPipeline } from "./latent_diffusion_uncond.ts";
   * declare const pipe: LDMPipeline;
   * const { images } = await pipe.call({ batchSize: 2, numInferenceSteps: 50 });
   * ```
   */
  async call<T extends OutputType = "image">(
    options: LDMCallOptions<T> = {},
  ): Promise<PipelineOutput<T>> {
    const { batchSize = 1, numInferenceSteps = 50, eta = 0, generator } = options;
    checkSteps(numInferenceSteps);
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      throw new ArgumentError(`batchSize must be a positive integer, got ${batchSize}`);
    }
    const size = this.unet.config.sample_size;
    if (typeof size !== "number") {
      throw new ArgumentError("the unet config needs an integer sample_size");
    }
    const noise = randnTensor([batchSize, size, size, this.unet.config.in_channels], {
      generator,
      layout: "NHWC",
    });
    const latents = tf.tidy(() => tf.mul(noise, this.scheduler.initNoiseSigma));
    noise.dispose();
    this.scheduler.setTimesteps(numInferenceSteps);
    const final = await denoise(
      this.scheduler,
      (x, t) => this.unet.forward(x as tf.Tensor4D, t),
      latents,
      { eta, generator },
      options,
    );
    const image = tf.tidy(() =>
      this.vqvae.decode(tf.div(final, this.vqvae.config.scaling_factor) as tf.Tensor4D)
    );
    final.dispose();
    return await postprocess(image, options.outputType ?? ("image" as T));
  }

  /** Frees every component's weights and the scheduler's state. */
  dispose(): void {
    this.vqvae.dispose();
    this.unet.dispose();
    this.scheduler.dispose();
  }
}

registerPipeline(LDMPipeline);
