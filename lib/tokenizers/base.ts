/**
 * What transformers' `PreTrainedTokenizer` does around a model's own
 * tokenization: special and added tokens (never split, ids looked up before
 * the vocabulary, missing special tokens appended to it), the `do_lower_case`
 * pre-pass, and `__call__`'s truncation, special tokens and padding.
 * {@link BertTokenizer} and {@link CLIPTokenizer} extend it.
 *
 * @example
 * ```ts
 * import { CLIPTokenizer } from "./clip.ts";
 * const tok = await CLIPTokenizer.fromPretrained("./sd-v1-5/tokenizer");
 * tok.encodeBatch(["a cat", "a dog"], { padding: "longest" });
 * ```
 *
 * @module
 */

import { ArgumentError, ConfigError } from "../errors.ts";
import { NoSplitTokens, type StripRule } from "./no_split.ts";
import {
  allSpecialTokens,
  type SpecialTokenName,
  type SpecialTokens,
  type TokenSpec,
} from "./special_tokens.ts";
import type { EncodeOptions, Encoding, Tokenizer } from "./tokenizer.ts";

// transformers' LARGE_INTEGER: a model_max_length above it means "no limit".
const NO_LIMIT_ABOVE = 1e20;
// Far beyond any BERT or CLIP text encoder; a hostile config must not make
// padding to model_max_length allocate billions of ids.
const MAX_MODEL_LENGTH = 2 ** 20;

/** What a concrete tokenizer hands to {@link PreTrainedTokenizer}. */
export interface PreTrainedInit {
  /** The transformers class name. */
  className: string;
  /** The model's vocabulary, token -> id. */
  vocab: ReadonlyMap<string, number>;
  /** The resolved special tokens. */
  specialTokens: SpecialTokens;
  /** `added_tokens.json`, token -> id (may be empty). */
  addedTokens: ReadonlyMap<string, number>;
  /** `tokenizer_config.json`'s `model_max_length`, if any. */
  modelMaxLength: number | undefined;
  /** transformers' `do_lower_case` attribute (BERT): lower-case outside special tokens first. */
  doLowerCase: boolean;
  /** Name of the file the special tokens came from, for errors. */
  configFile: string;
}

/**
 * The shared half of a slow transformers tokenizer.
 *
 * @example
 * ```ts
 * import { BertTokenizer } from "./bert.ts";
 * const tok = await BertTokenizer.fromPretrained("./bert-base-uncased");
 * tok.convertTokensToIds(["[CLS]", "hello"]);
 * ```
 */
export abstract class PreTrainedTokenizer implements Tokenizer {
  /** The transformers class this tokenizer reproduces. */
  readonly className: string;
  /** The longest sequence the model accepts (`Infinity` when unset). */
  readonly modelMaxLength: number;
  /** The number of entries in the base vocabulary. */
  readonly vocabSize: number;
  /** The padding token, if any. */
  readonly padToken: string | undefined;
  /** The padding token's id, if any. */
  readonly padTokenId: number | undefined;
  /** The id unknown tokens get. */
  readonly unkTokenId: number;
  readonly #vocab: ReadonlyMap<string, number>;
  readonly #added: ReadonlyMap<string, number>;
  readonly #specialTokens: SpecialTokens;
  readonly #doLowerCase: boolean;
  readonly #noSplit: NoSplitTokens;

