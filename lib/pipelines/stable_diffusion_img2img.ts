/**
 * `StableDiffusionImg2ImgPipeline`: SDEdit (Meng et al. 2022) with Stable
 * Diffusion. The init image is encoded by the VAE (a latent sample drawn
 * from the generator), scaled by `scaling_factor`, noised to the timestep
 * that `strength` selects, and denoised from there, exactly in diffusers'
 * order of random draws (encoder sample first, then the added noise).
 *
 * @example
 * ```ts
 * import { DiffusionPipeline } from "./diffusion_pipeline.ts";
 * import { StableDiffusionImg2ImgPipeline } from "./stable_diffusion_img2img.ts";
 * import { decodeImage } from "../image.ts";
 * const text2img = await DiffusionPipeline.fromPretrained("stabilityai/stable-diffusion-2-1-base");
 * const pipe = StableDiffusionImg2ImgPipeline.fromPipeline(text2img as never);
 * const init = decodeImage(await Deno.readFile("sketch.png"));
 * const { images } = await pipe.call({ prompt: "a fantasy landscape", image: init, strength: 0.75 });
 * ```
 *
 * @module
 */

import { tf } from "../tf.ts";
import { randnTensor } from "../random.ts";
import { ArgumentError } from "../errors.ts";
import type { DiffusionImage } from "../image.ts";
import { checkSteps, type OutputType, type PipelineOutput, registerPipeline } from "./pipeline.ts";
import {
  StableDiffusionBase,
  type StableDiffusionCommonOptions,
  type StableDiffusionComponents,
} from "./stable_diffusion.ts";

/** Arguments of {@link StableDiffusionImg2ImgPipeline.call}. */
export interface StableDiffusionImg2ImgCallOptions<T extends OutputType = "image">
  extends StableDiffusionCommonOptions<T> {
  /**
   * The starting image (8-bit RGB), or an NHWC tensor in [0, 1]. Sides that are not multiples of
   * 8 are resized down to them (bilinear here; diffusers uses PIL's Lanczos).
   */
  image: DiffusionImage | tf.Tensor4D;
  /** How much of the schedule to run, 0..1: 1 ignores the image's content, 0 returns it (default 0.8). */
  strength?: number;
}

/** diffusers' `StableDiffusionImg2ImgPipeline`. */
export class StableDiffusionImg2ImgPipeline extends StableDiffusionBase {
  /** The diffusers `_class_name`. */
  static readonly className = "StableDiffusionImg2ImgPipeline";
  /** The diffusers `_class_name`. */
  readonly className: string = StableDiffusionImg2ImgPipeline.className;

  /**
   * Builds the pipeline from loaded components.
   *
   * @example
   * ```ts
   * import { StableDiffusionImg2ImgPipeline } from "./stable_diffusion_img2img.ts";
   * // const pipe = StableDiffusionImg2ImgPipeline.fromComponents({ vae, text_encoder, tokenizer, unet, scheduler });
   * ```
   */
  static fromComponents(components: Record<string, unknown>): StableDiffusionImg2ImgPipeline {
    return new StableDiffusionImg2ImgPipeline(components as unknown as StableDiffusionComponents);
  }

  /**
   * Shares the components of a loaded text-to-image pipeline (no second copy
   * of the weights; dispose only one of the two).
   *
   * @example
   * ```ts
   * import { StableDiffusionImg2ImgPipeline } from "./stable_diffusion_img2img.ts";
   * import type { StableDiffusionPipeline } from "./stable_diffusion.ts";
   * declare const text2img: StableDiffusionPipeline;
   * const img2img = StableDiffusionImg2ImgPipeline.fromPipeline(text2img);
   * ```
   */
  static fromPipeline(pipe: StableDiffusionBase): StableDiffusionImg2ImgPipeline {
    return new StableDiffusionImg2ImgPipeline({
      vae: pipe.vae,
      text_encoder: pipe.textEncoder,
      tokenizer: pipe.tokenizer,
      unet: pipe.unet,
      scheduler: pipe.scheduler,
    });
  }

