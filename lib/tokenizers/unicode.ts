/**
 * Character classes and string helpers that behave like the Python built-ins
 * transformers' slow tokenizers use (`str.isspace`, `str.strip`, `str.split`,
 * `unicodedata.category`). JavaScript's `\s` and `trim()` differ from Python's
 * (JS counts U+FEFF as space, Python counts U+001C–U+001F and U+0085), so
 * every whitespace decision goes through these helpers instead.
 *
 * Strings are walked by code point, as Python walks a `str`.
 *
 * @example
 * ```ts
 * import { pySplit, pyStrip } from "./unicode.ts";
 * pyStrip("\u0085 a b \u00a0"); // "a b"
 * pySplit(" a\u3000b "); // ["a", "b"]
 * ```
 *
 * @module
 */

// The characters for which Python's `str.isspace()` is true (Unicode 14, as Python 3.11).
const PY_SPACE_CLASS =
  "\\t\\n\\v\\f\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";

const PY_SPACE_RUN = new RegExp(`[${PY_SPACE_CLASS}]+`, "u");
const PY_LEADING_SPACE = new RegExp(`^[${PY_SPACE_CLASS}]+`, "u");
const PY_TRAILING_SPACE = new RegExp(`[${PY_SPACE_CLASS}]+$`, "u");

/**
 * Python's `s.lstrip()` (no argument).
 *
 * @example
 * ```ts
 * import { pyLstrip } from "./unicode.ts";
 * pyLstrip("\u3000 x "); // "x "
 * ```
 */
export function pyLstrip(s: string): string {
  return s.replace(PY_LEADING_SPACE, "");
}

/**
 * Python's `s.rstrip()` (no argument).
 *
 * @example
 * ```ts
 * import { pyRstrip } from "./unicode.ts";
 * pyRstrip(" x\u0085"); // " x"
 * ```
 */
export function pyRstrip(s: string): string {
  return s.replace(PY_TRAILING_SPACE, "");
}

/**
 * Python's `s.strip()` (no argument).
 *
 * @example
 * ```ts
 * import { pyStrip } from "./unicode.ts";
 * pyStrip("\n x \t"); // "x"
 * ```
 */
export function pyStrip(s: string): string {
  return pyRstrip(pyLstrip(s));
}

/**
 * Python's `s.split()` (no argument): split on runs of whitespace, no empty parts.
 *
 * @example
 * ```ts
 * import { pySplit } from "./unicode.ts";
 * pySplit("  a \u2028 b "); // ["a", "b"]
 * ```
 */
export function pySplit(s: string): string[] {
  const stripped = pyStrip(s);
  return stripped === "" ? [] : stripped.split(PY_SPACE_RUN);
}

const CONTROL = /^\p{C}$/u;
const SPACE_SEPARATOR = /^\p{Zs}$/u;
const PUNCTUATION = /^\p{P}$/u;
const NONSPACING_MARK = /\p{Mn}/gu;

/**
 * BERT's `_is_whitespace`: space, tab, newline, carriage return, or category Zs.
 *
 * @example
 * ```ts
 * import { isBertWhitespace } from "./unicode.ts";
 * isBertWhitespace("\u00a0"); // true
 * isBertWhitespace("\u2028"); // false (category Zl)
 * ```
 */
export function isBertWhitespace(ch: string): boolean {
  return ch === " " || ch === "\t" || ch === "\n" || ch === "\r" || SPACE_SEPARATOR.test(ch);
}

/**
 * BERT's `_is_control`: any category C* character except tab, newline and
 * carriage return (which count as whitespace).
 *
 * @example
 * ```ts
 * import { isBertControl } from "./unicode.ts";
 * isBertControl("\u200b"); // true (Cf)
 * isBertControl("\t"); // false
 * ```
 */
export function isBertControl(ch: string): boolean {
  if (ch === "\t" || ch === "\n" || ch === "\r") return false;
  return CONTROL.test(ch);
}

/**
 * BERT's `_is_punctuation`: every non-alphanumeric printable ASCII character
 * (so `$`, `+`, `^`, `` ` `` count even though Unicode calls them symbols), or
 * any category P* character.
 *
 * @example
 * ```ts
 * import { isBertPunctuation } from "./unicode.ts";
 * isBertPunctuation("$"); // true
 * isBertPunctuation("\u201c"); // true (Pi)
 * isBertPunctuation("\u00bd"); // false (No)
 * ```
 */
export function isBertPunctuation(ch: string): boolean {
  const cp = ch.codePointAt(0)!;
  if (
    (cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) ||
    (cp >= 123 && cp <= 126)
  ) {
    return true;
  }
  return PUNCTUATION.test(ch);
}

/**
 * BERT's `_is_chinese_char`: the CJK Unified Ideographs blocks (not Hangul,
 * Hiragana or Katakana).
 *
 * @example
 * ```ts
 * import { isCjkIdeograph } from "./unicode.ts";
 * isCjkIdeograph(0x732b); // true (猫)
 * isCjkIdeograph(0x304c); // false (が)
 * ```
 */
export function isCjkIdeograph(cp: number): boolean {
  return (cp >= 0x4e00 && cp <= 0x9fff) ||
    (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x20000 && cp <= 0x2a6df) ||
    (cp >= 0x2a700 && cp <= 0x2b73f) ||
    (cp >= 0x2b740 && cp <= 0x2b81f) ||
    (cp >= 0x2b820 && cp <= 0x2ceaf) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0x2f800 && cp <= 0x2fa1f);
}

/**
 * BERT's `_run_strip_accents`: NFD, then drop every nonspacing mark (Mn).
 *
 * @example
 * ```ts
 * import { stripAccents } from "./unicode.ts";
 * stripAccents("résumé"); // "resume"
 * ```
 */
export function stripAccents(s: string): string {
  return s.normalize("NFD").replace(NONSPACING_MARK, "");
}