  /** Sets up vocabulary, added and special tokens; throws {@link ConfigError} when unk is unusable. */
  protected constructor(init: PreTrainedInit) {
    this.className = init.className;
    this.#vocab = init.vocab;
    this.vocabSize = init.vocab.size;
    this.#specialTokens = init.specialTokens;
    this.#doLowerCase = init.doLowerCase;
    const max = init.modelMaxLength;
    const valid = max === undefined || max > NO_LIMIT_ABOVE ||
      (Number.isInteger(max) && max >= 1 && max <= MAX_MODEL_LENGTH);
    if (!valid) {
      throw new ConfigError(
        `${max} is not a whole number from 1 to ${MAX_MODEL_LENGTH} (or above 1e20 for no limit)`,
        { file: init.configFile, key: "model_max_length" },
      );
    }
    this.modelMaxLength = max === undefined || max > NO_LIMIT_ABOVE ? Infinity : max;

    const unk = init.specialTokens.named.get("unk_token")?.content;
    const unkId = unk === undefined ? undefined : init.addedTokens.get(unk) ?? init.vocab.get(unk);
    if (unkId === undefined) {
      throw new ConfigError(
        unk === undefined
          ? "no unk_token is set"
          : `unk_token ${JSON.stringify(unk)} is not in the vocabulary`,
        { file: init.configFile, key: "unk_token" },
      );
    }
    this.unkTokenId = unkId;

    const special = allSpecialTokens(init.specialTokens);
    const specialContents = new Set(special.map((t) => t.content));
    const added = new Map<string, number>();
    const noSplit: string[] = [...specialContents];
    for (const [token, id] of init.addedTokens) {
      // Non-special added tokens are stored lower-cased by a lower-casing tokenizer.
      const key = !specialContents.has(token) && this.#doLowerCase ? token.toLowerCase() : token;
      if (key !== unk && this.#lookup(key, added) === undefined) {
        added.set(key, id);
        noSplit.push(key);
      }
    }
    // Special tokens missing from the vocabulary are appended to it (sanitize_special_tokens).
    for (const { content } of special) {
      if (content !== unk && this.#lookup(content, added) === undefined) {
        added.set(content, this.vocabSize + added.size);
      }
    }
    this.#added = added;
    this.#noSplit = new NoSplitTokens(noSplit, stripRules(special));
    this.padToken = init.specialTokens.named.get("pad_token")?.content;
    this.padTokenId = this.padToken === undefined ? undefined : this.tokenToId(this.padToken);
  }

  /** The content of a special token attribute, if set. */
  protected specialToken(name: SpecialTokenName): string | undefined {
    return this.#specialTokens.named.get(name)?.content;
  }

