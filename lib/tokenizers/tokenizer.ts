/**
 * The interface every tokenizer implements, and {@link loadTokenizer}, which
 * builds the right one for a tokenizer folder from its class name (as
 * `model_index.json` or `tokenizer_config.json` give it).
 *
 * @example
 * ```ts
 * import { loadTokenizer } from "./tokenizer.ts";
 * const tok = await loadTokenizer("./sd-v1-5/tokenizer", "CLIPTokenizer");
 * const { inputIds } = tok.encode("a photo of a cat", { padding: "max_length", truncation: true });
 * ```
 *
 * @module
 */

import { BertTokenizer } from "./bert.ts";
import { CLIPTokenizer, type CLIPTokenizerOptions } from "./clip.ts";
import { fileReader, readJsonFile, type TokenizerSource } from "./files.ts";
import { ConfigError, UnknownNameError } from "../errors.ts";

/** Options of {@link Tokenizer.encode}, named after transformers' `__call__` arguments. */
export interface EncodeOptions {
  /**
   * `"max_length"` pads to `maxLength`; `"longest"` pads a batch to its
   * longest sequence; `"do_not_pad"` (default) pads nothing.
   */
  padding?: "max_length" | "longest" | "do_not_pad";
  /** Length to pad or truncate to; defaults to `modelMaxLength` when padding to max length or truncating. */
  maxLength?: number;
  /** Cut the ids (from the end) so the sequence with special tokens fits `maxLength` (default false). */
  truncation?: boolean;
  /** Add the model's special tokens (BOS/EOS, [CLS]/[SEP]); default true. */
  addSpecialTokens?: boolean;
}

/** The encoded form of one text. */
export interface Encoding {
  /** Token ids, with special tokens and padding. */
  inputIds: number[];
  /** 1 for real tokens, 0 for padding. */
  attentionMask: number[];
  /** Segment ids (all 0 for a single text); only for tokenizers whose model takes them (BERT). */
  tokenTypeIds?: number[];
}

/** A text tokenizer that gives the same ids as its transformers (slow) counterpart. */
export interface Tokenizer {
  /** The transformers class this tokenizer reproduces. */
  readonly className: string;
  /** The longest sequence the model accepts (`Infinity` when the config sets none). */
  readonly modelMaxLength: number;
  /** The number of entries in the base vocabulary (added tokens not counted). */
  readonly vocabSize: number;
  /** The padding token, if the tokenizer has one. */
  readonly padToken: string | undefined;
  /** The padding token's id, if the tokenizer has one. */
  readonly padTokenId: number | undefined;
  /** The id unknown tokens get. */
  readonly unkTokenId: number;
  /** Splits `text` into vocabulary tokens (no special tokens added). */
  tokenize(text: string): string[];
  /** Maps tokens to ids; tokens not in the vocabulary map to `unkTokenId`. */
  convertTokensToIds(tokens: readonly string[]): number[];
  /** Tokenizes and encodes one text. */
  encode(text: string, options?: EncodeOptions): Encoding;
  /** Encodes several texts with the same options (`"longest"` padding pads to the batch's longest). */
  encodeBatch(texts: readonly string[], options?: EncodeOptions): Encoding[];
}

/** Options of {@link loadTokenizer}; only CLIP tokenizers use them. */
export type LoadTokenizerOptions = CLIPTokenizerOptions;

const CLASSES: Readonly<
  Record<string, (source: TokenizerSource, options: LoadTokenizerOptions) => Promise<Tokenizer>>
> = {
  BertTokenizer: (source) => BertTokenizer.fromPretrained(source),
  BertTokenizerFast: (source) => BertTokenizer.fromPretrained(source),
  CLIPTokenizer: (source, options) => CLIPTokenizer.fromPretrained(source, options),
  CLIPTokenizerFast: (source, options) => CLIPTokenizer.fromPretrained(source, options),
};

/**
 * Loads the tokenizer in `source` as `className` (a transformers class name;
 * the `...Fast` names load the same slow-tokenizer rules). Without a class
 * name, `tokenizer_config.json`'s `tokenizer_class` decides.
 *
 * @example
 * ```ts
 * import { loadTokenizer } from "./tokenizer.ts";
 * const bert = await loadTokenizer("./ldm-text2im-large-256/tokenizer"); // tokenizer_class: "BertTokenizer"
 * bert.tokenize("a painting"); // ["a", "painting"]
 * ```
 */
export async function loadTokenizer(
  source: TokenizerSource,
  className?: string,
  options: LoadTokenizerOptions = {},
): Promise<Tokenizer> {
  let name = className;
  if (name === undefined) {
    const reader = fileReader(source);
    const config = await readJsonFile(reader, "tokenizer_config.json");
    if (typeof config.tokenizer_class !== "string") {
      throw new ConfigError("no tokenizer_class to choose the tokenizer by; pass a class name", {
        file: reader.describe("tokenizer_config.json"),
      });
    }
    name = config.tokenizer_class;
  }
  const load = Object.hasOwn(CLASSES, name) ? CLASSES[name] : undefined;
  if (!load) throw new UnknownNameError("tokenizer class", name, Object.keys(CLASSES));
  return await load(source, options);
}