  /**
   * Transforms `image` toward the prompt.
   *
   * @example
   * ```ts
   * import type { StableDiffusionImg2ImgPipeline } from "./stable_diffusion_img2img.ts";
   * import type { DiffusionImage } from "../image.ts";
   * declare const pipe: StableDiffusionImg2ImgPipeline;
   * declare const sketch: DiffusionImage;
   * const { images } = await pipe.call({ prompt: "a watercolour", image: sketch, strength: 0.6 });
   * ```
   */
  async call<T extends OutputType = "image">(
    options: StableDiffusionImg2ImgCallOptions<T>,
  ): Promise<PipelineOutput<T>> {
    const { numInferenceSteps = 50, strength = 0.8 } = options;
    checkSteps(numInferenceSteps);
    if (!(strength >= 0 && strength <= 1)) {
      throw new ArgumentError(`strength must be in [0, 1], got ${strength}`);
    }
    // As diffusers' get_timesteps: run the last `strength` of the schedule.
    this.scheduler.setTimesteps(numInferenceSteps);
    const initSteps = Math.min(Math.floor(numInferenceSteps * strength), numInferenceSteps);
    const tStart = Math.max(numInferenceSteps - initSteps, 0);
    const timesteps = this.scheduler.timesteps.slice(tStart * this.scheduler.order);
    if (timesteps.length === 0) {
      throw new ArgumentError(
        `strength ${strength} with ${numInferenceSteps} steps leaves no step to run; raise either`,
      );
    }
    const begin = this.scheduler as { setBeginIndex?: (index: number) => void };
    begin.setBeginIndex?.(tStart * this.scheduler.order);

    const { embeds, batch } = this.encodePrompt(options);
    let latents: tf.Tensor4D;
    try {
      latents = this.initialLatents(options, batch, timesteps[0]!);
    } catch (e) {
      embeds.dispose();
      throw e;
    }
    return await this.run(latents, embeds, options, timesteps);
  }

  /** Encodes the image, repeats it to the batch, and noises it to `timestep`. */
  private initialLatents(
    options: StableDiffusionImg2ImgCallOptions<OutputType>,
    batch: number,
    timestep: number,
  ): tf.Tensor4D {
    const pixels = "toTensor" in options.image ? options.image.toTensor() : tf.clone(options.image);
    try {
      const [n, h, w] = pixels.shape;
      const height = h - (h % this.vaeScaleFactor);
      const width = w - (w % this.vaeScaleFactor);
      if (height === 0 || width === 0) throw new ArgumentError(`image of ${w}x${h} is too small`);
      if (batch % n !== 0) {
        throw new ArgumentError(`cannot repeat ${n} init images to ${batch} images`);
      }
      const init = tf.tidy(() => {
        // diffusers resizes (Lanczos, in PIL) to the multiple of 8 below; an exact size is untouched.
        const sized = height === h && width === w
          ? pixels
          : tf.image.resizeBilinear(pixels, [height, width], false, true);
        const normalised = tf.sub(tf.mul(sized, 2), 1) as tf.Tensor4D;
        const encoded = tf.mul(
          this.vae.encodeSample(normalised, options.generator),
          this.vae.config.scaling_factor,
        );
        // More prompts than images: the images are tiled ([a, b, a, b]), as diffusers concatenates them.
        return tf.tile(encoded, [batch / n, 1, 1, 1]) as tf.Tensor4D;
      });
      const noise = randnTensor(init.shape, { generator: options.generator, layout: "NHWC" });
      const noisy = this.scheduler.addNoise(init, noise, new Array<number>(batch).fill(timestep));
      tf.dispose([init, noise]);
      return noisy as tf.Tensor4D;
    } finally {
      pixels.dispose();
    }
  }
}

registerPipeline(StableDiffusionImg2ImgPipeline);
