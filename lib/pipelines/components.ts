/**
 * Component loading: maps a `model_index.json` class name to the code that
 * loads it from the component's folder (`unet/`, `scheduler/`, ...; the root
 * folder for flat repos).
 *
 * @example
 * ```ts
 * import { loadComponent } from "./components.ts";
 * const scheduler = await loadComponent("/models/ddpm_tiny", "scheduler", "DDPMScheduler", {});
 * ```
 *
 * @module
 */

import { parseConfigJson } from "../config.ts";
import { logger } from "../log.ts";
import { tf } from "../tf.ts";
import { packsWeights } from "../../models/layers/weight_packing.ts";
import { UNET_2D_CONDITION_SPEC } from "../../models/unet_2d_condition_config.ts";
import { readModelConfig } from "../../models/pretrained.ts";
import { NotFoundError, UnknownNameError } from "../errors.ts";
import { resolveInside } from "../weights/weight_files.ts";
import { isNotFound, isUrl, readText, tokenizerSourceAt } from "../files.ts";
import type { ProgressCallback } from "../hub/download.ts";
import { schedulerClass, SCHEDULERS } from "../../schedulers/registry.ts";
import { UNet2DModel } from "../../models/unet_2d.ts";
import { CLIPTextModel } from "../../models/clip_text.ts";
import { LDMBertModel } from "../../models/ldm_bert.ts";
import { UNet2DConditionModel } from "../../models/unet_2d_condition.ts";
import { AutoencoderKL } from "../../models/autoencoder_kl.ts";
import { VQModel } from "../../models/vq_model.ts";
import { loadTokenizer } from "../tokenizers/mod.ts";
import {
  WorkerUNet2D,
  WorkerUNet2DCondition,
  type WorkerUNetOptions,
} from "../workers/worker_unet.ts";
import type { LatentAutoencoder } from "./latent_models.ts";
import type { PromptEncoder } from "./conditioning.ts";

/** Options every component loader takes. */
export interface ComponentOptions {
  /** Weight file variant (`"fp16"`). */
  variant?: string;
  /** Sees each weight file a URL folder downloads. */
  onDownload?: ProgressCallback;
  /**
   * Run a UNet (UNet2DModel, UNet2DConditionModel) in this many Deno Workers
   * (lib/workers/worker_unet.ts) when more than 1; 1: in this thread. Left
   * out: in this thread, except a UNet2DConditionModel too large for one
   * WASM heap beside the rest of its pipeline (SD's, LDM's: see
   * {@link autoWorkers}), which gets 2 Workers under Deno.
   */
  workers?: number;
  /** The backend the Workers start (default `wasm`). */
  workerBackend?: "wasm" | "cpu";
}

type Loader = (dir: string, options: ComponentOptions) => Promise<unknown>;

/** A text encoder seen as a {@link PromptEncoder}: ids in, last hidden states out. */
function promptEncoder(
  model: { dispose(): void },
  encode: (ids: number[][]) => tf.Tensor3D,
): PromptEncoder {
  return { encodeIds: encode, dispose: () => model.dispose() };
}

/** An AutoencoderKL seen as a {@link LatentAutoencoder}: encoding draws a latent sample. */
function latentAutoencoder(vae: AutoencoderKL): LatentAutoencoder {
  return {
    config: vae.config,
    decode: (latents) => vae.decode(latents),
    encodeSample: (images, generator) => {
      const posterior = vae.encode(images);
      const z = posterior.sample(generator);
      posterior.dispose();
      return z;
    },
    dispose: () => vae.dispose(),
  };
}

/** The options of a UNet in Workers, or `undefined` to load it in this thread. */
function inWorkers(options: ComponentOptions): WorkerUNetOptions | undefined {
  const workers = options.workers ?? 1;
  if (workers === 1) return undefined;
  return { workers, backend: options.workerBackend, variant: options.variant };
}

/**
 * Workers for a UNet2DConditionModel when the caller did not choose: 2 in
 * Deno on the wasm backend when its weights would be kept packed only
 * (models/layers/weight_packing.ts: over 1.5 GiB, SD's and LDM's 3.4 GB),
 * since then the UNet, its text encoder and its VAE do not fit one 4 GiB
 * heap together; else 1 (this thread).
 */
