/**
 * Scheduler classes by diffusers `_class_name`, so a `scheduler_config.json`
 * (or a name given on the command line) maps to its class.
 *
 * @example
 * ```ts
 * import { schedulerFromConfig } from "./registry.ts";
 * const s = schedulerFromConfig({ _class_name: "DDIMScheduler", num_train_timesteps: 1000 });
 * s.setTimesteps(50);
 * ```
 *
 * @module
 */

import type { ConfigDict } from "../lib/config.ts";
import { UnknownNameError } from "../lib/errors.ts";
import type { Scheduler } from "./scheduler.ts";
import { DDPMScheduler } from "./ddpm.ts";
import { DDIMScheduler } from "./ddim.ts";
import { PNDMScheduler } from "./pndm.ts";
import { LMSDiscreteScheduler } from "./lms_discrete.ts";
import { EulerDiscreteScheduler } from "./euler_discrete.ts";
import { EulerAncestralDiscreteScheduler } from "./euler_ancestral_discrete.ts";
import { HeunDiscreteScheduler } from "./heun_discrete.ts";
import { KDPM2DiscreteScheduler } from "./k_dpm_2_discrete.ts";
import { DPMSolverMultistepScheduler } from "./dpmsolver_multistep.ts";
import { UniPCMultistepScheduler } from "./unipc_multistep.ts";

/** What the registry needs of a scheduler class. */
export interface SchedulerClass {
  /** The config declaration, which holds the class name. */
  readonly spec: { readonly className: string };
  /** Class names whose configs this one accepts (diffusers' `_compatibles`). */
  readonly compatibles: readonly string[];
  /** Builds an instance from a config (defaults + json + overrides). */
  fromConfig(json?: ConfigDict, overrides?: ConfigDict): Scheduler;
}

const CLASSES: readonly SchedulerClass[] = [
  DDPMScheduler,
  DDIMScheduler,
  PNDMScheduler,
  LMSDiscreteScheduler,
  EulerDiscreteScheduler,
  EulerAncestralDiscreteScheduler,
  HeunDiscreteScheduler,
  KDPM2DiscreteScheduler,
  DPMSolverMultistepScheduler,
  UniPCMultistepScheduler,
];

/** Every scheduler class by name. */
export const SCHEDULERS: ReadonlyMap<string, SchedulerClass> = new Map(
  CLASSES.map((c) => [c.spec.className, c]),
);

/**
 * The scheduler class named `name`; an unknown name is an
 * {@link UnknownNameError} listing the valid ones.
 *
 * @example
 * ```ts
 * import { schedulerClass } from "./registry.ts";
 * const Euler = schedulerClass("DDIMScheduler");
 * ```
 */
export function schedulerClass(name: string, file?: string): SchedulerClass {
  const cls = SCHEDULERS.get(name);
  if (!cls) throw new UnknownNameError("scheduler", name, [...SCHEDULERS.keys()], { file });
  return cls;
}

/**
 * Builds a scheduler from a config: the class named by `className`, else by
 * the config's `_class_name`.
 *
 * @example
 * ```ts
 * import { schedulerFromConfig } from "./registry.ts";
 * const ddim = schedulerFromConfig({ _class_name: "PNDMScheduler" }, "DDIMScheduler");
 * console.log(ddim.className); // "DDIMScheduler"
 * ```
 */
export function schedulerFromConfig(
  json: ConfigDict,
  className?: string,
  file?: string,
): Scheduler {
  const name = className ?? json._class_name;
  if (typeof name !== "string") {
    throw new UnknownNameError("scheduler", String(name), [...SCHEDULERS.keys()], {
      file,
      key: "_class_name",
    });
  }
  return schedulerClass(name, file).fromConfig(json);
}
