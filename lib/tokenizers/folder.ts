/**
 * The files every slow tokenizer reads besides its vocabulary:
 * `tokenizer_config.json`, `special_tokens_map.json` and `added_tokens.json`
 * (each optional), plus access to `tokenizer.json`'s `model` section for
 * folders that ship only the fast-tokenizer file.
 *
 * @example
 * ```ts
 * import { readTokenizerFolder } from "./folder.ts";
 * const folder = await readTokenizerFolder({ "tokenizer_config.json": '{"model_max_length": 77}' });
 * folder.config.model_max_length; // 77
 * ```
 *
 * @module
 */

import { ConfigError, NotFoundError } from "../errors.ts";
import {
  fileReader,
  parseJson,
  readJsonFile,
  toIdMap,
  type TokenizerFileReader,
  type TokenizerSource,
} from "./files.ts";

/** File names, as transformers saves them. */
export const FILES = {
  config: "tokenizer_config.json",
  specialTokensMap: "special_tokens_map.json",
  addedTokens: "added_tokens.json",
  tokenizerJson: "tokenizer.json",
} as const;

/** The parsed common files of a tokenizer folder. */
export interface TokenizerFolder {
  /** Reads the folder's other files. */
  readonly reader: TokenizerFileReader;
  /** `tokenizer_config.json` (`{}` when absent). */
  readonly config: Record<string, unknown>;
  /** `special_tokens_map.json` (`{}` when absent). */
  readonly specialTokensMap: Record<string, unknown>;
  /** `added_tokens.json`, token -> id (empty when absent). */
  readonly addedTokens: Map<string, number>;
}

/**
 * Reads the common files of a tokenizer folder.
 *
 * @example
 * ```ts
 * import { readTokenizerFolder } from "./folder.ts";
 * const folder = await readTokenizerFolder("./sd-v1-5/tokenizer");
 * folder.specialTokensMap.pad_token; // "<|endoftext|>"
 * ```
 */
export async function readTokenizerFolder(source: TokenizerSource): Promise<TokenizerFolder> {
  const reader = fileReader(source);
  const [config, specialTokensMap, added] = await Promise.all([
    readJsonFile(reader, FILES.config),
    readJsonFile(reader, FILES.specialTokensMap),
    readJsonFile(reader, FILES.addedTokens),
  ]);
  return {
    reader,
    config,
    specialTokensMap,
    addedTokens: toIdMap(added, reader.describe(FILES.addedTokens)),
  };
}

/**
 * The `model` object of `tokenizer.json`, for folders without the slow
 * tokenizer's vocabulary files: {@link NotFoundError} (naming `missingFile`)
 * when there is no tokenizer.json either, {@link ConfigError} when its model
 * is not of `expectedType` (`"WordPiece"`, `"BPE"`).
 *
 * @example
 * ```ts
 * import { readTokenizerJsonModel } from "./folder.ts";
 * import { fileReader } from "./files.ts";
 * const json = '{"model": {"type": "BPE", "vocab": {}, "merges": []}}';
 * (await readTokenizerJsonModel(fileReader({ "tokenizer.json": json }), "BPE", "vocab.json")).type; // "BPE"
 * ```
 */
export async function readTokenizerJsonModel(
  reader: TokenizerFileReader,
  expectedType: string,
  missingFile: string,
): Promise<Record<string, unknown>> {
  const file = reader.describe(FILES.tokenizerJson);
  const text = await reader.read(FILES.tokenizerJson);
  if (text === undefined) {
    throw new NotFoundError(`neither ${missingFile} nor ${FILES.tokenizerJson} is present`, {
      file: reader.describe(missingFile),
    });
  }
  const json = parseJson(text, file) as { model?: unknown } | null;
  const model = json?.model as Record<string, unknown> | undefined;
  if (model === null || typeof model !== "object" || model.type !== expectedType) {
    throw new ConfigError(`expected a ${expectedType} model section`, { file, key: "model" });
  }
  return model;
}
