/**
 * `StableDiffusionPipeline`: text-to-image with Stable Diffusion 1.x / 2.x
 * (CLIP text encoder, text-conditioned UNet, AutoencoderKL), following
 * diffusers' call: the prompt is encoded first, then the negative prompt
 * (`""` when none), guidance is on when `guidanceScale > 1`, latents are
 * drawn `[B·n, 4, H/f, W/f]` in PyTorch order and scaled by
 * `init_noise_sigma`, each step scales the model input, and the latents are
 * divided by the VAE's `scaling_factor` before decoding. No safety checker
 * is run.
 *
 * @example
 * ```ts
 * import { DiffusionPipeline } from "./diffusion_pipeline.ts";
 * import type { StableDiffusionPipeline } from "./stable_diffusion.ts";
 * import { Generator } from "../random.ts";
 * const pipe = await DiffusionPipeline.fromPretrained("stable-diffusion-v1-5/stable-diffusion-v1-5") as StableDiffusionPipeline;
 * const { images } = await pipe.call({ prompt: "a photo of an astronaut riding a horse",
 *   numInferenceSteps: 25, guidanceScale: 7.5, generator: new Generator().manualSeed(0) });
 * await images[0].save("astronaut.png");
 * ```
 *
 * @module
 */

import { tf } from "../tf.ts";
import { type Generator, randnTensor } from "../random.ts";
import { ArgumentError } from "../errors.ts";
import type { Scheduler } from "../../schedulers/scheduler.ts";
import {
  afterModel,
  type CallOptionsBase,
  checkSteps,
  denoise,
  type OutputType,
  type Pipeline,
  type PipelineOutput,
  postprocess,
  registerPipeline,
} from "./pipeline.ts";
import {
  encodeTexts,
  guide,
  type PromptEncoder,
  promptList,
  type PromptTokenizer,
  repeatEach,
} from "./conditioning.ts";
import { type ConditionalUNet, type LatentAutoencoder, vaeScaleFactor } from "./latent_models.ts";

/** Arguments common to Stable Diffusion calls (diffusers' names, camelCase). */
export interface StableDiffusionCommonOptions<T extends OutputType = "image">
  extends CallOptionsBase {
  /** The prompt, or one per image; may be omitted when `promptEmbeds` is given. */
  prompt?: string | readonly string[];
  /** What to steer away from: one, or one per prompt (default: `""`). */
  negativePrompt?: string | readonly string[];
  /** Precomputed prompt embeddings `[B, T, D]` instead of `prompt`. */
  promptEmbeds?: tf.Tensor3D;
  /** Precomputed negative embeddings `[B, T, D]` instead of `negativePrompt`. */
  negativePromptEmbeds?: tf.Tensor3D;
  /** Denoising steps (default 50). */
  numInferenceSteps?: number;
  /** Classifier-free guidance weight; ≤ 1 disables guidance (default 7.5). */
  guidanceScale?: number;
  /** Rescale of the guided prediction toward the text prediction's std, 0..1 (default 0). */
  guidanceRescale?: number;
  /** Images per prompt (default 1). */
  numImagesPerPrompt?: number;
  /** DDIM eta (default 0). */
  eta?: number;
  /** Source of all random draws, as a seeded torch generator. */
  generator?: Generator;
  /** `"image"` (default) or `"tensor"`. */
  outputType?: T;
}

/** Arguments of {@link StableDiffusionPipeline.call}. */
export interface StableDiffusionCallOptions<T extends OutputType = "image">
  extends StableDiffusionCommonOptions<T> {
  /** Image height in pixels, a multiple of 8 (default: unet sample_size × vae scale factor). */
  height?: number;
  /** Image width in pixels, a multiple of 8 (default: unet sample_size × vae scale factor). */
  width?: number;
  /** Initial latents (NHWC `[B·n, h, w, 4]`) instead of drawing them. */
  latents?: tf.Tensor4D;
}

/** The components of a Stable Diffusion pipeline. */
export interface StableDiffusionComponents {
  /** The VAE. */
  vae: LatentAutoencoder;
  /** The CLIP text encoder. */
  text_encoder: PromptEncoder;
  /** The CLIP tokenizer. */
  tokenizer: PromptTokenizer;
  /** The text-conditioned UNet. */
  unet: ConditionalUNet;
  /** The scheduler. */
  scheduler: Scheduler;
}

