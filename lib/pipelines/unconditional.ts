/**
 * Unconditional image pipelines (a UNet2DModel and a scheduler): the loop
 * of diffusers' `DDPMPipeline`, `DDIMPipeline` and `PNDMPipeline`, which
 * differ only in their default step count, the scheduler they insist on and
 * the `step()` arguments they pass.
 *
 * @example
 * ```ts
 * import { DiffusionPipeline } from "./diffusion_pipeline.ts";
 * const pipe = await DiffusionPipeline.fromPretrained("google/ddpm-cat-256");
 * ```
 *
 * @module
 */

import { tf } from "../tf.ts";
import { type Generator, randnTensor } from "../random.ts";
import { ArgumentError } from "../errors.ts";
import type { Scheduler, StepOptions } from "../../schedulers/scheduler.ts";
import {
  type CallOptionsBase,
  checkSteps,
  denoise,
  type ModelOutput,
  type OutputType,
  type Pipeline,
  type PipelineOutput,
  postprocess,
} from "./pipeline.ts";

/** The part of a UNet2DModel an unconditional pipeline uses. */
export interface UnconditionalUNet {
  /** The model config (diffusers keys). */
  readonly config: {
    readonly in_channels: number;
    readonly sample_size: number | readonly number[] | null;
  };
  /** Predicts noise (or x0, v) for an NHWC sample at a timestep; a Promise of it from Workers. */
  forward(sample: tf.Tensor4D, timestep: number): ModelOutput<tf.Tensor4D>;
  /** Frees the weights. */
  dispose(): void;
}

/** Arguments of an unconditional pipeline call (diffusers' names, camelCase). */
export interface UnconditionalCallOptions<T extends OutputType = "image"> extends CallOptionsBase {
  /** Number of images (default 1). */
  batchSize?: number;
  /** Denoising steps (default: 1000 for DDPM, 50 for DDIM and PNDM). */
  numInferenceSteps?: number;
  /** Source of the initial noise and of any per-step noise, as a seeded torch generator. */
  generator?: Generator;
  /** Initial noise to start from instead of drawing it (NHWC, `[B, H, W, C]`). */
  latents?: tf.Tensor4D;
  /** `"image"` (default) or `"tensor"`. */
  outputType?: T;
}

/** The shared body of DDPM/DDIM/PNDM pipelines. */
export abstract class UnconditionalPipeline implements Pipeline {
  /** The component names these pipelines read from `model_index.json`. */
  static readonly componentNames: readonly string[] = ["unet", "scheduler"];
  /** The denoising network. */
  unet: UnconditionalUNet;
  /** The scheduler; assign another (`XScheduler.fromConfig(pipe.scheduler.config)`) to swap. */
  scheduler: Scheduler;
  /** The diffusers `_class_name`. */
  abstract readonly className: string;
  /** Steps when the call gives none. */
  protected abstract readonly defaultSteps: number;

  /** Holds the components. */
  constructor(unet: UnconditionalUNet, scheduler: Scheduler) {
    this.unet = unet;
    this.scheduler = scheduler;
  }

  /** The extra `step()` arguments of this pipeline. */
  protected stepOptions(_options: UnconditionalCallOptions<OutputType>): StepOptions {
    return {};
  }

  /**
   * Generates images: draws `[B, C, H, W]` noise as PyTorch would (laid out
   * NHWC), denoises it over the scheduler's timesteps, and maps `[-1, 1]`
   * to images.
   *
   * @example
   * ```ts
   * import { Generator } from "../random.ts";
   * import { DiffusionPipeline } from "./diffusion_pipeline.ts";
   * import type { DDIMPipeline } from "./ddim.ts";
   * const pipe = await DiffusionPipeline.fromPretrained("google/ddpm-cat-256") as DDIMPipeline;
   * const { images } = await pipe.call({ numInferenceSteps: 50, generator: new Generator().manualSeed(0) });
   * await images[0].save("cat.png");
   * ```
   */
  async call<T extends OutputType = "image">(
    options: UnconditionalCallOptions<T> = {},
  ): Promise<PipelineOutput<T>> {
    const { batchSize = 1, numInferenceSteps = this.defaultSteps, generator, latents } = options;
    checkSteps(numInferenceSteps);
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      throw new ArgumentError(`batchSize must be a positive integer, got ${batchSize}`);
    }
    const size = this.unet.config.sample_size;
    const [height, width] = Array.isArray(size) ? size : [size, size];
    if (typeof height !== "number" || typeof width !== "number") {
      throw new ArgumentError(
        "the unet config has no sample_size; pass latents of the size you want",
      );
    }
    const shape = [batchSize, height, width, this.unet.config.in_channels];
    if (latents && latents.shape.join() !== shape.join()) {
      throw new ArgumentError(`latents must have shape [${shape}], got [${latents.shape}]`);
    }
    this.scheduler.setTimesteps(numInferenceSteps);
    const noise = latents ? tf.clone(latents) : randnTensor(shape, { generator, layout: "NHWC" });
    const sample = tf.tidy(() => tf.mul(noise, this.scheduler.initNoiseSigma));
    noise.dispose();
    const final = await denoise(
      this.scheduler,
      (x, t) => this.unet.forward(x as tf.Tensor4D, t),
      sample,
      { ...this.stepOptions(options), generator },
      options,
    );
    return await postprocess(final as tf.Tensor4D, options.outputType ?? ("image" as T));
  }

  /** Frees the UNet's weights and the scheduler's state. */
  dispose(): void {
    this.unet.dispose();
    this.scheduler.dispose();
  }
}
