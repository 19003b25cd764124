/**
 * A UNet2DConditionModel run in Workers, shaped like the in-process model
 * for the pipelines (`config`, `forward(sample, timestep, context)`,
 * `dispose()`), except that `forward` returns a Promise: a pipeline that
 * awaits the UNet's prediction can take either. Each Worker loads the
 * weights from the folder itself, so the main thread holds none; with two
 * Workers the two classifier-free-guidance halves run at once.
 *
 * @example
 * ```ts
 * import { tf } from "../tf.ts";
 * import { WorkerUNet2DCondition } from "./worker_unet.ts";
 * const unet = await WorkerUNet2DCondition.fromPretrained("../shared/fixtures/pipelines/sd_tiny", {
 *   subfolder: "unet",
 *   workers: 2,
 * });
 * const eps = await unet.forward(tf.zeros([2, 16, 16, 4]), 981, tf.zeros([2, 77, 32]));
 * unet.dispose();
 * ```
 *
 * @module
 */

import { tf } from "../tf.ts";
import { parseConfigJson } from "../config.ts";
import { resolveComponentDir } from "../model_source.ts";
import { ParallelModel, type ParallelModelOptions } from "./parallel_model.ts";

/** Options of {@link WorkerUNet2DCondition.fromPretrained}. */
export interface WorkerUNetOptions extends ParallelModelOptions {
  /** Component subfolder (e.g. `unet`). */
  subfolder?: string;
}

/** The config keys the pipelines read. */
export interface WorkerUNetConfig {
  /** Latent channels. */
  readonly in_channels: number;
  /** Latent size the model was trained at. */
  readonly sample_size: number | readonly number[] | null;
  /** Text embedding width. */
  readonly cross_attention_dim: number;
}

/**
 * The conditional UNet in Workers; see the module doc.
 *
 * @example
 * ```ts
 * // const unet = await WorkerUNet2DCondition.fromPretrained(dir, { subfolder: "unet" });
 * ```
 */
export class WorkerUNet2DCondition {
  /** From the folder's config.json. */
  readonly config: WorkerUNetConfig;
  readonly #model: ParallelModel;

  private constructor(config: WorkerUNetConfig, model: ParallelModel) {
    this.config = config;
    this.#model = model;
  }

  /**
   * Starts the Workers, each loading the UNet from a local folder.
   *
   * @example
   * ```ts
   * // const unet = await WorkerUNet2DCondition.fromPretrained("/models/sd-1-5", { subfolder: "unet" });
   * ```
   */
  static async fromPretrained(
    dir: string,
    options: WorkerUNetOptions = {},
  ): Promise<WorkerUNet2DCondition> {
    const folder = await resolveComponentDir(dir, { subfolder: options.subfolder });
    const json = parseConfigJson(await Deno.readTextFile(`${folder}/config.json`));
    const config: WorkerUNetConfig = {
      in_channels: Number(json.in_channels ?? 4),
      sample_size: (json.sample_size ?? null) as number | number[] | null,
      cross_attention_dim: Number(json.cross_attention_dim ?? 1280),
    };
    const model = await ParallelModel.create({
      module: new URL("./unet_2d_condition_factory.ts", import.meta.url).href,
      factory: "createUNet2DCondition",
      args: { pretrained: folder },
    }, options);
    return new WorkerUNet2DCondition(config, model);
  }

  /** Number of Workers. */
  get workers(): number {
    return this.#model.workers;
  }

  /**
   * The prediction for NHWC latents `[B, h, w, C]` at `timestep`, given
   * text embeddings `[B, T, D]`; the batch is split across the Workers.
   *
   * @example
   * ```ts
   * // const eps = await unet.forward(tf.concat([latents, latents]), t, tf.concat([uncond, cond]));
   * ```
   */
  async forward(
    sample: tf.Tensor4D,
    timestep: number,
    encoderHiddenStates: tf.Tensor3D,
  ): Promise<tf.Tensor4D> {
    const t = tf.fill([sample.shape[0]], timestep, "float32");
    try {
      return await this.#model.forward([sample, t, encoderHiddenStates]) as tf.Tensor4D;
    } finally {
      t.dispose();
    }
  }

  /** Stops the Workers (their weights go with them). */
  dispose(): void {
    this.#model.close();
  }
}
