/**
 * Where a tokenizer's files come from: a local folder (read with Deno when the
 * tokenizer is loaded), a record of already-loaded file contents, or a reader
 * function (in a browser, one that fetches). Nothing here touches Deno at
 * import time, so the module loads in a browser.
 *
 * @example
 * ```ts
 * import { fileReader, readJsonFile } from "./files.ts";
 * const reader = fileReader({ "tokenizer_config.json": '{"model_max_length": 77}' });
 * const config = await readJsonFile(reader, "tokenizer_config.json"); // { model_max_length: 77 }
 * ```
 *
 * @module
 */

import { parseConfigJson } from "../config.ts";
import { ArgumentError, ConfigError, NotFoundError, PathEscapeError } from "../errors.ts";
import { resolveInside } from "../weights/weight_files.ts";

/** Returns a file's text, or undefined when the file does not exist. */
export type TokenizerFileFetcher = (name: string) => Promise<string | undefined>;

/**
 * A tokenizer folder: a local path (Deno), file contents by file name
 * (`{"vocab.json": "...", "merges.txt": "..."}`), or a function that returns a
 * file's text or undefined when it is missing.
 */
export type TokenizerSource = string | Readonly<Record<string, string>> | TokenizerFileFetcher;

/** Reads the files of one tokenizer folder and names them in errors. */
export interface TokenizerFileReader {
  /** The text of `name`, or undefined when the folder has no such file. */
  read(name: string): Promise<string | undefined>;
  /** How errors name `name` (the full path for a local folder). */
  describe(name: string): string;
}

/**
 * Wraps any {@link TokenizerSource} as a {@link TokenizerFileReader}.
 *
 * @example
 * ```ts
 * import { fileReader } from "./files.ts";
 * const browserReader = fileReader(async (name) => {
 *   const r = await fetch(`https://example.org/tokenizer/${name}`);
 *   return r.ok ? await r.text() : undefined;
 * });
 * ```
 */
export function fileReader(source: TokenizerSource): TokenizerFileReader {
  if (typeof source === "function") return { read: source, describe: (name) => name };
  if (typeof source === "string") return folderReader(source);
  return {
    read: (name) => Promise.resolve(Object.hasOwn(source, name) ? source[name] : undefined),
    describe: (name) => name,
  };
}

function folderReader(dir: string): TokenizerFileReader {
  const path = (name: string): string => `${dir.replace(/[\\/]+$/, "")}/${name}`;
  return {
    async read(name) {
      const deno = (globalThis as { Deno?: typeof Deno }).Deno;
      if (!deno) {
        throw new ArgumentError(
          "reading a tokenizer folder by path needs Deno; pass the file contents or a reader function",
          { file: dir },
        );
      }
      try {
        // A file that is a symlink out of the folder (or the Hub cache repo) is refused, not read.
        return await deno.readTextFile(await resolveInside(path(name), dir));
      } catch (e) {
        if (e instanceof deno.errors.NotFound) return undefined;
        if (e instanceof PathEscapeError) throw e;
        throw new NotFoundError(`cannot read tokenizer file (${(e as Error).message})`, {
          file: path(name),
          cause: e,
        });
      }
    },
    describe: path,
  };
}

/**
 * An optional JSON-object file (`tokenizer_config.json`,
 * `special_tokens_map.json`, ...): `{}` when absent, {@link ConfigError} when
 * it is not a JSON object.
 *
 * @example
 * ```ts
 * import { fileReader, readJsonFile } from "./files.ts";
 * await readJsonFile(fileReader({}), "special_tokens_map.json"); // {}
 * ```
 */
export async function readJsonFile(
  reader: TokenizerFileReader,
  name: string,
): Promise<Record<string, unknown>> {
  const text = await reader.read(name);
  return text === undefined ? {} : parseConfigJson(text, reader.describe(name));
}

/**
 * Parses a token -> id JSON object (`vocab.json`, `added_tokens.json`, a
 * `tokenizer.json` vocab) into a map, checking every id is a non-negative integer.
 *
 * @example
 * ```ts
 * import { toIdMap } from "./files.ts";
 * toIdMap({ a: 0, b: 1 }, "vocab.json").get("b"); // 1
 * ```
 */
export function toIdMap(value: unknown, file: string, key?: string): Map<string, number> {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new ConfigError("expected a JSON object of token -> id", { file, key });
  }
  const map = new Map<string, number>();
  for (const [token, id] of Object.entries(value)) {
    if (!Number.isInteger(id) || id < 0) {
      throw new ConfigError(`id of token ${JSON.stringify(token)} is not a non-negative integer`, {
        file,
        key,
      });
    }
    map.set(token, id);
  }
  return map;
}

/**
 * Parses a large JSON file with the fast built-in parser (vocabularies have no
 * Python NaN/Infinity tokens), raising {@link ConfigError} when it is malformed.
 *
 * @example
 * ```ts
 * import { parseJson } from "./files.ts";
 * parseJson('{"a": 0}', "vocab.json"); // { a: 0 }
 * ```
 */
export function parseJson(text: string, file: string): unknown {
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new ConfigError(`not valid JSON (${(cause as Error).message})`, { file, cause });
  }
}
