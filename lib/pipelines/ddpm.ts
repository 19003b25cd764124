/**
 * `DDPMPipeline`: unconditional generation with the ancestral sampler of
 * Ho et al. (2020), 1000 steps by default, as in diffusers.
 *
 * @example
 * ```ts
 * import { DDPMPipeline } from "./ddpm.ts";
 * import { DiffusionPipeline } from "./diffusion_pipeline.ts";
 * const pipe = await DiffusionPipeline.fromPretrained("google/ddpm-cat-256") as DDPMPipeline;
 * ```
 *
 * @module
 */

import type { Scheduler } from "../../schedulers/scheduler.ts";
import { registerPipeline } from "./pipeline.ts";
import { UnconditionalPipeline, type UnconditionalUNet } from "./unconditional.ts";

/** diffusers' `DDPMPipeline`. */
export class DDPMPipeline extends UnconditionalPipeline {
  /** The diffusers `_class_name`. */
  static readonly className = "DDPMPipeline";
  /** The diffusers `_class_name`. */
  readonly className: string = DDPMPipeline.className;
  protected readonly defaultSteps: number = 1000;

  /**
   * Builds the pipeline from loaded components.
   *
   * @example
   * ```ts
   * import { DDPMPipeline } from "./ddpm.ts";
   * // const pipe = DDPMPipeline.fromComponents({ unet, scheduler });
   * ```
   */
  static fromComponents(components: Record<string, unknown>): DDPMPipeline {
    return new DDPMPipeline(
      components.unet as UnconditionalUNet,
      components.scheduler as Scheduler,
    );
  }
}

registerPipeline(DDPMPipeline);
