/**
 * `generate()`: the one-call API. Loads a pipeline (Hub id or folder),
 * optionally swaps its scheduler, seeds a PyTorch-compatible generator, runs
 * it, frees it, and returns 8-bit images with `.save(path)`.
 *
 * @example
 * ```ts
 * import { generate } from "./generate.ts";
 * const { images, seed } = await generate({ model: "google/ddpm-cat-256", steps: 50,
 *   scheduler: "DDIMScheduler", seed: 0 });
 * await images[0].save("cat.png");
 * ```
 *
 * @module
 */

import { type BackendChoice, type BackendName, ensureReady } from "./backend.ts";
import { Generator } from "./random.ts";
import type { DiffusionImage } from "./image.ts";
import type { Scheduler } from "../schedulers/scheduler.ts";
import type { DownloadProgress } from "./hub.ts";
import { ArgumentError } from "./errors.ts";
import { logger } from "./log.ts";
import { schedulerClass } from "../schedulers/registry.ts";
import { DiffusionPipeline } from "./pipelines/diffusion_pipeline.ts";
import type { StepCallback } from "./pipelines/pipeline.ts";
import { UnconditionalPipeline } from "./pipelines/unconditional.ts";
import { LDMPipeline } from "./pipelines/latent_diffusion_uncond.ts";
import { LDMTextToImagePipeline } from "./pipelines/latent_diffusion.ts";
import { StableDiffusionBase, StableDiffusionPipeline } from "./pipelines/stable_diffusion.ts";
import { StableDiffusionImg2ImgPipeline } from "./pipelines/stable_diffusion_img2img.ts";
import type { OutputType, Pipeline, PipelineOutput } from "./pipelines/pipeline.ts";

/** Options of {@link generate}. */
export interface GenerateOptions {
  /** Hub id or local folder of a diffusers pipeline (default: the bundled emoji Stable Diffusion). */
  model?: string;
  /** Text prompt (text-to-image pipelines; unconditional ones ignore it with a warning). */
  prompt?: string;
  /** What to steer away from (Stable Diffusion). */
  negativePrompt?: string;
  /** Denoising steps (default: the pipeline's own default). */
  steps?: number;
  /** Scheduler class to swap in, e.g. `"DPMSolverMultistepScheduler"` (default: the model's own). */
  scheduler?: string;
  /** Seed of the PyTorch-compatible generator (default: random; returned in the result). */
  seed?: number;
  /** Classifier-free guidance weight (default: the pipeline's, 7.5 for SD, 1 for LDM). */
  guidanceScale?: number;
  /** Image width in pixels (text-to-image; default: the model's). */
  width?: number;
  /** Image height in pixels (text-to-image; default: the model's). */
  height?: number;
  /** Init image for image-to-image (Stable Diffusion models). */
  image?: DiffusionImage;
  /** Image-to-image strength, 0..1 (default 0.8). */
  strength?: number;
  /** Number of images (default 1). */
  batchSize?: number;
  /** DDIM eta (default 0). */
  eta?: number;
  /** Backend (default: auto). */
  backend?: BackendChoice;
  /**
   * Run the UNet in this many Deno Workers (1: in this thread); 2 runs the two
   * classifier-free-guidance halves (or batch items) on two cores, with identical latents;
   * worth it for big UNets (Stable Diffusion size). Default: 2 on WASM for a UNet too big for
   * one heap beside the rest of its pipeline (SD's, LDM's), else 1.
   */
  workers?: number;
  /** Weight file variant (`"fp16"`). */
  variant?: string;
  /** Hub revision. */
  revision?: string;
  /** Hub endpoint (default: `HF_ENDPOINT`, else https://huggingface.co); in a page, where Hub ids are fetched from. */
  endpoint?: string;
  /** Never use the network (also `HF_HUB_OFFLINE=1`). */
  localFilesOnly?: boolean;
  /** Per-step progress. */
  onStep?: StepCallback;
  /** Download progress. */
  onDownload?: (progress: DownloadProgress) => void;
  /** Cancels between steps. */
  signal?: AbortSignal;
}

/** What {@link generate} returns. */
export interface GenerateResult {
  /** The images, 8-bit RGB, with `.save(path)`. */
  images: DiffusionImage[];
  /** The seed used (pass it back to reproduce the images). */
  seed: number;
  /** The backend that ran. */
  backend: BackendName;
  /** Milliseconds spent loading and generating. */
  timings: { loadMs: number; generateMs: number };
}

