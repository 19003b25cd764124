/**
 * What every pipeline shares: the registry that maps a `model_index.json`
 * `_class_name` to a pipeline class, the per-step callback, the output
 * conversion, and the denoising loop that keeps tensors tidy.
 *
 * @example
 * ```ts
 * import type { StepCallback } from "./pipeline.ts";
 * const onStep: StepCallback = ({ step, numSteps }) => console.log(`${step + 1}/${numSteps}`);
 * ```
 *
 * @module
 */

import { tf } from "../tf.ts";
import { type DiffusionImage, imagesFromTensor } from "../image.ts";
import { ArgumentError, UnknownNameError } from "../errors.ts";
import type { Scheduler, StepOptions } from "../../schedulers/scheduler.ts";

/** What a step callback receives. */
export interface StepInfo {
  /** Index of the step just taken, from 0. */
  step: number;
  /** Number of model evaluations in the loop. */
  numSteps: number;
  /** The timestep just evaluated. */
  timestep: number;
  /**
   * The sample (or latents) after this step, valid only during the callback.
   * Reading it (`await latents.data()`) is the only host readback in the loop.
   */
  latents: tf.Tensor;
}

/** Called after every denoising step; may be async (awaited before the next step). */
export type StepCallback = (info: StepInfo) => void | Promise<void>;

/** `"image"`: 8-bit images with `.save()`; `"tensor"`: an NHWC float32 tensor in [0, 1] the caller disposes. */
export type OutputType = "image" | "tensor";

/** What a pipeline call returns. */
export interface PipelineOutput<T extends OutputType = "image"> {
  /** The generated images. */
  images: T extends "tensor" ? tf.Tensor4D : DiffusionImage[];
}

/** Options every pipeline call takes. */
export interface CallOptionsBase {
  /** Per-step callback (progress, previews). */
  onStep?: StepCallback;
  /** Stops the loop between steps (Ctrl-C, a cancel button); the call rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** A pipeline class as the registry stores it. */
export interface PipelineClass {
  /** The diffusers `_class_name`. */
  readonly className: string;
  /** The component names in `model_index.json` this pipeline needs. */
  readonly componentNames: readonly string[];
  /** Builds the pipeline from loaded components. */
  fromComponents(components: Record<string, unknown>): Pipeline;
}

/** A loaded pipeline: its components and the resources they hold. */
export interface Pipeline {
  /** The diffusers `_class_name`. */
  readonly className: string;
  /** Frees every tensor the components hold (weights, scheduler state). */
  dispose(): void;
}

const PIPELINES = new Map<string, PipelineClass>();

/**
 * Adds a pipeline class to the registry `DiffusionPipeline.fromPretrained` uses.
 *
 * @example
 * ```ts
 * import { registerPipeline } from "./pipeline.ts";
 * // registerPipeline(DDPMPipeline); — done by each pipeline module
 * ```
 */
export function registerPipeline(cls: PipelineClass): void {
  PIPELINES.set(cls.className, cls);
}

/**
 * Looks up a registered pipeline class; an unknown name lists the known ones.
 *
 * @example
 * ```ts
 * import { pipelineClass } from "./pipeline.ts";
 * try { pipelineClass("NoSuchPipeline"); } catch (e) { console.log((e as Error).message); }
 * ```
 */
export function pipelineClass(name: string, file?: string): PipelineClass {
  const cls = PIPELINES.get(name);
  if (!cls) throw new UnknownNameError("pipeline", name, [...PIPELINES.keys()].sort(), { file });
  return cls;
}

/**
 * Converts the final `[-1, 1]` NHWC sample to the requested output:
 * `(x / 2 + 0.5).clamp(0, 1)`, as every diffusers pipeline does. Takes
 * ownership of `sample`.
 *
 * @example
 * ```ts
 * import { tf } from "../tf.ts";
 * import { postprocess } from "./pipeline.ts";
 * const out = await postprocess(tf.zeros([1, 2, 2, 3]) as tf.Tensor4D, "image");
 * console.log(out.images[0].data[0]); // 128
 * ```
 */
export async function postprocess<T extends OutputType>(
  sample: tf.Tensor4D,
  outputType: T,
): Promise<PipelineOutput<T>> {
  const images = tf.tidy(() => tf.clipByValue(tf.add(tf.div(sample, 2), 0.5), 0, 1)) as tf.Tensor4D;
  sample.dispose();
  if (outputType === "tensor") return { images } as PipelineOutput<T>;
  if (outputType !== "image") {
    images.dispose();
    throw new ArgumentError(
      `outputType must be "image" or "tensor", got ${JSON.stringify(outputType)}`,
    );
  }
  try {
    return { images: await imagesFromTensor(images) } as PipelineOutput<T>;
  } finally {
    images.dispose();
  }
}

/**
 * Checks a step count: a positive integer.
 *
 * @example
 * ```ts
 * import { checkSteps } from "./pipeline.ts";
 * checkSteps(50);
 * ```
 */
export function checkSteps(numInferenceSteps: number): void {
  if (!Number.isInteger(numInferenceSteps) || numInferenceSteps < 1) {
    throw new ArgumentError(
      `numInferenceSteps must be a positive integer, got ${numInferenceSteps}`,
    );
  }
}

/**
 * One model evaluation: the prediction at `timestep` for `sample`. It is
 * called inside a tidy scope: a synchronous denoiser's intermediates are
 * freed when it returns. One whose model runs elsewhere (the UNet in
 * Workers, `workers: 2`) returns a Promise instead; its synchronous part
 * still runs in that scope, so it must `tf.keep` what it reads after its
 * first `await` and free that itself (see {@link afterModel}). The loop
 * disposes the prediction, and keeps `sample` alive until the Promise
 * settles.
 */
export type Denoiser = (sample: tf.Tensor, timestep: number) => tf.Tensor | Promise<tf.Tensor>;

/** A model's output as a pipeline's denoiser sees it: a tensor, or a Promise of one (Workers). */
export type ModelOutput<T extends tf.Tensor = tf.Tensor> = T | Promise<T>;

function isPromise<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown })?.then === "function";
}

