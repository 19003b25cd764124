/**
 * {@link ParallelModel} factory for UNet2DConditionModel (Stable Diffusion,
 * ldm-text2im-large-256): a worker builds it from a pretrained folder or
 * from a config with seeded random weights (identical in every worker), and
 * runs `forward(sample, timestep, encoderHiddenStates)` with inputs
 * `[latents NHWC [B, h, w, 4], timesteps [B], text embeddings [B, 77, D]]`.
 * With classifier-free guidance the batch is [unconditional; conditional],
 * so two workers take one half each.
 *
 * @example
 * ```ts
 * import { ParallelModel } from "./parallel_model.ts";
 * const unet = await ParallelModel.create({
 *   module: new URL("./unet_2d_condition_factory.ts", import.meta.url).href,
 *   factory: "createUNet2DCondition",
 *   args: { pretrained: "../shared/fixtures/pipelines/sd_tiny", subfolder: "unet" },
 * });
 * unet.close();
 * ```
 *
 * @module
 */

import type { tf } from "../tf.ts";
import { UNet2DConditionModel } from "../../models/unet_2d_condition.ts";
import type { UNet2DFactoryArgs } from "./unet_2d_factory.ts";
import type { WorkerModel } from "./protocol.ts";

/**
 * Builds the conditional UNet inside a worker; arguments as for
 * UNet2DModel's factory (`pretrained` + `subfolder` + `variant`, or `config` + `seed`).
 *
 * @example
 * ```ts
 * // used by name: { module: ".../unet_2d_condition_factory.ts", factory: "createUNet2DCondition", args }
 * ```
 */
export async function createUNet2DCondition(args: unknown): Promise<WorkerModel> {
  const a = (args ?? {}) as UNet2DFactoryArgs;
  const unet = a.pretrained !== undefined
    ? await UNet2DConditionModel.fromPretrained(a.pretrained, {
      subfolder: a.subfolder,
      variant: a.variant,
    })
    : UNet2DConditionModel.fromConfig(a.config ?? {}, {}, { seed: a.seed ?? 0 });
  return {
    forward: (inputs: tf.Tensor[]): tf.Tensor =>
      unet.forward(inputs[0] as tf.Tensor4D, inputs[1] as tf.Tensor, inputs[2] as tf.Tensor3D),
    dispose: (): void => unet.dispose(),
  };
}
