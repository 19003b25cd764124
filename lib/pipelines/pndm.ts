/**
 * `PNDMPipeline`: unconditional generation with pseudo numerical methods
 * (Liu et al. 2022), 50 steps by default, as in diffusers.
 *
 * @example
 * ```ts
 * import { PNDMPipeline } from "./pndm.ts";
 * import { DiffusionPipeline } from "./diffusion_pipeline.ts";
 * const pipe = await DiffusionPipeline.fromPretrained("./pndm_tiny") as PNDMPipeline;
 * ```
 *
 * @module
 */

import type { Scheduler } from "../../schedulers/scheduler.ts";
import { registerPipeline } from "./pipeline.ts";
import { UnconditionalPipeline, type UnconditionalUNet } from "./unconditional.ts";

/** diffusers' `PNDMPipeline`. */
export class PNDMPipeline extends UnconditionalPipeline {
  /** The diffusers `_class_name`. */
  static readonly className = "PNDMPipeline";
  /** The diffusers `_class_name`. */
  readonly className: string = PNDMPipeline.className;
  protected readonly defaultSteps: number = 50;

  /**
   * Builds the pipeline from loaded components.
   *
   * @example
   * ```ts
   * import { PNDMPipeline } from "./pndm.ts";
   * // const pipe = PNDMPipeline.fromComponents({ unet, scheduler });
   * ```
   */
  static fromComponents(components: Record<string, unknown>): PNDMPipeline {
    return new PNDMPipeline(
      components.unet as UnconditionalUNet,
      components.scheduler as Scheduler,
    );
  }
}

registerPipeline(PNDMPipeline);