async function autoWorkers(dir: string, options: ComponentOptions): Promise<number> {
  if (options.workers !== undefined) return options.workers;
  if (!("Deno" in globalThis) || tf.getBackend() !== "wasm") return 1;
  const config = await readModelConfig(dir, UNET_2D_CONDITION_SPEC);
  // Parameters without values: the shapes are all that is needed.
  const bytes = 4 * new UNet2DConditionModel(config).parameterCount();
  if (!packsWeights(bytes)) return 1;
  logger.info(
    `the UNet's ${
      (bytes / 2 ** 30).toFixed(1)
    } GiB of weights run in 2 Workers (its own WASM heaps); ` +
      "pass workers: 1 to keep it in this thread",
  );
  return 2;
}

const MODEL_LOADERS: Record<string, Loader> = {
  UNet2DModel: (dir, options) => {
    const workers = inWorkers(options);
    return workers
      ? WorkerUNet2D.fromPretrained(dir, workers)
      : UNet2DModel.fromPretrained(dir, options);
  },
  UNet2DConditionModel: async (dir, options) => {
    const workers = inWorkers({ ...options, workers: await autoWorkers(dir, options) });
    return workers
      ? WorkerUNet2DCondition.fromPretrained(dir, workers)
      : UNet2DConditionModel.fromPretrained(dir, options);
  },
  AutoencoderKL: async (dir, options) =>
    latentAutoencoder(await AutoencoderKL.fromPretrained(dir, options)),
  VQModel: (dir, options) => VQModel.fromPretrained(dir, options),
  CLIPTextModel: async (dir, options) => {
    const model = await CLIPTextModel.fromPretrained(dir, options);
    return promptEncoder(model, (ids) => {
      const { lastHiddenState, pooledOutput } = model.forward(ids);
      pooledOutput.dispose();
      return lastHiddenState;
    });
  },
  LDMBertModel: async (dir, options) => {
    const model = await LDMBertModel.fromPretrained(dir, options);
    return promptEncoder(model, (ids) => model.forward(ids));
  },
  BertTokenizer: (dir) => loadTokenizer(tokenizerSourceAt(dir), "BertTokenizer"),
  BertTokenizerFast: (dir) => loadTokenizer(tokenizerSourceAt(dir), "BertTokenizerFast"),
  CLIPTokenizer: (dir) => loadTokenizer(tokenizerSourceAt(dir), "CLIPTokenizer"),
  CLIPTokenizerFast: (dir) => loadTokenizer(tokenizerSourceAt(dir), "CLIPTokenizerFast"),
};

async function loadScheduler(dir: string, className: string): Promise<unknown> {
  const path = `${dir}/scheduler_config.json`;
  let text: string;
  try {
    // A URL folder has no symlinks to escape through.
    text = await readText(isUrl(dir) ? path : await resolveInside(path, dir));
  } catch (e) {
    if (isNotFound(e)) {
      throw new NotFoundError("scheduler config is missing", { file: path });
    }
    throw e;
  }
  return schedulerClass(className, path).fromConfig(parseConfigJson(text, path));
}

/**
 * Loads the component `className` from `root/subfolder` (`subfolder` is
 * `""` for flat repos). An unknown class lists the classes this library
 * can load.
 *
 * @example
 * ```ts
 * import { loadComponent } from "./components.ts";
 * const unet = await loadComponent("/models/ddpm_tiny", "unet", "UNet2DModel", {});
 * ```
 */
export async function loadComponent(
  root: string,
  subfolder: string,
  className: string,
  options: ComponentOptions,
): Promise<unknown> {
  const dir = subfolder ? `${root}/${subfolder}` : root;
  // A component folder that is a symlink out of the model folder is refused before it is read.
  if (subfolder && !isUrl(root)) await resolveInside(dir, root).catch(ignoreMissing);
  if (SCHEDULERS.has(className)) return loadScheduler(dir, className);
  const loader = MODEL_LOADERS[className];
  if (!loader) {
    const known = [...Object.keys(MODEL_LOADERS), ...SCHEDULERS.keys()].sort();
    throw new UnknownNameError("component class", className, known, {
      file: `${root}/model_index.json`,
      key: subfolder,
    });
  }
  return await loader(dir, options);
}

/** A missing folder is reported by the loader, with the file it looked for. */
function ignoreMissing(e: unknown): void {
  if (!isNotFound(e)) throw e;
}