  /** The contents of all special tokens (transformers' `all_special_tokens`). */
  protected get specialTokenContents(): string[] {
    return [...new Set(allSpecialTokens(this.#specialTokens).map((t) => t.content))];
  }

  /** The id of a special token attribute that the model cannot do without. */
  protected requiredSpecialId(name: SpecialTokenName, configFile: string): number {
    const token = this.specialToken(name);
    if (token === undefined) {
      throw new ConfigError(`no ${name} is set`, { file: configFile, key: name });
    }
    return this.tokenToId(token);
  }

  /** The model's own tokenization of text between special tokens (`_tokenize`). */
  protected abstract tokenizeSegment(text: string): string[];

  /** The sequence with the model's special tokens around it. */
  protected abstract addSpecialIds(ids: readonly number[]): number[];

  /** How many special tokens {@link addSpecialIds} adds. */
  protected abstract readonly numSpecialTokens: number;

  /** Whether encodings carry `tokenTypeIds`. */
  protected abstract readonly hasTokenTypeIds: boolean;

  /**
   * Splits `text` into tokens: special and added tokens whole, the rest by the
   * model's rules.
   *
   * @example
   * ```ts
   * import { BertTokenizer } from "./bert.ts";
   * const tok = await BertTokenizer.fromPretrained("./bert-base-uncased");
   * tok.tokenize("Hello [SEP] world"); // ["hello", "[SEP]", "world"]
   * ```
   */
  tokenize(text: string): string[] {
    const prepared = this.#doLowerCase ? this.#noSplit.lowerOutside(text) : text;
    const tokens: string[] = [];
    for (const piece of this.#noSplit.split(prepared)) {
      if (piece.whole) tokens.push(piece.text);
      else tokens.push(...this.tokenizeSegment(piece.text));
    }
    return tokens;
  }

  /**
   * Maps tokens to ids: added tokens first, then the vocabulary, else the unknown id.
   *
   * @example
   * ```ts
   * import { BertTokenizer } from "./bert.ts";
   * const tok = await BertTokenizer.fromPretrained("./bert-base-uncased");
   * tok.convertTokensToIds(["[CLS]", "no-such-token"]); // [101, 100]
   * ```
   */
  convertTokensToIds(tokens: readonly string[]): number[] {
    return tokens.map((t) => this.tokenToId(t));
  }

  /** One token's id (unknown tokens get {@link unkTokenId}). */
  protected tokenToId(token: string): number {
    return this.#lookup(token, this.#added) ?? this.unkTokenId;
  }

  #lookup(token: string, added: ReadonlyMap<string, number>): number | undefined {
    return added.get(token) ?? this.#vocab.get(token);
  }

  /**
   * Tokenizes and encodes one text, like transformers' `tok(text, ...)`.
   *
   * @example
   * ```ts
   * import { CLIPTokenizer } from "./clip.ts";
   * const tok = await CLIPTokenizer.fromPretrained("./sd-v1-5/tokenizer");
   * tok.encode("a cat", { padding: "max_length", maxLength: 77, truncation: true }).inputIds.length; // 77
   * ```
   */
  encode(text: string, options: EncodeOptions = {}): Encoding {
    return this.encodeBatch([text], options)[0]!;
  }

  /**
   * Encodes several texts with the same options.
   *
   * @example
   * ```ts
   * import { CLIPTokenizer } from "./clip.ts";
   * const tok = await CLIPTokenizer.fromPretrained("./sd-v1-5/tokenizer");
   * const [a, b] = tok.encodeBatch(["a cat", "a black cat"], { padding: "longest" });
   * a.inputIds.length === b.inputIds.length; // true
   * ```
   */
  encodeBatch(texts: readonly string[], options: EncodeOptions = {}): Encoding[] {
    const padding = options.padding ?? "do_not_pad";
    const addSpecial = options.addSpecialTokens ?? true;
    const maxLength = this.#maxLength(options, padding);
    const special = addSpecial ? this.numSpecialTokens : 0;
    const sequences = texts.map((text) => {
      let ids = this.convertTokensToIds(this.tokenize(text));
      if (options.truncation && maxLength !== undefined && ids.length + special > maxLength) {
        ids = ids.slice(0, maxLength - special);
      }
      return addSpecial ? this.addSpecialIds(ids) : ids;
    });
    const target = padding === "max_length"
      ? maxLength
      : padding === "longest"
      ? Math.max(0, ...sequences.map((s) => s.length))
      : undefined;
    return sequences.map((ids) => this.#pad(ids, target));
  }

  /** The max length the options imply: explicit, else the model's when padding/truncating to it. */
  #maxLength(options: EncodeOptions, padding: EncodeOptions["padding"]): number | undefined {
    const special = (options.addSpecialTokens ?? true) ? this.numSpecialTokens : 0;
    if (options.maxLength !== undefined) {
      const m = options.maxLength;
      if (!Number.isInteger(m) || m < 1) {
        throw new ArgumentError(`maxLength must be a positive integer, got ${m}`);
      }
      if (options.truncation && m <= special) {
        throw new ArgumentError(
          `maxLength ${m} leaves no room for text next to ${special} special tokens`,
        );
      }
      return m;
    }
    const wanted = padding === "max_length" || options.truncation;
    return wanted && Number.isFinite(this.modelMaxLength) ? this.modelMaxLength : undefined;
  }

  #pad(ids: number[], target: number | undefined): Encoding {
    const padCount = target === undefined ? 0 : Math.max(0, target - ids.length);
    if (padCount > 0 && this.padTokenId === undefined) {
      throw new ArgumentError(`${this.className} has no pad_token, so it cannot pad`);
    }
    const encoding: Encoding = {
      inputIds: [...ids, ...new Array<number>(padCount).fill(this.padTokenId ?? 0)],
      attentionMask: [
        ...new Array<number>(ids.length).fill(1),
        ...new Array<number>(padCount).fill(0),
      ],
    };
    if (this.hasTokenTypeIds) {
      encoding.tokenTypeIds = new Array<number>(ids.length + padCount).fill(0);
    }
    return encoding;
  }
}

/** transformers' `all_special_tokens_extended` lookup: the last AddedToken with a given content decides. */
function stripRules(special: readonly TokenSpec[]): Map<string, StripRule> {
  const rules = new Map<string, StripRule>();
  for (const t of special) {
    if (t.isAddedToken) rules.set(t.content, { lstrip: t.lstrip, rstrip: t.rstrip });
  }
  return rules;
}
