/**
 * {@link ParallelModel} factory for UNet2DModel: a worker builds it from a
 * pretrained folder (each worker reads the weights itself) or from a config
 * with seeded random weights (identical in every worker), and runs
 * `forward(sample, timestep)` with inputs `[sample NHWC, timesteps [B]]`.
 *
 * @example
 * ```ts
 * import { ParallelModel } from "./parallel_model.ts";
 * const unet = await ParallelModel.create({
 *   module: new URL("./unet_2d_factory.ts", import.meta.url).href,
 *   factory: "createUNet2D",
 *   args: { config: { block_out_channels: [32, 64] }, seed: 0 },
 * });
 * unet.close();
 * ```
 *
 * @module
 */

import type { tf } from "../tf.ts";
import type { ConfigDict } from "../config.ts";
import { UNet2DModel } from "../../models/unet_2d.ts";
import type { WorkerModel } from "./protocol.ts";

/** Arguments of {@link createUNet2D}: `pretrained` (+ `subfolder`), or `config` (+ `seed`). */
export interface UNet2DFactoryArgs {
  /** Local folder or Hub id, as for `UNet2DModel.fromPretrained`. */
  pretrained?: string;
  /** Component subfolder of `pretrained` (e.g. `unet`). */
  subfolder?: string;
  /** Weight file variant (`"fp16"`). */
  variant?: string;
  /** A config (JSON object) for random weights, when there is no `pretrained`. */
  config?: ConfigDict;
  /** Seed of the random weights (default 0). */
  seed?: number;
}

/**
 * Builds the UNet inside a worker.
 *
 * @example
 * ```ts
 * // used by name: { module: ".../unet_2d_factory.ts", factory: "createUNet2D", args }
 * ```
 */
export async function createUNet2D(args: unknown): Promise<WorkerModel> {
  const a = (args ?? {}) as UNet2DFactoryArgs;
  const unet = a.pretrained !== undefined
    ? await UNet2DModel.fromPretrained(a.pretrained, { subfolder: a.subfolder, variant: a.variant })
    : UNet2DModel.fromConfig(a.config ?? {}, {}, { seed: a.seed ?? 0 });
  return {
    forward: (inputs: tf.Tensor[]): tf.Tensor =>
      unet.forward(inputs[0] as tf.Tensor4D, inputs[1] as tf.Tensor),
    dispose: (): void => unet.dispose(),
  };
}
