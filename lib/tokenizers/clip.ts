/**
 * transformers 4.26.1's slow `CLIPTokenizer` (Stable Diffusion's tokenizer):
 * text cleanup, CLIP's pre-split regex, byte-level BPE with `</w>` word ends,
 * and `<|startoftext|> ... <|endoftext|>` around the ids.
 *
 * Text cleanup follows transformers with ftfy installed (the default):
 * {@link fixText}, whitespace collapsed and trimmed, lower-cased. With
 * `{ ftfy: false }` it follows transformers without ftfy: BERT's
 * {@link BasicTokenizer} (accents stripped, punctuation split off).
 *
 * @example
 * ```ts
 * import { CLIPTokenizer } from "./clip.ts";
 * const tok = await CLIPTokenizer.fromPretrained("./sd-v1-5/tokenizer");
 * tok.tokenize("A photo"); // ["a</w>", "photo</w>"]
 * tok.encode("A photo", { padding: "max_length", truncation: true }).inputIds.length; // 77
 * ```
 *
 * @module
 */

import { ConfigError } from "../errors.ts";
import { BasicTokenizer } from "./basic.ts";
import { PreTrainedTokenizer } from "./base.ts";
import { byteEncode, BytePairEncoder, mergeKey } from "./bpe.ts";
import { parseJson, toIdMap, type TokenizerSource } from "./files.ts";
import {
  FILES,
  readTokenizerFolder,
  readTokenizerJsonModel,
  type TokenizerFolder,
} from "./folder.ts";
import { fixText } from "./ftfy.ts";
import { resolveSpecialTokens } from "./special_tokens.ts";
import { pySplit, pyStrip } from "./unicode.ts";

const VOCAB_FILE = "vocab.json";
const MERGES_FILE = "merges.txt";
// CLIPTokenizer reads merges.txt lines [1, 49152 - 256 - 2 + 1): at most 48894 merges.
const MAX_MERGES = 49152 - 256 - 2;
const START = "<|startoftext|>";
const END = "<|endoftext|>";

// `\s` of the `regex` module transformers' CLIP code uses (Unicode White_Space):
// unlike JavaScript's it lacks U+FEFF, unlike Python's `str.isspace` it lacks U+001C-U+001F.
const SPACE = "\\t-\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
const SPACE_RUNS = new RegExp(`[${SPACE}]+`, "gu");
/** CLIP's pre-split pattern (case-insensitive, as transformers compiles it). */
const PRE_SPLIT = new RegExp(
  "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|\\p{L}+|\\p{N}|" +
    `[^${SPACE}\\p{L}\\p{N}]+`,
  "giu",
);

/** Options of {@link CLIPTokenizer}. */
export interface CLIPTokenizerOptions {
  /**
   * Clean text as transformers does with ftfy installed (default true); false
   * reproduces transformers without ftfy (BERT's BasicTokenizer).
   */
  ftfy?: boolean;
}

/**
 * Parses `merges.txt` as `CLIPTokenizer` does: the first line (`#version`) is
 * skipped, at most 48894 merges are read, a line's rank is its position, and a
 * repeated pair keeps its last rank.
 *
 * @example
 * ```ts
 * import { parseMergesTxt } from "./clip.ts";
 * parseMergesTxt("#version: 0.2\ni n\nt h\n").get("t h"); // 1
 * ```
 */
export function parseMergesTxt(text: string): Map<string, number> {
  return rankMerges(pyStrip(text).split("\n").slice(1).map((line) => pySplit(line)));
}

/** Ranks `[first, second]` pairs by position; entries that are not pairs can never match. */
function rankMerges(pairs: readonly (readonly string[])[]): Map<string, number> {
  const ranks = new Map<string, number>();
  pairs.slice(0, MAX_MERGES).forEach((pair, rank) => {
    if (pair.length === 2) ranks.set(mergeKey(pair[0]!, pair[1]!), rank);
  });
  return ranks;
}

/** `tokenizer.json` merges: `"a b"` strings or `["a", "b"]` arrays. */
function parseJsonMerges(value: unknown, file: string): Map<string, number> {
  if (!Array.isArray(value)) {
    throw new ConfigError("expected a list of merges", { file, key: "model.merges" });
  }
  return rankMerges(value.map((m, i) => {
    if (typeof m === "string") return pySplit(m);
    if (Array.isArray(m) && m.every((s) => typeof s === "string")) return m as string[];
    throw new ConfigError(`merge ${i} is neither "a b" nor ["a", "b"]`, {
      file,
      key: "model.merges",
    });
  }));
}

/**
 * The CLIP byte-level BPE tokenizer.
 *
 * @example
 * ```ts
 * import { CLIPTokenizer } from "./clip.ts";
 * const tok = await CLIPTokenizer.fromPretrained("./sd-v1-5/tokenizer", { ftfy: false });
 * tok.tokenize("How's it?"); // ["how</w>", "'</w>", "s</w>", "it</w>", "?</w>"]
 * ```
 */
