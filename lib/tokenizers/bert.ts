/**
 * transformers 4.26.1's slow `BertTokenizer` (the LDM text-to-image
 * pipeline's tokenizer): {@link BasicTokenizer} then {@link WordpieceTokenizer},
 * `[CLS] ... [SEP]` around the ids, `token_type_ids` of zeros.
 *
 * @example
 * ```ts
 * import { BertTokenizer } from "./bert.ts";
 * const tok = await BertTokenizer.fromPretrained("./bert-base-uncased");
 * tok.tokenize("A painting"); // ["a", "painting"]
 * tok.encode("A painting").inputIds; // [101, 1037, 4169, 102]
 * ```
 *
 * @module
 */

import { ConfigError } from "../errors.ts";
import { BasicTokenizer } from "./basic.ts";
import { PreTrainedTokenizer } from "./base.ts";
import { toIdMap, type TokenizerSource } from "./files.ts";
import {
  FILES,
  readTokenizerFolder,
  readTokenizerJsonModel,
  type TokenizerFolder,
} from "./folder.ts";
import { resolveSpecialTokens } from "./special_tokens.ts";
import { WordpieceTokenizer } from "./wordpiece.ts";

const VOCAB_FILE = "vocab.txt";

/**
 * Parses `vocab.txt` as transformers' `load_vocab`: one token per line (any
 * newline convention), the line number is the id, a repeated token keeps its
 * last line.
 *
 * @example
 * ```ts
 * import { parseVocabTxt } from "./bert.ts";
 * parseVocabTxt("[PAD]\r\n[UNK]\n").get("[UNK]"); // 1
 * ```
 */
export function parseVocabTxt(text: string): Map<string, number> {
  const lines = text.split(/\r\n|\r|\n/);
  if (lines[lines.length - 1] === "") lines.pop();
  const vocab = new Map<string, number>();
  lines.forEach((token, id) => vocab.set(token, id));
  return vocab;
}

/**
 * BERT's WordPiece tokenizer, configured from `tokenizer_config.json`
 * (`do_lower_case`, `do_basic_tokenize`, `never_split`,
 * `tokenize_chinese_chars`, `strip_accents`, `model_max_length`).
 *
 * @example
 * ```ts
 * import { BertTokenizer } from "./bert.ts";
 * const tok = await BertTokenizer.fromPretrained({
 *   "vocab.txt": "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\na\npaint\n##ing\n",
 * });
 * tok.encode("a painting").inputIds; // [2, 5, 6, 7, 3]
 * ```
 */
export class BertTokenizer extends PreTrainedTokenizer {
  /** The `[CLS]` id that starts every sequence. */
  readonly clsTokenId: number;
  /** The `[SEP]` id that ends every sequence. */
  readonly sepTokenId: number;
  /** The basic tokenizer, unless `do_basic_tokenize` is false. */
  readonly basicTokenizer: BasicTokenizer | undefined;
  /** The sub-word stage. */
  readonly wordpieceTokenizer: WordpieceTokenizer;
  /** `[CLS]` and `[SEP]`. */
  protected readonly numSpecialTokens = 2;
  /** BERT takes segment ids. */
  protected readonly hasTokenTypeIds = true;
  readonly #neverSplit: readonly string[];

  /** Builds the tokenizer from a vocabulary and the parsed common files. */
  constructor(vocab: ReadonlyMap<string, number>, folder: TokenizerFolder) {
    const configFile = folder.reader.describe(FILES.config);
    const option = <T>(key: string, check: (v: unknown) => v is T, fallback: T): T => {
      const v = folder.config[key];
      if (v === undefined) return fallback;
      if (!check(v)) {
        throw new ConfigError(`unexpected value ${JSON.stringify(v)}`, { file: configFile, key });
      }
      return v;
    };
    const doLowerCase = option("do_lower_case", isBoolean, true);
    super({
      className: "BertTokenizer",
      vocab,
      specialTokens: resolveSpecialTokens({
        defaults: {
          unk_token: "[UNK]",
          sep_token: "[SEP]",
          pad_token: "[PAD]",
          cls_token: "[CLS]",
          mask_token: "[MASK]",
        },
        config: folder.config,
        configFile,
        map: folder.specialTokensMap,
        mapFile: folder.reader.describe(FILES.specialTokensMap),
      }),
      addedTokens: folder.addedTokens,
      modelMaxLength: option("model_max_length", isNumber, undefined),
      doLowerCase,
      configFile,
    });
    this.clsTokenId = this.requiredSpecialId("cls_token", configFile);
    this.sepTokenId = this.requiredSpecialId("sep_token", configFile);
    this.#neverSplit = this.specialTokenContents;
    this.basicTokenizer = option("do_basic_tokenize", isBoolean, true)
      ? new BasicTokenizer({
        doLowerCase,
        neverSplit: option("never_split", isStringListOrNull, null) ?? [],
        tokenizeChineseChars: option("tokenize_chinese_chars", isBoolean, true),
        stripAccents: option("strip_accents", isBooleanOrNull, null),
      })
      : undefined;
    this.wordpieceTokenizer = new WordpieceTokenizer(vocab, this.specialToken("unk_token")!);
  }

  /**
   * Loads `vocab.txt` (or `tokenizer.json`'s WordPiece vocabulary) and the
   * config files of a tokenizer folder.
   *
   * @example
   * ```ts
   * import { BertTokenizer } from "./bert.ts";
   * const tok = await BertTokenizer.fromPretrained("./ldm-text2im-large-256/tokenizer");
   * tok.modelMaxLength; // 77
   * ```
   */
  static async fromPretrained(source: TokenizerSource): Promise<BertTokenizer> {
    const folder = await readTokenizerFolder(source);
    const text = await folder.reader.read(VOCAB_FILE);
    let vocab: Map<string, number>;
    if (text !== undefined) {
      vocab = parseVocabTxt(text);
    } else {
      const model = await readTokenizerJsonModel(folder.reader, "WordPiece", VOCAB_FILE);
      vocab = toIdMap(model.vocab, folder.reader.describe(FILES.tokenizerJson), "model.vocab");
    }
    return new BertTokenizer(vocab, folder);
  }

  /** BasicTokenizer (special tokens never split) then WordPiece. */
  protected tokenizeSegment(text: string): string[] {
    if (!this.basicTokenizer) return this.wordpieceTokenizer.tokenize(text);
    const out: string[] = [];
    for (const token of this.basicTokenizer.tokenize(text, this.#neverSplit)) {
      if (this.basicTokenizer.neverSplit.has(token)) out.push(token);
      else out.push(...this.wordpieceTokenizer.tokenize(token));
    }
    return out;
  }

  /** `[CLS] ids [SEP]`. */
  protected addSpecialIds(ids: readonly number[]): number[] {
    return [this.clsTokenId, ...ids, this.sepTokenId];
  }
}

function isBoolean(v: unknown): v is boolean {
  return typeof v === "boolean";
}

function isBooleanOrNull(v: unknown): v is boolean | null {
  return v === null || typeof v === "boolean";
}

function isNumber(v: unknown): v is number {
  return typeof v === "number";
}

function isStringListOrNull(v: unknown): v is string[] | null {
  return v === null || (Array.isArray(v) && v.every((s) => typeof s === "string"));
}
