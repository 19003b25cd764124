/**
 * Where a pipeline's files come from: a local folder as it is, or a Hub id
 * whose needed files (configs, tokenizer files, and the weights diffusers
 * would pick) are downloaded into the Hugging Face cache first. Where
 * there is no file system (a web page), a Hub id becomes the base URL of
 * its files on the endpoint (`{endpoint}/{id}/resolve/{revision}`), read
 * with `fetch` and kept by the browser's Cache API (lib/files.ts).
 *
 * @example
 * ```ts
 * import { selectPipelineFiles } from "./model_source.ts";
 * console.log(selectPipelineFiles([
 *   "model_index.json", "unet/config.json",
 *   "unet/diffusion_pytorch_model.bin", "unet/diffusion_pytorch_model.safetensors",
 * ], {}));
 * // ["model_index.json", "unet/config.json", "unet/diffusion_pytorch_model.safetensors"]
 * ```
 *
 * @module
 */

import { NotFoundError } from "./errors.ts";
import { type ConfigDict, parseConfigJson } from "./config.ts";
import { type DownloadProgress, isRepoId, resolveModel } from "./hub.ts";
import { normalizeRepoPath } from "./hub/paths.ts";
import { fileUrl } from "./hub/metadata.ts";
import { hubEndpoint } from "./hub/settings.ts";
import { isDirectory, isNotFound, readText } from "./files.ts";

/** How to find a model: Hub options, used only when the argument is not a local folder. */
export interface ModelSourceOptions {
  /** Branch, tag or commit on the Hub (default `"main"`). */
  revision?: string;
  /** Hub token (default: `HF_TOKEN`, then the token file). */
  token?: string;
  /** Use only the local cache, never the network (also `HF_HUB_OFFLINE=1`). */
  localFilesOnly?: boolean;
  /** Hugging Face cache folder (default: `HF_HUB_CACHE`, `HF_HOME/hub`, `~/.cache/huggingface/hub`). */
  cacheDir?: string;
  /** Hub endpoint (default: `HF_ENDPOINT`, else https://huggingface.co). */
  endpoint?: string;
  /** Download progress, per file. */
  onDownload?: (progress: DownloadProgress) => void;
  /** Weight file variant (`"fp16"`), which decides which weight files are fetched. */
  variant?: string;
}

const CONFIG_FILE = /\.(json|txt|model|yaml)$/;
const SKIPPED =
  /\.(ckpt|onnx|onnx_data|msgpack|h5|pb|tflite|mlmodel|pt|pth|md|png|jpe?g|gif|webp)$/i;
const WEIGHT = /\.(safetensors|bin)$/;
const SHARD_INDEX = /\.(safetensors|bin)\.index\.(?:[^.]+\.)?json$/;

/** `true` when a weight file name carries `variant` (`x.fp16.safetensors`, `x.fp16-00001-of-00002.safetensors`). */
function hasVariant(name: string, variant: string | undefined): boolean {
  const base = name.slice(name.lastIndexOf("/") + 1);
  const index = base.match(/\.index\.(?:([^.]+)\.)?json$/);
  if (index) return index[1] === variant;
  const parts = base.split(".");
  if (parts.length < 3) return variant === undefined;
  const infix = parts[parts.length - 2]!.replace(/-\d{5}-of-\d{5}$/, "");
  return variant === undefined ? false : infix === variant;
}

/**
 * The files of a repo a pipeline load needs: `model_index.json` (or, in a
 * flat repo without one, the root configs and weights), every component's
 * config and tokenizer files, and per folder only the weight
 * format diffusers would read (safetensors over `.bin`, the requested
 * `variant`, shards with their index). With `folders`, only those
 * component folders are taken (the ones the pipeline class loads).
 *
 * @example
 * ```ts
 * import { selectPipelineFiles } from "./model_source.ts";
 * selectPipelineFiles(["unet/diffusion_pytorch_model.fp16.safetensors",
 *   "unet/diffusion_pytorch_model.safetensors"], { variant: "fp16" });
 * // ["unet/diffusion_pytorch_model.fp16.safetensors"]
 * ```
 */
export function selectPipelineFiles(
  files: readonly string[],
  options: { variant?: string; folders?: readonly string[] },
): string[] {
  const byFolder = new Map<string, string[]>();
  const chosen: string[] = [];
  // A repo with model_index.json keeps its components in folders: the root holds no weights or configs we use.
  const flat = !files.includes("model_index.json");
  for (const file of files) {
    const depth = file.split("/").length;
    if (depth > 2 || SKIPPED.test(file) || file.startsWith(".")) continue;
    const folder = depth === 2 ? file.slice(0, file.indexOf("/")) : "";
    if (!folder && !flat && file !== "model_index.json") continue;
    if (folder && options.folders && !options.folders.includes(folder)) continue;
    const isWeight = WEIGHT.test(file) || SHARD_INDEX.test(file);
    if (!isWeight) {
      if (CONFIG_FILE.test(file)) chosen.push(file);
      continue;
    }
    if (!byFolder.has(folder)) byFolder.set(folder, []);
    byFolder.get(folder)!.push(file);
  }
  for (const weights of byFolder.values()) {
    const wanted = (variant: string | undefined, ext: string) =>
      weights.filter((f) =>
        (f.endsWith(ext) || f.includes(`${ext}.index.`)) && hasVariant(f, variant)
      );
    // diffusers falls back to the plain files when a requested variant is absent.
    const pick = [options.variant, undefined].flatMap((v) =>
      [".safetensors", ".bin"].map((ext) => wanted(v, ext))
    ).find((list) => list.length > 0);
    if (pick) chosen.push(...pick);
  }
  return chosen;
}

