/**
 * `fromPretrained` for one model component: resolve the folder (local, or
 * a Hub id fetched into the cache), read its `config.json`, build the
 * model, and load its weights strictly (safetensors preferred, else
 * PyTorch `.bin`), one tensor at a time. Checkpoint entries that are not
 * weights (buffers such as CLIP's `position_ids`) can be skipped by name.
 *
 * @example
 * ```ts
 * import { loadPretrained } from "./pretrained.ts";
 * import { CLIPTextModel } from "./clip_text.ts";
 * const te = await loadPretrained(
 *   "../shared/fixtures/pipelines/sd_tiny",
 *   { subfolder: "text_encoder" },
 *   CLIPTextModel.spec,
 *   (config) => new CLIPTextModel(config),
 * );
 * te.dispose();
 * ```
 *
 * @module
 */

import { type ConfigDict, type ConfigSpec, loadConfig, parseConfigJson } from "../lib/config.ts";
import { NotFoundError } from "../lib/errors.ts";
import { type ModelSourceOptions, resolveComponentDir } from "../lib/model_source.ts";
import { loadStateDict } from "../lib/weights/state_dict.ts";
import { isNotFound, isUrl, readText, weightFilesAt } from "../lib/files.ts";
import { resolveInside } from "../lib/weights/weight_files.ts";
import type { Module, WeightReader } from "./layers/module.ts";

/** Options of a model's `fromPretrained`: where the model is (Hub options) and which files. */
export interface PretrainedOptions extends ModelSourceOptions {
  /** Folder inside the model folder or repo (e.g. `"text_encoder"`); default: its root. */
  subfolder?: string;
}

/**
 * A model folder's config (`spec.configName`, e.g. `config.json`), checked
 * against `spec`: a missing file is a `NotFoundError`, and a local config
 * may not link out of its folder.
 *
 * @example
 * ```ts
 * import { readModelConfig } from "./pretrained.ts";
 * import { UNET_2D_CONDITION_SPEC } from "./unet_2d_condition_config.ts";
 * const config = await readModelConfig("./sd/unet", UNET_2D_CONDITION_SPEC);
 * ```
 */
export async function readModelConfig<C extends ConfigDict>(
  folder: string,
  spec: ConfigSpec<C>,
): Promise<Readonly<C>> {
  const configFile = `${folder}/${spec.configName}`;
  let text: string;
  try {
    // A URL folder has no symlinks to escape through; a local config must not link out of the model folder.
    text = await readText(isUrl(folder) ? configFile : await resolveInside(configFile, folder));
  } catch (cause) {
    if (isNotFound(cause)) {
      throw new NotFoundError("config file not found", { file: configFile, cause });
    }
    throw cause;
  }
  return loadConfig(spec, parseConfigJson(text, configFile), {}, configFile);
}

/**
 * Builds a model from a folder or Hub id: `build(config)` gives the
 * architecture, whose weights are then loaded; every checkpoint key must be
 * a parameter except those `skip` accepts. The model is disposed if loading
 * fails.
 *
 * @example
 * ```ts
 * import { loadPretrained } from "./pretrained.ts";
 * import { LDMBertModel } from "./ldm_bert.ts";
 * const bert = await loadPretrained("CompVis/ldm-text2im-large-256", { subfolder: "bert" },
 *   LDMBertModel.spec, (c) => new LDMBertModel(c));
 * ```
 */
export async function loadPretrained<C extends ConfigDict, M extends Module>(
  idOrDir: string,
  options: PretrainedOptions,
  spec: ConfigSpec<C>,
  build: (config: Readonly<C>) => M,
  skip: (key: string) => boolean = () => false,
): Promise<M> {
  const folder = await resolveComponentDir(idOrDir, options);
  const model = build(await readModelConfig(folder, spec));
  const weights = await loadStateDict(weightFilesAt(folder, options.onDownload), {
    variant: options.variant,
  });
  try {
    const reader: WeightReader = {
      entries: new Map([...weights.entries].filter(([key]) => !skip(key))),
      get: (name) => weights.get(name),
    };
    await model.loadStateDict(reader, { file: weights.files.join(", ") });
  } catch (e) {
    model.dispose();
    throw e;
  } finally {
    weights.close();
  }
  return model;
}