export class CLIPTokenizer extends PreTrainedTokenizer {
  /** The id that starts every sequence (`<|startoftext|>` in OpenAI's vocabulary). */
  readonly bosTokenId: number;
  /** The id that ends every sequence (`<|endoftext|>` in OpenAI's vocabulary). */
  readonly eosTokenId: number;
  /** Whether text is cleaned the ftfy way (else the BasicTokenizer way). */
  readonly ftfy: boolean;
  /** `<|startoftext|>` and `<|endoftext|>`. */
  protected readonly numSpecialTokens = 2;
  /** CLIP takes no segment ids. */
  protected readonly hasTokenTypeIds = false;
  readonly #bpe: BytePairEncoder;
  readonly #basic = new BasicTokenizer();

  /** Builds the tokenizer from a vocabulary, merge ranks and the parsed common files. */
  constructor(
    vocab: ReadonlyMap<string, number>,
    mergeRanks: ReadonlyMap<string, number>,
    folder: TokenizerFolder,
    options: CLIPTokenizerOptions = {},
  ) {
    const configFile = folder.reader.describe(FILES.config);
    const maxLength = folder.config.model_max_length;
    if (maxLength !== undefined && typeof maxLength !== "number") {
      throw new ConfigError(`unexpected value ${JSON.stringify(maxLength)}`, {
        file: configFile,
        key: "model_max_length",
      });
    }
    super({
      className: "CLIPTokenizer",
      vocab,
      specialTokens: resolveSpecialTokens({
        defaults: { unk_token: END, bos_token: START, eos_token: END, pad_token: END },
        wrapAsAddedToken: ["bos_token", "eos_token", "unk_token"],
        config: folder.config,
        configFile,
        map: folder.specialTokensMap,
        mapFile: folder.reader.describe(FILES.specialTokensMap),
      }),
      addedTokens: folder.addedTokens,
      modelMaxLength: maxLength,
      doLowerCase: false,
      configFile,
    });
    this.bosTokenId = this.requiredSpecialId("bos_token", configFile);
    this.eosTokenId = this.requiredSpecialId("eos_token", configFile);
    this.ftfy = options.ftfy ?? true;
    this.#bpe = new BytePairEncoder(mergeRanks);
  }

  /**
   * Loads `vocab.json` + `merges.txt` (or `tokenizer.json`'s BPE model) and
   * the config files of a tokenizer folder.
   *
   * @example
   * ```ts
   * import { CLIPTokenizer } from "./clip.ts";
   * const tok = await CLIPTokenizer.fromPretrained("./sd-2-1-base/tokenizer");
   * tok.padToken; // "!" (from special_tokens_map.json)
   * ```
   */
  static async fromPretrained(
    source: TokenizerSource,
    options: CLIPTokenizerOptions = {},
  ): Promise<CLIPTokenizer> {
    const folder = await readTokenizerFolder(source);
    const { reader } = folder;
    const [vocabText, mergesText] = await Promise.all([
      reader.read(VOCAB_FILE),
      reader.read(MERGES_FILE),
    ]);
    let vocab: Map<string, number>;
    let ranks: Map<string, number>;
    if (vocabText !== undefined && mergesText !== undefined) {
      vocab = toIdMap(
        parseJson(vocabText, reader.describe(VOCAB_FILE)),
        reader.describe(VOCAB_FILE),
      );
      ranks = parseMergesTxt(mergesText);
    } else {
      const missing = vocabText === undefined ? VOCAB_FILE : MERGES_FILE;
      const model = await readTokenizerJsonModel(reader, "BPE", missing);
      const file = reader.describe(FILES.tokenizerJson);
      vocab = toIdMap(model.vocab, file, "model.vocab");
      ranks = parseJsonMerges(model.merges, file);
    }
    return new CLIPTokenizer(vocab, ranks, folder, options);
  }

  /** Cleanup, CLIP's pre-split regex, then BPE on each piece's UTF-8 bytes. */
  protected tokenizeSegment(text: string): string[] {
    const cleaned = this.ftfy
      ? pyStrip(fixText(text).replace(SPACE_RUNS, " ")).toLowerCase()
      : this.#basic.tokenize(text).join(" ");
    const out: string[] = [];
    for (const [piece] of cleaned.matchAll(PRE_SPLIT)) {
      const encoded = byteEncode(piece);
      // CLIPTokenizer's BPE cache starts with these two, so they stay whole.
      if (encoded === START || encoded === END) out.push(encoded);
      else out.push(...this.#bpe.encode(encoded));
    }
    return out;
  }

  /** `bos ids eos`. */
  protected addSpecialIds(ids: readonly number[]): number[] {
    return [this.bosTokenId, ...ids, this.eosTokenId];
  }
}