/** Shared body of the Stable Diffusion pipelines: components, prompt encoding, the guided loop. */
export abstract class StableDiffusionBase implements Pipeline {
  /** The components read from `model_index.json` (safety checker and feature extractor are not run). */
  static readonly componentNames: readonly string[] = [
    "vae",
    "text_encoder",
    "tokenizer",
    "unet",
    "scheduler",
  ];
  /** The diffusers `_class_name`. */
  abstract readonly className: string;
  /** The VAE. */
  vae: LatentAutoencoder;
  /** The CLIP text encoder. */
  textEncoder: PromptEncoder;
  /** The CLIP tokenizer. */
  tokenizer: PromptTokenizer;
  /** The text-conditioned UNet. */
  unet: ConditionalUNet;
  /** The scheduler; swap with `XScheduler.fromConfig(pipe.scheduler.config)`. */
  scheduler: Scheduler;

  /** Holds the components. */
  constructor(components: StableDiffusionComponents) {
    this.vae = components.vae;
    this.textEncoder = components.text_encoder;
    this.tokenizer = components.tokenizer;
    this.unet = components.unet;
    this.scheduler = components.scheduler;
  }

  /** How much smaller latents are than images (8 for SD). */
  get vaeScaleFactor(): number {
    return vaeScaleFactor(this.vae);
  }

  /**
   * Text embeddings for the call, as diffusers' `encode_prompt`: prompt
   * embeddings repeated per image, and, with guidance, the negative ones
   * stacked in front (`[uncond; cond]`). Returns the embeddings and the
   * number of images.
   *
   * @example
   * ```ts
   * import type { StableDiffusionPipeline } from "./stable_diffusion.ts";
   * declare const pipe: StableDiffusionPipeline;
   * const { embeds, batch } = pipe.encodePrompt({ prompt: "a cat", guidanceScale: 7.5 });
   * embeds.dispose();
   * ```
   */
  encodePrompt(
    options: StableDiffusionCommonOptions<OutputType>,
  ): { embeds: tf.Tensor3D; batch: number } {
    const { guidanceScale = 7.5, numImagesPerPrompt = 1 } = options;
    if (!Number.isInteger(numImagesPerPrompt) || numImagesPerPrompt < 1) {
      throw new ArgumentError(
        `numImagesPerPrompt must be a positive integer, got ${numImagesPerPrompt}`,
      );
    }
    if (options.prompt === undefined && !options.promptEmbeds) {
      throw new ArgumentError("give a prompt or promptEmbeds");
    }
    const maxLength = this.tokenizer.modelMaxLength;
    return tf.tidy(() => {
      const prompts = options.prompt === undefined ? undefined : promptList(options.prompt);
      const cond = options.promptEmbeds
        ? tf.clone(options.promptEmbeds)
        : encodeTexts(this.tokenizer, this.textEncoder, prompts!, maxLength);
      const batch = cond.shape[0];
      const condAll = repeatEach(cond, numImagesPerPrompt);
      if (!(guidanceScale > 1)) return { embeds: condAll, batch: batch * numImagesPerPrompt };
      let uncond: tf.Tensor3D;
      if (options.negativePromptEmbeds) {
        uncond = tf.clone(options.negativePromptEmbeds);
      } else {
        const negatives = options.negativePrompt === undefined
          ? new Array<string>(batch).fill("")
          : promptList(options.negativePrompt, "negativePrompt");
        if (negatives.length !== batch) {
          throw new ArgumentError(
            `negativePrompt has ${negatives.length} entries for ${batch} prompts`,
          );
        }
        uncond = encodeTexts(this.tokenizer, this.textEncoder, negatives, cond.shape[1]);
      }
      if (uncond.shape.join() !== cond.shape.join()) {
        throw new ArgumentError(
          `negative prompt embeddings [${uncond.shape}] do not match prompt embeddings [${cond.shape}]`,
        );
      }
      const embeds = tf.concat([repeatEach(uncond, numImagesPerPrompt), condAll], 0) as tf.Tensor3D;
      return { embeds, batch: batch * numImagesPerPrompt };
    });
  }

