/**
 * `DiffusionPipeline.fromPretrained`: reads `model_index.json` (or a flat
 * repo whose `config.json` and `scheduler_config.json` sit at the root, like
 * google/ddpm-cat-256), loads each component through the component registry,
 * and builds the pipeline class `_class_name` names.
 *
 * @example
 * ```ts
 * import { DiffusionPipeline } from "./diffusion_pipeline.ts";
 * import { DDIMScheduler } from "../../schedulers/ddim.ts";
 * import type { DDPMPipeline } from "./ddpm.ts";
 * const pipe = await DiffusionPipeline.fromPretrained("google/ddpm-cat-256") as DDPMPipeline;
 * pipe.scheduler = DDIMScheduler.fromConfig(pipe.scheduler.config);
 * ```
 *
 * @module
 */

import { type ConfigDict, parseConfigJson } from "../config.ts";
import { ConfigError, NotFoundError, PathEscapeError } from "../errors.ts";
import { type BackendChoice, ensureReady } from "../backend.ts";
import { fetchModelIndex, type ModelSourceOptions, resolveModelDir } from "../model_source.ts";
import { loadComponent } from "./components.ts";
import { isNotFound, readText } from "../files.ts";
import { type Pipeline, pipelineClass } from "./pipeline.ts";
import { checkWorkers } from "../workers/parallel_model.ts";
import "./ddpm.ts";
import "./ddim.ts";
import "./pndm.ts";
import "./latent_diffusion.ts";
import "./latent_diffusion_uncond.ts";
import "./stable_diffusion.ts";
import "./stable_diffusion_img2img.ts";

/** Options of {@link DiffusionPipeline.fromPretrained}. */
export interface FromPretrainedOptions extends ModelSourceOptions {
  /** Weight file variant, e.g. `"fp16"` for `diffusion_pytorch_model.fp16.safetensors`. */
  variant?: string;
  /** Components to use instead of loading them, by `model_index.json` name (e.g. `{ scheduler }`). */
  components?: Record<string, unknown>;
  /** Backend to run on (default: the one already started, else `auto`). */
  backend?: BackendChoice;
  /**
   * Run the UNet in this many Deno Workers, each with its own WASM backend
   * and its own copy of the UNet's weights (1: everything in this thread;
   * default: 2 on WASM in Deno for a UNet2DConditionModel over 1.5 GiB of
   * weights, SD's and LDM's, which do not fit one heap beside their text
   * encoder and VAE; else 1). Each step's batch is split across them: with 2, the two
   * classifier-free-guidance halves of a Stable Diffusion or LDM step (or
   * the items of a batch) run on two cores at once, with latents identical
   * to one thread's. Each step sends the latents to the Workers and back,
   * so only big UNets (Stable Diffusion size) gain. A UNet given in
   * `components` is used as it is. `pipeline.dispose()` stops the Workers.
   * Deno only.
   */
  workers?: number;
}

/** The parsed `model_index.json`: pipeline class and `[library, class]` per component. */
export interface ModelIndex {
  /** The pipeline's `_class_name`. */
  className: string;
  /** Component name → `[library, class]`, or `null` for an absent optional component. */
  components: Record<string, [string, string] | null>;
  /** For a flat repo: every component lives in the root folder. */
  flat: boolean;
}

const COMPONENT_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

/**
 * Parses `model_index.json`: keys starting with `_` are metadata, every other
 * key is a component given as `[library, class]` (or `[null, null]` when the
 * pipeline was saved without it). Component names must be plain folder names.
 *
 * @example
 * ```ts
 * import { parseModelIndex } from "./diffusion_pipeline.ts";
 * const index = parseModelIndex({ _class_name: "DDPMPipeline", unet: ["diffusers", "UNet2DModel"],
 *   scheduler: ["diffusers", "DDPMScheduler"] });
 * console.log(Object.keys(index.components)); // ["unet", "scheduler"]
 * ```
 */
export function parseModelIndex(json: ConfigDict, file = "model_index.json"): ModelIndex {
  const className = json._class_name;
  if (typeof className !== "string") {
    throw new ConfigError("missing the pipeline's _class_name", { file, key: "_class_name" });
  }
  const components: Record<string, [string, string] | null> = {};
  for (const [name, value] of Object.entries(json)) {
    if (name.startsWith("_")) continue;
    if (!COMPONENT_NAME.test(name) || name === "." || name === "..") {
      throw new PathEscapeError(
        `component name ${JSON.stringify(name)} is not a plain folder name`,
        {
          file,
          key: name,
        },
      );
    }
    if (!Array.isArray(value) || value.length !== 2) {
      // Pipeline options saved in model_index.json (e.g. requires_safety_checker: true) are not components.
      continue;
    }
    const [library, cls] = value;
    if (library === null && cls === null) {
      components[name] = null;
    } else if (typeof library === "string" && typeof cls === "string") {
      components[name] = [library, cls];
    } else {
      throw new ConfigError(`expected [library, class], got ${JSON.stringify(value)}`, {
        file,
        key: name,
      });
    }
  }
  return { className, components, flat: false };
}

