/**
 * `LDMTextToImagePipeline`: text-to-image with latent diffusion (Rombach et
 * al. 2022), as CompVis/ldm-text2im-large-256 was released: LDMBert text
 * embeddings, a text-conditioned UNet over `height/8 × width/8` latents,
 * classifier-free guidance, and a VAE decode. Follows diffusers' call
 * exactly: the unconditional text is `""` and is encoded first, latents are
 * neither scaled by `init_noise_sigma` nor passed through
 * `scale_model_input`, and `eta` goes to the scheduler.
 *
 * @example
 * ```ts
 * import { DiffusionPipeline } from "./diffusion_pipeline.ts";
 * import type { LDMTextToImagePipeline } from "./latent_diffusion.ts";
 * import { Generator } from "../random.ts";
 * const pipe = await DiffusionPipeline.fromPretrained("CompVis/ldm-text2im-large-256") as LDMTextToImagePipeline;
 * const { images } = await pipe.call({ prompt: "a painting of a squirrel eating a banana",
 *   guidanceScale: 6, numInferenceSteps: 50, generator: new Generator().manualSeed(0) });
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
} from "./conditioning.ts";
import { type ConditionalUNet, type LatentDecoder, vaeScaleFactor } from "./latent_models.ts";

/** Arguments of {@link LDMTextToImagePipeline.call} (diffusers' names, camelCase). */
export interface LDMTextToImageCallOptions<T extends OutputType = "image"> extends CallOptionsBase {
  /** The prompt, or one prompt per image. */
  prompt: string | readonly string[];
  /** Image height in pixels, a multiple of 8 (default: unet sample_size × vae scale factor). */
  height?: number;
  /** Image width in pixels, a multiple of 8 (default: unet sample_size × vae scale factor). */
  width?: number;
  /** Denoising steps (default 50). */
  numInferenceSteps?: number;
  /** Classifier-free guidance weight; 1 disables guidance (default 1, as diffusers). */
  guidanceScale?: number;
  /** DDIM eta (default 0). */
  eta?: number;
  /** Source of the initial noise (and of any scheduler noise), as a seeded torch generator. */
  generator?: Generator;
  /** Initial latents (NHWC `[B, h, w, c]`) instead of drawing them. */
  latents?: tf.Tensor4D;
  /** `"image"` (default) or `"tensor"`. */
  outputType?: T;
}

/** diffusers' `LDMTextToImagePipeline`. */
export class LDMTextToImagePipeline implements Pipeline {
  /** The diffusers `_class_name`. */
  static readonly className = "LDMTextToImagePipeline";
  /** The components it reads from `model_index.json`. */
  static readonly componentNames: readonly string[] = [
    "vqvae",
    "bert",
    "tokenizer",
    "unet",
    "scheduler",
  ];
  /** The diffusers `_class_name`. */
  readonly className: string = LDMTextToImagePipeline.className;
  /** Latent decoder (an AutoencoderKL in the released model, despite the name). */
  vqvae: LatentDecoder;
  /** The LDMBert text encoder. */
  bert: PromptEncoder;
  /** The BERT tokenizer. */
  tokenizer: PromptTokenizer;
  /** The text-conditioned UNet. */
  unet: ConditionalUNet;
  /** The scheduler; swap with `XScheduler.fromConfig(pipe.scheduler.config)`. */
  scheduler: Scheduler;

  /** Holds the components. */
  constructor(components: {
    vqvae: LatentDecoder;
    bert: PromptEncoder;
    tokenizer: PromptTokenizer;
    unet: ConditionalUNet;
    scheduler: Scheduler;
  }) {
    this.vqvae = components.vqvae;
    this.bert = components.bert;
    this.tokenizer = components.tokenizer;
    this.unet = components.unet;
    this.scheduler = components.scheduler;
  }

  /**
   * Builds the pipeline from loaded components.
   *
   * @example
   * ```ts
   * import { LDMTextToImagePipeline } from "./latent_diffusion.ts";
   * // const pipe = LDMTextToImagePipeline.fromComponents({ vqvae, bert, tokenizer, unet, scheduler });
   * ```
   */
  static fromComponents(components: Record<string, unknown>): LDMTextToImagePipeline {
    return new LDMTextToImagePipeline(
      components as ConstructorParameters<typeof LDMTextToImagePipeline>[0],
    );
  }

  /**
   * Generates images for the prompt(s).
   *
   * @example
   * ```ts
   * import type { LDMTextToImagePipeline } from "./latent_diffusion.ts";
   * declare const pipe: LDMTextToImagePipeline;
   * const { images } = await pipe.call({ prompt: "a squirrel", guidanceScale: 6 });
   * ```
   */
  async call<T extends OutputType = "image">(
    options: LDMTextToImageCallOptions<T>,
  ): Promise<PipelineOutput<T>> {
    const prompts = promptList(options.prompt);
    const { numInferenceSteps = 50, guidanceScale = 1, eta = 0, generator } = options;
    checkSteps(numInferenceSteps);
    const size = this.unet.config.sample_size;
    const sampleSize = typeof size === "number" ? size : Array.isArray(size) ? size[0] : undefined;
    const fallback = sampleSize === undefined ? undefined : sampleSize * vaeScaleFactor(this.vqvae);
    const height = options.height ?? fallback;
    const width = options.width ?? fallback;
    if (height === undefined || width === undefined || height % 8 !== 0 || width % 8 !== 0) {
      throw new ArgumentError(
        `height and width must be multiples of 8, got ${height} and ${width}`,
      );
    }
    const batch = prompts.length;
    // diffusers hard-codes the factor 8 here, whatever the VAE.
    const shape = [batch, height / 8, width / 8, this.unet.config.in_channels];
    if (options.latents && options.latents.shape.join() !== shape.join()) {
      throw new ArgumentError(`latents must have shape [${shape}], got [${options.latents.shape}]`);
    }
    const guided = guidanceScale !== 1;
    const context = tf.tidy(() => {
      const uncond = guided
        ? encodeTexts(this.tokenizer, this.bert, prompts.map(() => ""), 77)
        : undefined;
      const cond = encodeTexts(this.tokenizer, this.bert, prompts, 77);
      return uncond ? tf.concat([uncond, cond], 0) : cond;
    }) as tf.Tensor3D;
    try {
      const latents = options.latents
        ? tf.clone(options.latents)
        : randnTensor(shape, { generator, layout: "NHWC" });
      this.scheduler.setTimesteps(numInferenceSteps);
      const final = await denoise(
        this.scheduler,
        (x, t) => {
          const input = guided ? tf.concat([x, x], 0) : x;
          return afterModel(
            this.unet.forward(input as tf.Tensor4D, t, context),
            (prediction) => guided ? guide(prediction, guidanceScale, 0) : prediction,
            guided ? [input] : [],
          );
        },
        latents,
        { eta, generator },
        options,
        { scaleInput: false },
      );
      const image = tf.tidy(() => {
        const decoded = this.vqvae.decode(
          tf.div(final, this.vqvae.config.scaling_factor) as tf.Tensor4D,
        );
        return decoded;
      });
      final.dispose();
      return await postprocess(image, options.outputType ?? ("image" as T));
    } finally {
      context.dispose();
    }
  }

  /** Frees every component's weights and the scheduler's state. */
  dispose(): void {
    this.vqvae.dispose();
    this.bert.dispose();
    this.unet.dispose();
    this.scheduler.dispose();
  }
}

registerPipeline(LDMTextToImagePipeline);