  /**
   * Runs the guided loop from `latents` over `timesteps` and decodes. Takes
   * ownership of `latents` and `embeds`.
   */
  protected async run<T extends OutputType>(
    latents: tf.Tensor4D,
    embeds: tf.Tensor3D,
    options: StableDiffusionCommonOptions<T>,
    timesteps?: readonly number[],
  ): Promise<PipelineOutput<T>> {
    const { guidanceScale = 7.5, guidanceRescale = 0, eta = 0, generator } = options;
    const guided = guidanceScale > 1;
    try {
      const final = await denoise(
        this.scheduler,
        (x, t) => {
          const input = guided ? tf.concat([x, x], 0) : x;
          return afterModel(
            this.unet.forward(input as tf.Tensor4D, t, embeds),
            (prediction) => guided ? guide(prediction, guidanceScale, guidanceRescale) : prediction,
            guided ? [input] : [],
          );
        },
        latents,
        { eta, generator },
        options,
        { timesteps },
      );
      const image = tf.tidy(() =>
        this.vae.decode(tf.div(final, this.vae.config.scaling_factor) as tf.Tensor4D)
      );
      final.dispose();
      return await postprocess(image, options.outputType ?? ("image" as T));
    } finally {
      embeds.dispose();
    }
  }

  /** Frees every component's weights and the scheduler's state. */
  dispose(): void {
    this.vae.dispose();
    this.textEncoder.dispose();
    this.unet.dispose();
    this.scheduler.dispose();
  }
}

/** diffusers' `StableDiffusionPipeline` (text to image). */
export class StableDiffusionPipeline extends StableDiffusionBase {
  /** The diffusers `_class_name`. */
  static readonly className = "StableDiffusionPipeline";
  /** The diffusers `_class_name`. */
  readonly className: string = StableDiffusionPipeline.className;

  /**
   * Builds the pipeline from loaded components.
   *
   * @example
   * ```ts
   * import { StableDiffusionPipeline } from "./stable_diffusion.ts";
   * // const pipe = StableDiffusionPipeline.fromComponents({ vae, text_encoder, tokenizer, unet, scheduler });
   * ```
   */
  static fromComponents(components: Record<string, unknown>): StableDiffusionPipeline {
    return new StableDiffusionPipeline(components as unknown as StableDiffusionComponents);
  }

  /**
   * Generates images for the prompt(s).
   *
   * @example
   * ```ts
   * import type { StableDiffusionPipeline } from "./stable_diffusion.ts";
   * declare const pipe: StableDiffusionPipeline;
   * const { images } = await pipe.call({ prompt: "cat face", negativePrompt: "blurry", guidanceScale: 5 });
   * ```
   */
  async call<T extends OutputType = "image">(
    options: StableDiffusionCallOptions<T>,
  ): Promise<PipelineOutput<T>> {
    const { numInferenceSteps = 50, generator } = options;
    checkSteps(numInferenceSteps);
    const f = this.vaeScaleFactor;
    const size = this.unet.config.sample_size;
    const sampleSize = typeof size === "number" ? size : Array.isArray(size) ? size[0] : undefined;
    const height = options.height ?? (sampleSize === undefined ? undefined : sampleSize * f);
    const width = options.width ?? (sampleSize === undefined ? undefined : sampleSize * f);
    if (height === undefined || width === undefined || height % 8 !== 0 || width % 8 !== 0) {
      throw new ArgumentError(
        `height and width must be multiples of 8, got ${height} and ${width}`,
      );
    }
    const { embeds, batch } = this.encodePrompt(options);
    let latents: tf.Tensor4D;
    try {
      const shape = [
        batch,
        Math.floor(height / f),
        Math.floor(width / f),
        this.unet.config.in_channels,
      ];
      if (options.latents && options.latents.shape.join() !== shape.join()) {
        throw new ArgumentError(
          `latents must have shape [${shape}], got [${options.latents.shape}]`,
        );
      }
      this.scheduler.setTimesteps(numInferenceSteps);
      const noise = options.latents
        ? tf.clone(options.latents)
        : randnTensor(shape, { generator, layout: "NHWC" });
      latents = tf.tidy(() => tf.mul(noise, this.scheduler.initNoiseSigma)) as tf.Tensor4D;
      noise.dispose();
    } catch (e) {
      embeds.dispose();
      throw e;
    }
    return await this.run(latents, embeds, options);
  }
}

registerPipeline(StableDiffusionPipeline);