/**
 * In a runtime without a file system (a web page), the base URL a Hub id's
 * files are read from: `{endpoint}/{id}/resolve/{revision}`. `undefined`
 * under Deno, where Hub files go through the Hugging Face cache instead,
 * and for anything that is not a Hub id. The endpoint must send CORS
 * headers (huggingface.co does); the token is not sent from a page.
 *
 * @example
 * ```ts
 * import { hubFolderUrl } from "./model_source.ts";
 * // In a browser: "https://huggingface.co/google/ddpm-cat-256/resolve/main"
 * console.log(hubFolderUrl("google/ddpm-cat-256", {}));
 * ```
 */
export function hubFolderUrl(idOrDir: string, options: ModelSourceOptions): string | undefined {
  if ("Deno" in globalThis || !isRepoId(idOrDir)) return undefined;
  const endpoint = hubEndpoint(options.endpoint);
  return fileUrl(endpoint, idOrDir, options.revision ?? "main", "").replace(/\/$/, "");
}

/**
 * Resolves a model argument to a local folder: an existing folder is used
 * as is; a Hub id (`owner/name`) is fetched into the Hugging Face cache
 * (only the files {@link selectPipelineFiles} picks) and its snapshot
 * folder returned.
 *
 * @example
 * ```ts
 * import { resolveModelDir } from "./model_source.ts";
 * const dir = await resolveModelDir("google/ddpm-cat-256", { localFilesOnly: true });
 * ```
 */
export async function resolveModelDir(
  idOrDir: string,
  options: ModelSourceOptions & { folders?: readonly string[] },
): Promise<string> {
  const url = hubFolderUrl(idOrDir, options);
  if (url !== undefined) return url;
  if (await isDirectory(idOrDir)) return idOrDir;
  if (!isRepoId(idOrDir)) {
    throw new NotFoundError(
      "is neither a folder nor a Hub model id (owner/name)",
      { file: idOrDir },
    );
  }
  const snapshot = await resolveModel(idOrDir, {
    revision: options.revision,
    token: options.token,
    localFilesOnly: options.localFilesOnly,
    cacheDir: options.cacheDir,
    endpoint: options.endpoint,
    onProgress: options.onDownload,
    select: (files) =>
      selectPipelineFiles(files, { variant: options.variant, folders: options.folders }),
  });
  return snapshot.dir;
}

/**
 * For a Hub id: fetches and parses only `model_index.json` (so a pipeline
 * can choose which component folders to download). `undefined` for a local
 * folder, or a repo without one (a flat repo like google/ddpm-cat-256).
 *
 * @example
 * ```ts
 * import { fetchModelIndex } from "./model_source.ts";
 * const index = await fetchModelIndex("stable-diffusion-v1-5/stable-diffusion-v1-5", {});
 * console.log(index?._class_name); // "StableDiffusionPipeline"
 * ```
 */
export async function fetchModelIndex(
  idOrDir: string,
  options: ModelSourceOptions,
): Promise<ConfigDict | undefined> {
  const url = hubFolderUrl(idOrDir, options);
  if (url !== undefined) {
    const path = `${url}/model_index.json`;
    try {
      return parseConfigJson(await readText(path), path);
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }
  if (await isDirectory(idOrDir) || !isRepoId(idOrDir)) return undefined;
  let dir: string;
  try {
    dir = (await resolveModel(idOrDir, {
      files: ["model_index.json"],
      revision: options.revision,
      token: options.token,
      localFilesOnly: options.localFilesOnly,
      cacheDir: options.cacheDir,
      endpoint: options.endpoint,
    })).dir;
  } catch (e) {
    // A flat repo has none; a missing repo fails again, with its own message, when its files are fetched.
    if (e instanceof NotFoundError) return undefined;
    throw e;
  }
  const path = `${dir}/model_index.json`;
  return parseConfigJson(await readText(path), path);
}

/**
 * Resolves one model component (a `config.json` and its weights) to a local
 * folder: `subfolder` of a local folder, or of a Hub repo whose config and
 * chosen weights in that subfolder are fetched into the cache. A subfolder
 * that would leave the model folder (`..`, absolute) is a `PathEscapeError`.
 *
 * @example
 * ```ts
 * import { resolveComponentDir } from "./model_source.ts";
 * const dir = await resolveComponentDir("google/ddpm-cat-256", {});
 * const unetDir = await resolveComponentDir("./sd-model", { subfolder: "unet" });
 * ```
 */
export async function resolveComponentDir(
  idOrDir: string,
  options: ModelSourceOptions & { subfolder?: string },
): Promise<string> {
  const sub = normalizeRepoPath(options.subfolder ?? "", "subfolder");
  const base = hubFolderUrl(idOrDir, options) ?? idOrDir;
  if (await isDirectory(base)) return sub ? `${base}/${sub}` : base;
  if (!isRepoId(idOrDir)) {
    throw new NotFoundError("is neither a folder nor a Hub model id (owner/name)", {
      file: idOrDir,
    });
  }
  const resolved = await resolveModel(idOrDir, {
    subfolder: sub || undefined,
    revision: options.revision,
    token: options.token,
    localFilesOnly: options.localFilesOnly,
    cacheDir: options.cacheDir,
    endpoint: options.endpoint,
    onProgress: options.onDownload,
    select: (files) => selectPipelineFiles(files, { variant: options.variant }),
  });
  return resolved.dir;
}
