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
import { NotFoundError, UnknownNameError } from "../errors.ts";
import { schedulerClass, SCHEDULERS } from "../../schedulers/registry.ts";
import { UNet2DModel } from "../../models/unet_2d.ts";
import { CLIPTextModel } from "../../models/clip_text.ts";
import { LDMBertModel } from "../../models/ldm_bert.ts";
import { loadTokenizer } from "../tokenizers/mod.ts";
import type { PromptEncoder } from "./conditioning.ts";
import type { tf } from "../tf.ts";

/** Options every component loader takes. */
export interface ComponentOptions {
  /** Weight file variant (`"fp16"`). */
  variant?: string;
}

type Loader = (dir: string, options: ComponentOptions) => Promise<unknown>;

/** A text encoder seen as a {@link PromptEncoder}: ids in, last hidden states out. */
function promptEncoder(
  model: { dispose(): void },
  encode: (ids: number[][]) => tf.Tensor3D,
): PromptEncoder {
  return { encodeIds: encode, dispose: () => model.dispose() };
}

const MODEL_LOADERS: Record<string, Loader> = {
  UNet2DModel: (dir, options) => UNet2DModel.fromPretrained(dir, options),
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
  BertTokenizer: (dir) => loadTokenizer(dir, "BertTokenizer"),
  BertTokenizerFast: (dir) => loadTokenizer(dir, "BertTokenizerFast"),
  CLIPTokenizer: (dir) => loadTokenizer(dir, "CLIPTokenizer"),
  CLIPTokenizerFast: (dir) => loadTokenizer(dir, "CLIPTokenizerFast"),
};

async function loadScheduler(dir: string, className: string): Promise<unknown> {
  const path = `${dir}/scheduler_config.json`;
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
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
export function loadComponent(
  root: string,
  subfolder: string,
  className: string,
  options: ComponentOptions,
): Promise<unknown> {
  const dir = subfolder ? `${root}/${subfolder}` : root;
  if (SCHEDULERS.has(className)) return loadScheduler(dir, className);
  const loader = MODEL_LOADERS[className];
  if (!loader) {
    const known = [...Object.keys(MODEL_LOADERS), ...SCHEDULERS.keys()].sort();
    throw new UnknownNameError("component class", className, known, {
      file: `${root}/model_index.json`,
      key: subfolder,
    });
  }
  return loader(dir, options);
}
