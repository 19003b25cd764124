/**
 * Byte-level BPE as OpenAI's CLIP and transformers' `CLIPTokenizer` do it:
 * every UTF-8 byte of a pre-token is mapped to a printable character
 * (`bytes_to_unicode`), the last symbol gets `</w>`, and the adjacent pair
 * with the lowest merge rank is merged until no ranked pair is left.
 *
 * @example
 * ```ts
 * import { BytePairEncoder, byteEncode } from "./bpe.ts";
 * const bpe = new BytePairEncoder(new Map([["c a", 0], ["ca t</w>", 1]]));
 * bpe.encode(byteEncode("cat")); // ["cat</w>"]
 * ```
 *
 * @module
 */

/** GPT-2/CLIP's `bytes_to_unicode()`: byte value -> one printable character. */
function buildByteTable(): readonly string[] {
  const table = new Array<string>(256);
  let next = 256;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || b >= 0xae;
    table[b] = String.fromCodePoint(printable ? b : next++);
  }
  return table;
}

const BYTE_TABLE = buildByteTable();
const UTF8 = new TextEncoder();

/**
 * The UTF-8 bytes of `text`, each written as its `bytes_to_unicode` character.
 *
 * @example
 * ```ts
 * import { byteEncode } from "./bpe.ts";
 * byteEncode("é "); // "Ã©Ġ"
 * ```
 */
export function byteEncode(text: string): string {
  let out = "";
  for (const b of UTF8.encode(text)) out += BYTE_TABLE[b];
  return out;
}

/**
 * The key of a merge pair in a rank map: the two symbols joined by one space
 * (byte-level symbols never contain a space).
 *
 * @example
 * ```ts
 * import { mergeKey } from "./bpe.ts";
 * mergeKey("i", "n"); // "i n"
 * ```
 */
export function mergeKey(first: string, second: string): string {
  return `${first} ${second}`;
}

// Memoisation only, so it can be dropped when it grows; the pre-tokens of
// real prompts repeat a lot and the cache rarely comes near this.
const CACHE_LIMIT = 50_000;

/**
 * Applies ranked merges to byte-encoded pre-tokens, with a cache.
 *
 * @example
 * ```ts
 * import { BytePairEncoder } from "./bpe.ts";
 * const bpe = new BytePairEncoder(new Map([["a b</w>", 0]]));
 * bpe.encode("ab"); // ["ab</w>"]
 * bpe.encode("ba"); // ["b", "a</w>"]
 * ```
 */
export class BytePairEncoder {
  /** Merge rank by {@link mergeKey}; lower merges first. */
  readonly ranks: ReadonlyMap<string, number>;
  readonly #cache = new Map<string, readonly string[]>();

  /** `ranks` maps {@link mergeKey}(first, second) to the merge's rank. */
  constructor(ranks: ReadonlyMap<string, number>) {
    this.ranks = ranks;
  }

  /**
   * The BPE symbols of one non-empty byte-encoded pre-token; the last symbol
   * carries `</w>`.
   *
   * @example
   * ```ts
   * import { BytePairEncoder } from "./bpe.ts";
   * new BytePairEncoder(new Map()).encode("hi"); // ["h", "i</w>"]
   * ```
   */
  encode(token: string): readonly string[] {
    const cached = this.#cache.get(token);
    if (cached) return cached;
    const result = this.#merge(token);
    if (this.#cache.size >= CACHE_LIMIT) this.#cache.clear();
    this.#cache.set(token, result);
    return result;
  }

  #merge(token: string): string[] {
    const chars = Array.from(token);
    let word = chars.slice(0, -1);
    word.push(chars[chars.length - 1] + "</w>");
    while (word.length > 1) {
      let best = Infinity;
      let first = "";
      let second = "";
      for (let i = 0; i < word.length - 1; i++) {
        const rank = this.ranks.get(mergeKey(word[i]!, word[i + 1]!));
        if (rank !== undefined && rank < best) {
          best = rank;
          first = word[i]!;
          second = word[i + 1]!;
        }
      }
      if (best === Infinity) break;
      // Merge every non-overlapping occurrence, left to right, in one pass.
      const merged: string[] = [];
      for (let i = 0; i < word.length;) {
        if (i < word.length - 1 && word[i] === first && word[i + 1] === second) {
          merged.push(first + second);
          i += 2;
        } else {
          merged.push(word[i]!);
          i += 1;
        }
      }
      word = merged;
    }
    return word;
  }
}
