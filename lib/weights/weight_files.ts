/**
 * Where a model's weight files come from: a local folder (Deno) or bytes in
 * memory (a browser that fetched them). Both take names relative to the
 * model folder, and both refuse a name that could leave it (`..`, an
 * absolute path, a drive letter, a backslash) with {@link PathEscapeError};
 * the folder also refuses a symlink whose target lies outside it (or
 * outside the Hub cache repository folder, for a cached snapshot).
 *
 * @example
 * ```ts
 * import { memoryWeightFiles } from "./weight_files.ts";
 * const files = memoryWeightFiles({ "model.safetensors": new Uint8Array(16) }, "hub:org/model");
 * console.log(await files.has("model.safetensors")); // true
 * ```
 *
 * @module
 */

import { NotFoundError, PathEscapeError } from "../errors.ts";
import { type ByteSource, bytesSource, fileSource } from "./byte_source.ts";

/** A set of files addressed by names relative to a model folder. */
export interface WeightFiles {
  /** The folder path or URL, for messages. */
  readonly location: string;
  /** The path or URL of `name`, for messages. */
  describe(name: string): string;
  /** Whether `name` exists and is a file. */
  has(name: string): Promise<boolean>;
  /** Opens `name` for ranged reads. */
  open(name: string): Promise<ByteSource>;
}

/**
 * Checks that `name` is a plain relative path inside its folder.
 *
 * @example
 * ```ts
 * import { checkRelativeName } from "./weight_files.ts";
 * checkRelativeName("unet/diffusion_pytorch_model.safetensors", "/models/sd"); // ok
 * checkRelativeName("../secrets", "/models/sd"); // throws PathEscapeError
 * ```
 */
export function checkRelativeName(name: string, location: string): void {
  const escapes = name === "" || name.startsWith("/") || name.includes("\\") ||
    name.includes("\0") || /^[A-Za-z]:/.test(name) ||
    name.split("/").some((s) => s === "" || s === "." || s === "..");
  if (escapes) {
    throw new PathEscapeError(
      `${JSON.stringify(name)} is not a plain path inside the model folder`,
      {
        file: location,
      },
    );
  }
}

/**
 * Files held in memory, by relative name.
 *
 * @example
 * ```ts
 * import { memoryWeightFiles } from "./weight_files.ts";
 * const files = memoryWeightFiles({ "diffusion_pytorch_model.safetensors": new Uint8Array(16) });
 * const src = await files.open("diffusion_pytorch_model.safetensors");
 * console.log(src.size); // 16
 * ```
 */
export function memoryWeightFiles(
  files: Readonly<Record<string, Uint8Array>>,
  location = "<memory>",
): WeightFiles {
  const describe = (name: string): string => `${location}/${name}`;
  return {
    location,
    describe,
    has(name) {
      checkRelativeName(name, location);
      return Promise.resolve(Object.hasOwn(files, name));
    },
    open(name) {
      checkRelativeName(name, location);
      if (!Object.hasOwn(files, name)) {
        return Promise.reject(new NotFoundError("no such file", { file: describe(name) }));
      }
      return Promise.resolve(bytesSource(files[name]!, describe(name)));
    },
  };
}

/** Options for {@link folderWeightFiles}. */
export interface FolderOptions {
  /**
   * The folder symlinks must resolve into. Default: the model folder, or,
   * for a folder inside a Hugging Face cache snapshot
   * (`…/models--org--name/snapshots/<commit>/…`), that repository's cache
   * folder, since snapshot files are links to its `blobs/`.
   */
  readonly root?: string;
}

/** `path` with forward slashes and a trailing one, for prefix tests. */
function asDir(path: string): string {
  const p = path.replaceAll("\\", "/");
  return p.endsWith("/") ? p : `${p}/`;
}

/** The repository cache folder when `dir` is inside a Hub cache snapshot, else `dir`. */
function defaultRoot(dir: string): string {
  const m = asDir(dir).match(/^(.*\/(?:models|datasets|spaces)--[^/]+)\/snapshots\/[^/]+\//);
  return m ? m[1]! : dir;
}

/**
 * Checks that `path`, with every symlink resolved, lies inside `root` (default:
 * the folder `dir`, or the Hub cache repository folder when `dir` is inside a
 * cached snapshot), and returns its real path. Deno only.
 *
 * @example
 * ```ts
 * import { resolveInside } from "./weight_files.ts";
 * const real = await resolveInside("/models/sd/unet/config.json", "/models/sd/unet");
 * ```
 */
export async function resolveInside(path: string, dir: string, root?: string): Promise<string> {
  const [real, base] = await Promise.all([
    Deno.realPath(path),
    root === undefined ? Deno.realPath(dir).then(defaultRoot) : Deno.realPath(root),
  ]);
  if (!asDir(real).startsWith(asDir(base))) {
    throw new PathEscapeError(`resolves to ${real}, outside ${base}`, { file: path });
  }
  return real;
}

/**
 * Files in a local folder (Deno only, at call time).
 *
 * @example
 * ```ts
 * import { folderWeightFiles } from "./weight_files.ts";
 * const files = folderWeightFiles("/models/sd/unet");
 * if (await files.has("diffusion_pytorch_model.safetensors")) {
 *   const src = await files.open("diffusion_pytorch_model.safetensors");
 *   src.close();
 * }
 * ```
 */
export function folderWeightFiles(dir: string, options: FolderOptions = {}): WeightFiles {
  const describe = (name: string): string => `${dir.replace(/\/+$/, "")}/${name}`;
  return {
    location: dir,
    describe,
    async has(name) {
      checkRelativeName(name, dir);
      try {
        return (await Deno.stat(describe(name))).isFile;
      } catch (e) {
        if (e instanceof Deno.errors.NotFound) return false;
        throw e;
      }
    },
    async open(name) {
      checkRelativeName(name, dir);
      return fileSource(await resolveInside(describe(name), dir, options.root));
    },
  };
}