/**
 * Finishes a denoiser: `combine(prediction)` (e.g. classifier-free
 * guidance) on the model's `output`. For a tensor this runs at once, in the
 * denoise loop's tidy scope, exactly as a synchronous denoiser always did.
 * For a Promise (a model in Workers) the `inputs` the denoiser made for the
 * model (not the sample it was given: the loop keeps that) are kept until
 * it settles, then freed; `combine` runs in a tidy scope of its own, and
 * the raw output is freed (unless `combine` returns it as is).
 *
 * @example
 * ```ts
 * import { tf } from "../tf.ts";
 * import { afterModel } from "./pipeline.ts";
 * const x = tf.zeros([1, 2, 2, 4]);
 * const input = tf.concat([x, x], 0);
 * // inputs: only tensors the denoiser made for the model (never the sample it was given)
 * const y = afterModel(Promise.resolve(tf.ones([2, 2, 2, 4])), (p) => tf.sum(p, 0), [input]);
 * ```
 */
export function afterModel(
  output: ModelOutput,
  combine: (prediction: tf.Tensor) => tf.Tensor,
  inputs: readonly tf.Tensor[] = [],
): ModelOutput {
  if (!isPromise(output)) return combine(output);
  const kept = inputs.map((t) => tf.keep(t));
  return output.then(
    (prediction) => {
      tf.dispose(kept);
      let result: tf.Tensor | undefined;
      try {
        result = tf.tidy(() => combine(prediction));
        return result;
      } finally {
        if (result !== prediction) prediction.dispose();
      }
    },
    (e) => {
      tf.dispose(kept);
      throw e;
    },
  );
}

/** How {@link denoise} walks the schedule. */
export interface DenoiseLoopOptions {
  /** The timesteps to run (default: all of `scheduler.timesteps`; img2img starts part-way). */
  timesteps?: readonly number[];
  /** Apply `scheduler.scaleModelInput` (default true; diffusers' LDM text-to-image pipeline does not). */
  scaleInput?: boolean;
}

/**
 * The denoising loop shared by pipelines: for each scheduler timestep,
 * predict with `model` and step the scheduler, each step in its own tidy
 * scope so only the new sample survives. Takes ownership of `sample` and
 * returns the final one. No host readback unless `onStep` reads the
 * latents; with a model in Workers (a denoiser that returns a Promise),
 * each step sends the model input's values to the Workers and gets the
 * prediction back, a readback that mode cannot avoid. Every tensor a step
 * makes but the new sample is freed either way.
 *
 * @example
 * ```ts
 * import { tf } from "../tf.ts";
 * import { DDIMScheduler } from "../../schedulers/ddim.ts";
 * import { denoise } from "./pipeline.ts";
 * const s = DDIMScheduler.fromConfig({});
 * s.setTimesteps(2);
 * const x = await denoise(s, (x) => tf.zerosLike(x), tf.zeros([1, 4, 4, 3]), {});
 * x.dispose();
 * ```
 */
export async function denoise(
  scheduler: Scheduler,
  model: Denoiser,
  sample: tf.Tensor,
  stepOptions: StepOptions,
  call: CallOptionsBase = {},
  loop: DenoiseLoopOptions = {},
): Promise<tf.Tensor> {
  const timesteps = loop.timesteps ?? scheduler.timesteps;
  const scaleInput = loop.scaleInput ?? true;
  let x = sample;
  try {
    for (let i = 0; i < timesteps.length; i++) {
      call.signal?.throwIfAborted();
      const t = timesteps[i]!;
      const current = x;
      const deferred: { prediction?: Promise<tf.Tensor>; input?: tf.Tensor } = {};
      x = tf.tidy(() => {
        const scaled = scaleInput ? scheduler.scaleModelInput(current, t) : current;
        const prediction = model(scaled, t);
        if (!isPromise(prediction)) {
          return scheduler.step(prediction, t, current, stepOptions).prevSample;
        }
        // The model runs elsewhere (Workers): step once its prediction arrives.
        deferred.prediction = prediction;
        if (scaled !== current) deferred.input = tf.keep(scaled);
        return current;
      });
      if (deferred.prediction) {
        let prediction: tf.Tensor;
        try {
          prediction = await deferred.prediction;
        } finally {
          deferred.input?.dispose();
        }
        try {
          x = tf.tidy(() => scheduler.step(prediction, t, current, stepOptions).prevSample);
        } finally {
          prediction.dispose();
        }
      }
      current.dispose();
      if (call.onStep) {
        await call.onStep({ step: i, numSteps: timesteps.length, timestep: t, latents: x });
      }
    }
  } catch (e) {
    x.dispose();
    throw e;
  }
  return x;
}
