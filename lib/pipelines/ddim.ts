/**
 * `DDIMPipeline`: unconditional generation with denoising diffusion
 * implicit models (Song et al. 2021), 50 steps by default. Like diffusers,
 * it converts whatever scheduler it is given to a `DDIMScheduler` with the
 * same config, and passes `eta` and `useClippedModelOutput` to each step.
 *
 * @example
 * ```ts
 * import { DDIMPipeline } from "./ddim.ts";
 * import { DiffusionPipeline } from "./diffusion_pipeline.ts";
 * const pipe = await DiffusionPipeline.fromPretrained("./ddim_tiny") as DDIMPipeline;
 * const { images } = await pipe.call({ numInferenceSteps: 10, eta: 0 });
 * ```
 *
 * @module
 */

import type { Scheduler, StepOptions } from "../../schedulers/scheduler.ts";
import { DDIMScheduler } from "../../schedulers/ddim.ts";
import type { OutputType, PipelineOutput } from "./pipeline.ts";
import { registerPipeline } from "./pipeline.ts";
import {
  type UnconditionalCallOptions,
  UnconditionalPipeline,
  type UnconditionalUNet,
} from "./unconditional.ts";

/** Arguments of a DDIM pipeline call. */
export interface DDIMCallOptions<T extends OutputType = "image">
  extends UnconditionalCallOptions<T> {
  /** Weight of the noise in each step: 0 is deterministic DDIM, 1 is DDPM-like (default 0). */
  eta?: number;
  /** Recompute the predicted noise from the clipped x0 (default false). */
  useClippedModelOutput?: boolean;
}

/** diffusers' `DDIMPipeline`. */
export class DDIMPipeline extends UnconditionalPipeline {
  /** The diffusers `_class_name`. */
  static readonly className = "DDIMPipeline";
  /** The diffusers `_class_name`. */
  readonly className: string = DDIMPipeline.className;
  protected readonly defaultSteps: number = 50;

  /** Converts any scheduler to a DDIMScheduler with the same config, as diffusers does. */
  constructor(unet: UnconditionalUNet, scheduler: Scheduler) {
    super(
      unet,
      scheduler.className === DDIMScheduler.spec.className
        ? scheduler
        : DDIMScheduler.fromConfig(scheduler.config),
    );
  }

  /**
   * Generates images; see {@link UnconditionalPipeline.call}, plus `eta`
   * and `useClippedModelOutput`.
   *
   * @example
   * ```ts
   * import { DDIMPipeline } from "./ddim.ts";
   * // const { images } = await pipe.call({ numInferenceSteps: 50, eta: 0.5 });
   * ```
   */
  override call<T extends OutputType = "image">(
    options: DDIMCallOptions<T> = {},
  ): Promise<PipelineOutput<T>> {
    return super.call(options);
  }

  protected override stepOptions(options: DDIMCallOptions<OutputType>): StepOptions {
    return { eta: options.eta ?? 0, useClippedModelOutput: options.useClippedModelOutput ?? false };
  }

  /**
   * Builds the pipeline from loaded components.
   *
   * @example
   * ```ts
   * import { DDIMPipeline } from "./ddim.ts";
   * // const pipe = DDIMPipeline.fromComponents({ unet, scheduler });
   * ```
   */
  static fromComponents(components: Record<string, unknown>): DDIMPipeline {
    return new DDIMPipeline(
      components.unet as UnconditionalUNet,
      components.scheduler as Scheduler,
    );
  }
}

registerPipeline(DDIMPipeline);
