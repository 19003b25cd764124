/**
 * BERT's `BasicTokenizer` as in transformers 4.26.1: control-character
 * removal, whitespace normalisation, spaces around CJK ideographs, lower-casing
 * with accent stripping, and splitting off every punctuation character. It is
 * the first stage of {@link BertTokenizer} and the whole pre-tokeniser of
 * `CLIPTokenizer` when ftfy is not installed.
 *
 * @example
 * ```ts
 * import { BasicTokenizer } from "./basic.ts";
 * new BasicTokenizer().tokenize("Héllo, WORLD!"); // ["hello", ",", "world", "!"]
 * ```
 *
 * @module
 */

import {
  isBertControl,
  isBertPunctuation,
  isBertWhitespace,
  isCjkIdeograph,
  pySplit,
  stripAccents,
} from "./unicode.ts";

/** Options of {@link BasicTokenizer}, named as transformers' keyword arguments. */
export interface BasicTokenizerOptions {
  /** Lower-case every token not in `neverSplit` (default true). */
  doLowerCase?: boolean;
  /** Tokens kept whole: neither lower-cased nor split on punctuation. */
  neverSplit?: Iterable<string>;
  /** Put spaces around CJK ideographs so each is its own token (default true). */
  tokenizeChineseChars?: boolean;
  /** Strip accents; `null` (default) means "when lower-casing". */
  stripAccents?: boolean | null;
}

/**
 * The rule-based pre-tokeniser of BERT.
 *
 * @example
 * ```ts
 * import { BasicTokenizer } from "./basic.ts";
 * const basic = new BasicTokenizer({ neverSplit: ["[CLS]"] });
 * basic.tokenize("[CLS] don't"); // ["[CLS]", "don", "'", "t"]
 * ```
 */
export class BasicTokenizer {
  /** Whether tokens are lower-cased. */
  readonly doLowerCase: boolean;
  /** Tokens that are never lower-cased or split. */
  readonly neverSplit: ReadonlySet<string>;
  /** Whether CJK ideographs become separate tokens. */
  readonly tokenizeChineseChars: boolean;
  /** Accent stripping: `null` follows `doLowerCase`. */
  readonly stripAccents: boolean | null;

  /** Builds a basic tokenizer; every option defaults as in transformers. */
  constructor(options: BasicTokenizerOptions = {}) {
    this.doLowerCase = options.doLowerCase ?? true;
    this.neverSplit = new Set(options.neverSplit ?? []);
    this.tokenizeChineseChars = options.tokenizeChineseChars ?? true;
    this.stripAccents = options.stripAccents ?? null;
  }

  /**
   * Splits `text` into words and punctuation; `neverSplit` adds to the
   * constructor's set for this call (transformers passes the special tokens).
   *
   * @example
   * ```ts
   * import { BasicTokenizer } from "./basic.ts";
   * new BasicTokenizer().tokenize("東京 café", ["X"]); // ["東", "京", "cafe"]
   * ```
   */
  tokenize(text: string, neverSplit?: Iterable<string>): string[] {
    const keep = neverSplit ? new Set([...this.neverSplit, ...neverSplit]) : this.neverSplit;
    let cleaned = cleanText(text);
    if (this.tokenizeChineseChars) cleaned = spaceCjk(cleaned);
    const split: string[] = [];
    for (let token of pySplit(cleaned)) {
      if (!keep.has(token)) {
        if (this.doLowerCase) {
          token = token.toLowerCase();
          if (this.stripAccents !== false) token = stripAccents(token);
        } else if (this.stripAccents) {
          token = stripAccents(token);
        }
      }
      split.push(...(keep.has(token) ? [token] : splitOnPunctuation(token)));
    }
    return pySplit(split.join(" "));
  }
}

/** Drops NUL, U+FFFD and control characters; maps every whitespace character to " ". */
function cleanText(text: string): string {
  let out = "";
  for (const ch of text) {
    if (ch === "\0" || ch === "\ufffd" || isBertControl(ch)) continue;
    out += isBertWhitespace(ch) ? " " : ch;
  }
  return out;
}

function spaceCjk(text: string): string {
  let out = "";
  for (const ch of text) out += isCjkIdeograph(ch.codePointAt(0)!) ? ` ${ch} ` : ch;
  return out;
}

/** Every punctuation character becomes its own piece; the runs between stay whole. */
function splitOnPunctuation(token: string): string[] {
  const pieces: string[] = [];
  let startNew = true;
  for (const ch of token) {
    if (isBertPunctuation(ch)) {
      pieces.push(ch);
      startNew = true;
    } else {
      if (startNew) pieces.push("");
      startNew = false;
      pieces[pieces.length - 1] += ch;
    }
  }
  return pieces;
}
