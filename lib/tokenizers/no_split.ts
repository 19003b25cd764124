/**
 * The first step of transformers' `PreTrainedTokenizer.tokenize`: special and
 * added tokens are cut out of the text whole (leftmost, then longest match,
 * as its `Trie.split`), whitespace next to them is stripped as each token's
 * rules say, and only the text between them reaches the model's tokenizer.
 *
 * @example
 * ```ts
 * import { NoSplitTokens } from "./no_split.ts";
 * const ns = new NoSplitTokens(["[SEP]"], new Map());
 * ns.split("a [SEP] b"); // [{ text: "a", whole: false }, { text: "[SEP]", whole: true }, { text: "b", whole: false }]
 * ```
 *
 * @module
 */

import { pyLstrip, pyRstrip } from "./unicode.ts";

/** How much whitespace a token eats on each side. */
export interface StripRule {
  /** Strip the whitespace before the token. */
  readonly lstrip: boolean;
  /** Strip the whitespace after the token. */
  readonly rstrip: boolean;
}

/** A piece of split text: a no-split token (`whole`) or the text between them. */
export interface TextPiece {
  /** The piece's text. */
  readonly text: string;
  /** True when the piece is one of the no-split tokens. */
  readonly whole: boolean;
}

const STRIP_BOTH: StripRule = { lstrip: true, rstrip: true };

/**
 * A set of tokens that are never split, with their whitespace rules.
 *
 * @example
 * ```ts
 * import { NoSplitTokens } from "./no_split.ts";
 * const ns = new NoSplitTokens(["<e>"], new Map([["<e>", { lstrip: false, rstrip: false }]]));
 * ns.split("x <e> y").map((p) => p.text); // ["x ", "<e>", " y"]
 * ```
 */
export class NoSplitTokens {
  /** The tokens, longest first. */
  readonly tokens: readonly string[];
  readonly #rules: ReadonlyMap<string, StripRule>;

  /**
   * `rules` holds the AddedToken rules; tokens without one (plain strings)
   * strip whitespace on both sides, as transformers does by default.
   */
  constructor(tokens: Iterable<string>, rules: ReadonlyMap<string, StripRule>) {
    this.tokens = [...new Set(tokens)].filter((t) => t !== "").sort((a, b) => b.length - a.length);
    this.#rules = rules;
  }

  /**
   * Cuts `text` at the no-split tokens, applies the strip rules and drops
   * empty pieces.
   *
   * @example
   * ```ts
   * import { NoSplitTokens } from "./no_split.ts";
   * new NoSplitTokens(["[CLS]"], new Map()).split("[CLS]  hi").map((p) => p.text); // ["[CLS]", "hi"]
   * ```
   */
  split(text: string): TextPiece[] {
    const pieces: { text: string; whole: boolean }[] = [];
    let start = 0;
    for (let i = 0; i < text.length;) {
      const token = this.#longestAt(text, i);
      if (token === undefined) {
        i++;
        continue;
      }
      if (i > start) pieces.push({ text: text.slice(start, i), whole: false });
      pieces.push({ text: token, whole: true });
      i += token.length;
      start = i;
    }
    if (start < text.length) pieces.push({ text: text.slice(start), whole: false });
    for (let i = 0; i < pieces.length; i++) {
      if (!pieces[i]!.whole) continue;
      const rule = this.#rules.get(pieces[i]!.text) ?? STRIP_BOTH;
      const left = pieces[i - 1];
      const right = pieces[i + 1];
      if (rule.rstrip && right) right.text = pyLstrip(right.text);
      if (rule.lstrip && left) left.text = pyRstrip(left.text);
    }
    return pieces.filter((p) => p.text !== "");
  }

  /**
   * Lower-cases everything except the no-split tokens, one code point at a
   * time (transformers' `do_lower_case` pre-pass; at a position where several
   * tokens match, the shortest is protected, as its regex alternation does).
   *
   * @example
   * ```ts
   * import { NoSplitTokens } from "./no_split.ts";
   * new NoSplitTokens(["[MASK]"], new Map()).lowerOutside("A [MASK] B"); // "a [MASK] b"
   * ```
   */
  lowerOutside(text: string): string {
    let out = "";
    for (let i = 0; i < text.length;) {
      const token = this.#shortestAt(text, i);
      if (token !== undefined) {
        out += token;
        i += token.length;
        continue;
      }
      const ch = String.fromCodePoint(text.codePointAt(i)!);
      out += ch.toLowerCase();
      i += ch.length;
    }
    return out;
  }

  #longestAt(text: string, i: number): string | undefined {
    return this.tokens.find((t) => text.startsWith(t, i));
  }

  #shortestAt(text: string, i: number): string | undefined {
    return this.tokens.findLast((t) => text.startsWith(t, i));
  }
}
