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
import type { DownloadProgress } from "./hub.ts";
import { ArgumentError } from "./errors.ts";
import { logger } from "./log.ts";
import { schedulerClass } from "../schedulers/registry.ts";
import { DiffusionPipeline } from "./pipelines/diffusion_pipeline.ts";
import type { StepCallback } from "./pipelines/pipeline.ts";
import { UnconditionalPipeline } from "./pipelines/unconditional.ts";

/** Options of {@link generate}. */
export interface GenerateOptions {
  /** Hub id (`"google/ddpm-cat-256"`) or local folder of a diffusers pipeline. */
  model: string;
  /** Text prompt (text-to-image pipelines; ignored with a warning by unconditional ones). */
  prompt?: string;
  /** Denoising steps (default: the pipeline's own default). */
  steps?: number;
  /** Scheduler class to swap in, e.g. `"DDIMScheduler"` (default: the model's own). */
  scheduler?: string;
  /** Seed of the PyTorch-compatible generator (default: random; returned in the result). */
  seed?: number;
  /** Number of images (default 1). */
  batchSize?: number;
  /** DDIM eta (default 0). */
  eta?: number;
  /** Backend (default: auto). */
  backend?: BackendChoice;
  /** Weight file variant (`"fp16"`). */
  variant?: string;
  /** Hub revision. */
  revision?: string;
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

function randomSeed(): number {
  return crypto.getRandomValues(new Uint32Array(1))[0]!;
}

/**
 * Generates images with any supported diffusers pipeline in one call.
 *
 * @example
 * ```ts
 * import { generate } from "./generate.ts";
 * const { images } = await generate({ model: "./ddpm_tiny", steps: 10, seed: 0 });
 * console.log(images[0].width);
 * ```
 */
export async function generate(options: GenerateOptions): Promise<GenerateResult> {
  if (!options.model) throw new ArgumentError("generate() needs a model (Hub id or folder)");
  const seed = options.seed ?? randomSeed();
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw new ArgumentError(`seed must be a non-negative integer, got ${seed}`);
  }
  const backend = await ensureReady(options.backend);
  const t0 = performance.now();
  const pipe = await DiffusionPipeline.fromPretrained(options.model, {
    variant: options.variant,
    revision: options.revision,
    localFilesOnly: options.localFilesOnly,
    onDownload: options.onDownload,
    backend: options.backend,
  });
  try {
    const t1 = performance.now();
    if (!(pipe instanceof UnconditionalPipeline)) {
      throw new ArgumentError(`generate() does not support ${pipe.className} yet`);
    }
    if (options.scheduler) {
      const previous = pipe.scheduler;
      pipe.scheduler = schedulerClass(options.scheduler).fromConfig(previous.config);
      previous.dispose();
    }
    if (options.prompt) {
      logger.warning(`${pipe.className} is unconditional: the prompt is ignored`);
    }
    const { images } = await pipe.call({
      numInferenceSteps: options.steps,
      batchSize: options.batchSize,
      generator: new Generator().manualSeed(seed),
      onStep: options.onStep,
      signal: options.signal,
      ...(options.eta === undefined ? {} : { eta: options.eta }),
    });
    return {
      images,
      seed,
      backend,
      timings: { loadMs: t1 - t0, generateMs: performance.now() - t1 },
    };
  } finally {
    pipe.dispose();
  }
}