async function readJsonIfExists(path: string): Promise<ConfigDict | undefined> {
  let text: string;
  try {
    text = await readText(path);
  } catch (e) {
    if (isNotFound(e)) return undefined;
    throw e;
  }
  return parseConfigJson(text, path);
}

/**
 * Reads the pipeline layout of a local model folder: `model_index.json`, or
 * a flat unconditional repo (a UNet `config.json` and a
 * `scheduler_config.json` at the root, as google/ddpm-cat-256 is laid out).
 *
 * @example
 * ```ts
 * import { readModelIndex } from "./diffusion_pipeline.ts";
 * const index = await readModelIndex("/path/to/ddpm_tiny");
 * ```
 */
export async function readModelIndex(dir: string): Promise<ModelIndex> {
  const indexPath = `${dir}/model_index.json`;
  const json = await readJsonIfExists(indexPath);
  if (json) return parseModelIndex(json, indexPath);
  const unet = await readJsonIfExists(`${dir}/config.json`);
  const scheduler = await readJsonIfExists(`${dir}/scheduler_config.json`);
  if (
    unet && scheduler && typeof unet._class_name === "string" &&
    typeof scheduler._class_name === "string"
  ) {
    return {
      className: "DDPMPipeline",
      components: {
        unet: ["diffusers", unet._class_name],
        scheduler: ["diffusers", scheduler._class_name],
      },
      flat: true,
    };
  }
  throw new NotFoundError(
    "no model_index.json, and no config.json + scheduler_config.json at the root: not a diffusers pipeline folder",
    { file: dir },
  );
}

/** Loads any diffusers pipeline by Hub id or local folder. */
export class DiffusionPipeline {
  /**
   * Loads the pipeline `model_index.json` describes, from a Hub id
   * (`"google/ddpm-cat-256"`, downloaded into the Hugging Face cache) or a
   * local folder.
   *
   * @example
   * ```ts
   * import { DiffusionPipeline } from "./diffusion_pipeline.ts";
   * const pipe = await DiffusionPipeline.fromPretrained("./my-model", { variant: "fp16" });
   * pipe.dispose();
   * ```
   */
  static async fromPretrained(
    idOrDir: string,
    options: FromPretrainedOptions = {},
  ): Promise<Pipeline> {
    const workers = options.workers;
    if (workers !== undefined && workers !== 1) checkWorkers(workers);
    const backend = await ensureReady(options.backend);
    // From the Hub, read model_index.json first so only the folders this pipeline loads are fetched.
    const remoteIndex = await fetchModelIndex(idOrDir, options);
    const folders = remoteIndex && neededFolders(parseModelIndex(remoteIndex), options);
    const dir = await resolveModelDir(idOrDir, { ...options, folders });
    const index = await readModelIndex(dir);
    const cls = pipelineClass(index.className, `${dir}/model_index.json`);
    const loaded: Record<string, unknown> = {};
    try {
      for (const name of cls.componentNames) {
        if (options.components && name in options.components) {
          loaded[name] = options.components[name];
          continue;
        }
        const entry = index.components[name];
        if (entry === undefined || entry === null) {
          throw new ConfigError(`${index.className} needs a ${name} component, which is missing`, {
            file: `${dir}/model_index.json`,
            key: name,
          });
        }
        loaded[name] = await loadComponent(dir, index.flat ? "" : name, entry[1], {
          variant: options.variant,
          onDownload: options.onDownload,
          workers,
          workerBackend: backend === "cpu" ? "cpu" : "wasm",
        });
      }
    } catch (e) {
      for (const component of Object.values(loaded)) disposeIfOwned(component, options);
      throw e;
    }
    return cls.fromComponents(loaded);
  }
}

/** The component folders a pipeline will load: its components, less absent and caller-given ones. */
function neededFolders(index: ModelIndex, options: FromPretrainedOptions): string[] {
  return pipelineClass(index.className).componentNames.filter((name) =>
    index.components[name] && !(options.components && name in options.components)
  );
}

function disposeIfOwned(component: unknown, options: FromPretrainedOptions): void {
  const given = options.components && Object.values(options.components).includes(component);
  const disposable = component as { dispose?: () => void };
  if (!given && typeof disposable?.dispose === "function") disposable.dispose();
}