/** The model `generate()` and the CLI use when none is given: shipped in the repository, works offline. */
export const DEFAULT_MODEL: string = bundledModel("../models/pretrained/emoji-sd-tiny");

/** A folder shipped beside this module, or `""` when the module was loaded from a URL (JSR, a CDN). */
function bundledModel(relative: string): string {
  const url = new URL(relative, import.meta.url);
  return url.protocol === "file:" ? decodeURIComponent(url.pathname) : "";
}

function randomSeed(): number {
  return crypto.getRandomValues(new Uint32Array(1))[0]!;
}

function swapScheduler(pipe: { scheduler: Scheduler }, name: string): void {
  const previous = pipe.scheduler;
  pipe.scheduler = schedulerClass(name).fromConfig(previous.config);
  previous.dispose();
}

/** Runs whichever pipeline was loaded with the options that apply to it. */
function runPipeline(
  pipe: Pipeline,
  o: GenerateOptions,
  generator: Generator,
): Promise<PipelineOutput<OutputType>> {
  const common = { numInferenceSteps: o.steps, generator, onStep: o.onStep, signal: o.signal };
  const eta = o.eta === undefined ? {} : { eta: o.eta };
  if (pipe instanceof StableDiffusionBase) {
    const prompt = o.prompt ?? "";
    const sd = {
      ...common,
      ...eta,
      prompt,
      negativePrompt: o.negativePrompt,
      guidanceScale: o.guidanceScale,
      numImagesPerPrompt: o.batchSize,
    };
    if (o.image) {
      return StableDiffusionImg2ImgPipeline.fromPipeline(pipe).call({
        ...sd,
        image: o.image,
        strength: o.strength,
      });
    }
    if (pipe instanceof StableDiffusionPipeline) {
      return pipe.call({ ...sd, width: o.width, height: o.height });
    }
    throw new ArgumentError(`${pipe.className} needs an init image`);
  }
  if (o.image) {
    throw new ArgumentError(
      `${pipe.className} cannot start from an image; use a Stable Diffusion model`,
    );
  }
  if (pipe instanceof LDMTextToImagePipeline) {
    const prompt = o.prompt ?? "";
    return pipe.call({
      ...common,
      ...eta,
      prompt: new Array<string>(o.batchSize ?? 1).fill(prompt),
      guidanceScale: o.guidanceScale,
      width: o.width,
      height: o.height,
    });
  }
  if (o.prompt) logger.warning(`${pipe.className} is unconditional: the prompt is ignored`);
  if (pipe instanceof LDMPipeline) return pipe.call({ ...common, ...eta, batchSize: o.batchSize });
  if (pipe instanceof UnconditionalPipeline) {
    return pipe.call({ ...common, ...eta, batchSize: o.batchSize });
  }
  throw new ArgumentError(`generate() does not support ${pipe.className}`);
}

/**
 * Generates images with any supported diffusers pipeline in one call:
 * text-to-image (Stable Diffusion, LDM), image-to-image (Stable Diffusion
 * with `image`), or unconditional (DDPM, DDIM, PNDM, LDM). Without `model`,
 * the bundled emoji model runs offline.
 *
 * @example
 * ```ts
 * import { generate } from "./generate.ts";
 * const { images, seed } = await generate({ prompt: "cat face", seed: 0 });
 * await images[0].upscale(8).save("cat.png");
 * ```
 */
export async function generate(options: GenerateOptions): Promise<GenerateResult> {
  const model = options.model ?? DEFAULT_MODEL;
  if (!model) {
    throw new ArgumentError(
      "no model given, and the bundled default model is not available here (it is not part of the JSR package): pass a Hub id or folder",
    );
  }
  const seed = options.seed ?? randomSeed();
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw new ArgumentError(`seed must be a non-negative integer, got ${seed}`);
  }
  const backend = await ensureReady(options.backend);
  const t0 = performance.now();
  const pipe = await DiffusionPipeline.fromPretrained(model, {
    variant: options.variant,
    revision: options.revision,
    endpoint: options.endpoint,
    localFilesOnly: options.localFilesOnly,
    onDownload: options.onDownload,
    backend: options.backend,
    workers: options.workers,
  });
  try {
    const t1 = performance.now();
    if (options.scheduler) {
      swapScheduler(pipe as unknown as { scheduler: Scheduler }, options.scheduler);
    }
    const { images } = await runPipeline(pipe, options, new Generator().manualSeed(seed));
    return {
      images: images as DiffusionImage[],
      seed,
      backend,
      timings: { loadMs: t1 - t0, generateMs: performance.now() - t1 },
    };
  } finally {
    pipe.dispose();
  }
}
