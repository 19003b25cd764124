/**
 * The UNets run in Workers, shaped like the in-process models for the
 * pipelines (`config`, `forward(...)`, `dispose()`), except that `forward`
 * returns a Promise: the pipelines' denoise loop takes either
 * (lib/pipelines/pipeline.ts). {@link WorkerUNet2DCondition} stands for
 * UNet2DConditionModel (Stable Diffusion, LDM text-to-image),
 * {@link WorkerUNet2D} for UNet2DModel (DDPM, DDIM, PNDM, LDM). The config
 * is read and checked here, as the model's own loader would; each Worker
 * loads the weights from the folder itself, so the main thread holds none.
 * With two Workers the two classifier-free-guidance halves (or the items of
 * a batch) run at once. This is what `DiffusionPipeline.fromPretrained(id,
 * { workers: 2 })` loads. Deno only: Workers that import this library's
 * modules do not exist in a page.
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
import { type ConfigDict, type ConfigSpec, loadConfig, parseConfigJson } from "../config.ts";
import { NotFoundError } from "../errors.ts";
import { isNotFound, isUrl, readText } from "../files.ts";
import { type ModelSourceOptions, resolveComponentDir } from "../model_source.ts";
import { resolveInside } from "../weights/weight_files.ts";
import { UNet2DModel, type UNet2DModelConfig } from "../../models/unet_2d.ts";
import {
  type UNet2DConditionModelConfig,
  UNET_2D_CONDITION_SPEC,
} from "../../models/unet_2d_condition_config.ts";
import { ParallelModel, type ParallelModelOptions } from "./parallel_model.ts";
import type { UNet2DFactoryArgs } from "./unet_2d_factory.ts";

/** Options of the Worker UNets' `fromPretrained`. */
export interface WorkerUNetOptions extends ParallelModelOptions, ModelSourceOptions {
  /** Component subfolder (e.g. `unet`). */
  subfolder?: string;
}

/** Reads and checks the component's config.json as the model's own loader does. */
async function readConfig<C extends ConfigDict>(
  folder: string,
  spec: ConfigSpec<C>,
): Promise<Readonly<C>> {
  const file = `${folder}/${spec.configName}`;
  let text: string;
  try {
    text = await readText(isUrl(folder) ? file : await resolveInside(file, folder));
  } catch (cause) {
    if (isNotFound(cause)) throw new NotFoundError("config file not found", { file, cause });
    throw cause;
  }
  return loadConfig(spec, parseConfigJson(text, file), {}, file);
}

/** Options of the Worker UNets' `fromConfig`. */
export interface WorkerUNetConfigOptions extends ParallelModelOptions {
  /** Seed of the random weights, identical in every Worker (default 0). */
  seed?: number;
}

type Factory = "createUNet2D" | "createUNet2DCondition";

/** Starts the Workers, each building the model from `args`. */
function spawn(factory: Factory, args: UNet2DFactoryArgs, options: ParallelModelOptions) {
  const module = factory === "createUNet2D"
    ? "./unet_2d_factory.ts"
    : "./unet_2d_condition_factory.ts";
  return ParallelModel.create(
    { module: new URL(module, import.meta.url).href, factory, args },
    options,
  );
}

/** Resolves the folder, reads the config, and starts the Workers, each loading the model. */
async function start<C extends ConfigDict>(
  dir: string,
  options: WorkerUNetOptions,
  spec: ConfigSpec<C>,
  factory: Factory,
): Promise<[Readonly<C>, ParallelModel]> {
  const folder = await resolveComponentDir(dir, options);
  const config = await readConfig(folder, spec);
  const model = await spawn(factory, { pretrained: folder, variant: options.variant }, options);
  return [config, model];
}

/** Checks the config here, then starts the Workers, each building the model with seeded weights. */
async function startFromConfig<C extends ConfigDict>(
  json: ConfigDict,
  options: WorkerUNetConfigOptions,
  spec: ConfigSpec<C>,
  factory: Factory,
): Promise<[Readonly<C>, ParallelModel]> {
  const config = loadConfig(spec, json);
  const model = await spawn(factory, { config: json, seed: options.seed ?? 0 }, options);
  return [config, model];
}

/** What both Worker UNets share: the Workers, the batched call, and closing. */
abstract class WorkerUNet<C> {
  /** The model's resolved config (defaults filled in), as the in-process model has it. */
  readonly config: Readonly<C>;
  readonly #model: ParallelModel;

  protected constructor(config: Readonly<C>, model: ParallelModel) {
    this.config = config;
    this.#model = model;
  }

  /** Number of Workers. */
  get workers(): number {
    return this.#model.workers;
  }

  /** Milliseconds each Worker spent in its share of the last call (model time, no transfers). */
  get lastWorkerMs(): readonly number[] {
    return this.#model.lastWorkerMs;
  }

  /** `sample` at `timestep` (one per batch item) with any extra batched inputs, across the Workers. */
  protected async run(
    sample: tf.Tensor4D,
    timestep: number,
    extra: tf.Tensor[],
  ): Promise<tf.Tensor4D> {
    // Kept: the caller may be inside a tidy scope that ends before the Workers answer.
    const t = tf.keep(tf.fill([sample.shape[0]], timestep, "float32"));
    try {
      return await this.#model.forward([sample, t, ...extra]) as tf.Tensor4D;
    } finally {
      t.dispose();
    }
  }

