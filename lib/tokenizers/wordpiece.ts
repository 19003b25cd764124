/**
 * BERT's `WordpieceTokenizer`: greedy longest-match-first sub-words, with
 * continuation pieces prefixed by `##`. A word with no full cover, or longer
 * than `maxInputCharsPerWord` code points, becomes the unknown token.
 *
 * @example
 * ```ts
 * import { WordpieceTokenizer } from "./wordpiece.ts";
 * const vocab = new Map([["[UNK]", 0], ["paint", 1], ["##ing", 2]]);
 * new WordpieceTokenizer(vocab, "[UNK]").tokenize("painting"); // ["paint", "##ing"]
 * ```
 *
 * @module
 */

import { pySplit } from "./unicode.ts";

/**
 * Greedy WordPiece over a fixed vocabulary.
 *
 * @example
 * ```ts
 * import { WordpieceTokenizer } from "./wordpiece.ts";
 * const wp = new WordpieceTokenizer(new Map([["a", 0]]), "[UNK]");
 * wp.tokenize("a b"); // ["a", "[UNK]"]
 * ```
 */
export class WordpieceTokenizer {
  /** The vocabulary the pieces must come from. */
  readonly vocab: ReadonlyMap<string, number>;
  /** What an uncoverable word becomes. */
  readonly unkToken: string;
  /** Longer words (in code points) become `unkToken` without being tried. */
  readonly maxInputCharsPerWord: number;

  /** `maxInputCharsPerWord` defaults to 100, as in transformers. */
  constructor(vocab: ReadonlyMap<string, number>, unkToken: string, maxInputCharsPerWord = 100) {
    this.vocab = vocab;
    this.unkToken = unkToken;
    this.maxInputCharsPerWord = maxInputCharsPerWord;
  }

  /**
   * Splits each whitespace-separated word of `text` into pieces.
   *
   * @example
   * ```ts
   * import { WordpieceTokenizer } from "./wordpiece.ts";
   * const wp = new WordpieceTokenizer(new Map([["un", 0], ["##aff", 1], ["##able", 2]]), "?");
   * wp.tokenize("unaffable"); // ["un", "##aff", "##able"]
   * ```
   */
  tokenize(text: string): string[] {
    const out: string[] = [];
    for (const word of pySplit(text)) {
      const chars = Array.from(word);
      const pieces = chars.length > this.maxInputCharsPerWord ? null : this.#pieces(chars);
      if (pieces) out.push(...pieces);
      else out.push(this.unkToken);
    }
    return out;
  }

  /** The greedy cover of one word, or null when some position has no match. */
  #pieces(chars: string[]): string[] | null {
    const pieces: string[] = [];
    let start = 0;
    while (start < chars.length) {
      let end = chars.length;
      let found: string | null = null;
      while (start < end) {
        const sub = (start > 0 ? "##" : "") + chars.slice(start, end).join("");
        if (this.vocab.has(sub)) {
          found = sub;
          break;
        }
        end--;
      }
      if (found === null) return null;
      pieces.push(found);
      start = end;
    }
    return pieces;
  }
}
