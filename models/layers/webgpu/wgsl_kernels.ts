/**
 * When the project's own WGSL kernels run, and how one is run. The fused
 * GroupNorm(+SiLU) ({@link ./group_norm_program.ts}) and flash-style
 * attention ({@link ./attention_program.ts}) replace the composed tfjs ops
 * only on the `webgpu` backend, and only while they are enabled: on by
 * default, off with `DIFFUSERS_WGSL=0` in the environment or
 * {@link setWgslKernels}(false) (to compare against the composed ops).
 * Other backends never see them. The environment is read on first use, not
 * at import, so a page can import this module.
 *
 * @example
 * ```ts
 * import { setWgslKernels, wgslKernelsActive } from "./wgsl_kernels.ts";
 * setWgslKernels(false);             // composed tfjs ops everywhere
 * console.log(wgslKernelsActive());  // false
 * setWgslKernels(undefined);         // back to the default (DIFFUSERS_WGSL, else on)
 * ```
 *
 * @module
 */

import { tf } from "../../../lib/tf.ts";
import { getEnv } from "../../../lib/env.ts";
import type { WebGPUBackend, WebGPUProgram } from "@tensorflow/tfjs-backend-webgpu";

let override: boolean | undefined;
let fromEnv: boolean | undefined;

/**
 * Turns the WGSL kernels on or off for this process; `undefined` restores
 * the default (`DIFFUSERS_WGSL=0` means off, anything else on).
 *
 * @example
 * ```ts
 * import { setWgslKernels } from "./wgsl_kernels.ts";
 * setWgslKernels(false); // measure the composed ops
 * setWgslKernels(true);
 * ```
 */
export function setWgslKernels(enabled: boolean | undefined): void {
  override = enabled;
}

/**
 * Whether the WGSL kernels are enabled (whatever the backend).
 *
 * @example
 * ```ts
 * import { wgslKernelsEnabled } from "./wgsl_kernels.ts";
 * console.log(wgslKernelsEnabled()); // true unless DIFFUSERS_WGSL=0 or switched off
 * ```
 */
export function wgslKernelsEnabled(): boolean {
  if (override !== undefined) return override;
  fromEnv ??= getEnv("DIFFUSERS_WGSL") !== "0";
  return fromEnv;
}

/**
 * Whether a layer should call a WGSL kernel now: enabled, and tfjs' current
 * backend is `webgpu`.
 *
 * @example
 * ```ts
 * import { wgslKernelsActive } from "./wgsl_kernels.ts";
 * console.log(wgslKernelsActive()); // false on wasm / cpu
 * ```
 */
export function wgslKernelsActive(): boolean {
  return tf.getBackend() === "webgpu" && wgslKernelsEnabled();
}

/** One program-defined uniform, in the order of the program's `uniforms` string. */
export interface ProgramUniform {
  /** WGSL type of the field: `int32` → i32, `float32` → f32. */
  type: "int32" | "float32";
  /** The value(s). */
  data: number[];
}

/**
 * Runs `program` on the current (webgpu) backend and returns its float32
 * output as a tensor owned by the caller (tracked by the enclosing
 * `tf.tidy`, like any op's result).
 *
 * @example
 * ```ts
 * import { tf } from "../../../lib/tf.ts";
 * import { runProgram } from "./wgsl_kernels.ts";
 * import { GroupNormProgram } from "./group_norm_program.ts";
 * // on webgpu only:
 * const x = tf.ones([1, 16, 8]);
 * const p = new GroupNormProgram([1, 16, 8], 2, false);
 * const y = runProgram(p, [x, tf.ones([8]), tf.zeros([8])], p.uniformData(1e-5));
 * ```
 */
export function runProgram(
  program: WebGPUProgram,
  inputs: tf.Tensor[],
  uniforms: ProgramUniform[],
): tf.Tensor {
  const backend = tf.backend() as unknown as WebGPUBackend;
  const info = backend.runWebGPUProgram(program, inputs, "float32", uniforms);
  return tf.engine().makeTensorFromTensorInfo(info);
}