  /**
   * Stops the Workers (their weights go with them).
   *
   * @example
   * ```ts
   * // unet.dispose();
   * ```
   */
  dispose(): void {
    this.#model.close();
  }
}

/**
 * UNet2DConditionModel in Workers; see the module doc.
 *
 * @example
 * ```ts
 * import { WorkerUNet2DCondition } from "./worker_unet.ts";
 * // const unet = await WorkerUNet2DCondition.fromPretrained(dir, { subfolder: "unet" });
 * ```
 */
export class WorkerUNet2DCondition extends WorkerUNet<UNet2DConditionModelConfig> {
  /**
   * Starts the Workers, each loading the UNet from a local folder (or a Hub
   * id, fetched first into the cache).
   *
   * @example
   * ```ts
   * import { WorkerUNet2DCondition } from "./worker_unet.ts";
   * // const unet = await WorkerUNet2DCondition.fromPretrained("/models/sd-1-5", { subfolder: "unet" });
   * ```
   */
  static async fromPretrained(
    dir: string,
    options: WorkerUNetOptions = {},
  ): Promise<WorkerUNet2DCondition> {
    const [config, model] = await start(
      dir,
      options,
      UNET_2D_CONDITION_SPEC,
      "createUNet2DCondition",
    );
    return new WorkerUNet2DCondition(config, model);
  }

  /**
   * Starts the Workers, each building the UNet from a config (a parsed
   * `config.json`) with seeded random weights, the same as
   * `UNet2DConditionModel.fromConfig(json, {}, { seed })` in this thread
   * (benchmarks at real sizes without the weights).
   *
   * @example
   * ```ts
   * import { WorkerUNet2DCondition } from "./worker_unet.ts";
   * const unet = await WorkerUNet2DCondition.fromConfig({ block_out_channels: [32, 64],
   *   cross_attention_dim: 32, attention_head_dim: 8, layers_per_block: 1,
   *   down_block_types: ["CrossAttnDownBlock2D", "DownBlock2D"],
   *   up_block_types: ["UpBlock2D", "CrossAttnUpBlock2D"] }, { seed: 0, workers: 2 });
   * unet.dispose();
   * ```
   */
  static async fromConfig(
    json: ConfigDict,
    options: WorkerUNetConfigOptions = {},
  ): Promise<WorkerUNet2DCondition> {
    const [config, model] = await startFromConfig(
      json,
      options,
      UNET_2D_CONDITION_SPEC,
      "createUNet2DCondition",
    );
    return new WorkerUNet2DCondition(config, model);
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
  forward(
    sample: tf.Tensor4D,
    timestep: number,
    encoderHiddenStates: tf.Tensor3D,
  ): Promise<tf.Tensor4D> {
    return this.run(sample, timestep, [encoderHiddenStates]);
  }
}

/**
 * UNet2DModel in Workers; see the module doc.
 *
 * @example
 * ```ts
 * import { WorkerUNet2D } from "./worker_unet.ts";
 * // const unet = await WorkerUNet2D.fromPretrained(dir, { subfolder: "unet" });
 * ```
 */
export class WorkerUNet2D extends WorkerUNet<UNet2DModelConfig> {
  /**
   * Starts the Workers, each loading the UNet from a local folder (or a Hub
   * id, fetched first into the cache).
   *
   * @example
   * ```ts
   * import { WorkerUNet2D } from "./worker_unet.ts";
   * // const unet = await WorkerUNet2D.fromPretrained("google/ddpm-cat-256", { workers: 2 });
   * ```
   */
  static async fromPretrained(dir: string, options: WorkerUNetOptions = {}): Promise<WorkerUNet2D> {
    const [config, model] = await start(dir, options, UNet2DModel.spec, "createUNet2D");
    return new WorkerUNet2D(config, model);
  }

  /**
   * Starts the Workers, each building the UNet from a config with seeded
   * random weights, as `UNet2DModel.fromConfig(json, {}, { seed })`.
   *
   * @example
   * ```ts
   * import { WorkerUNet2D } from "./worker_unet.ts";
   * const unet = await WorkerUNet2D.fromConfig({ block_out_channels: [32, 64],
   *   down_block_types: ["DownBlock2D", "DownBlock2D"], up_block_types: ["UpBlock2D", "UpBlock2D"] });
   * unet.dispose();
   * ```
   */
  static async fromConfig(
    json: ConfigDict,
    options: WorkerUNetConfigOptions = {},
  ): Promise<WorkerUNet2D> {
    const [config, model] = await startFromConfig(json, options, UNet2DModel.spec, "createUNet2D");
    return new WorkerUNet2D(config, model);
  }

  /**
   * The prediction for an NHWC sample `[B, H, W, C]` at `timestep`; the
   * batch is split across the Workers.
   *
   * @example
   * ```ts
   * // const eps = await unet.forward(sample, 500);
   * ```
   */
  forward(sample: tf.Tensor4D, timestep: number): Promise<tf.Tensor4D> {
    return this.run(sample, timestep, []);
  }
}
