/**
 * ftfy 6.1.1's `unescape_html`: decode `&name;` entities (HTML5 names, plus
 * all-caps spellings of lower-case names) and `&#NNN;` / `&#xHHH;` character
 * references, but only complete ones that end in ";" — informal text such as
 * "this&not that" or "&amp" is left alone.
 *
 * @example
 * ```ts
 * import { unescapeHtml } from "./html_unescape.ts";
 * unescapeHtml("&lt;b&gt; &EACUTE; &#x1F600; &amp"); // "<b> É 😀 &amp"
 * ```
 *
 * @module
 */

import { HTML_ENTITIES } from "./html_entities.ts";

/**
 * Windows-1252's characters for bytes 0x80–0x9F, with the five bytes it leaves
 * undefined passed through as C1 controls ("sloppy" Windows-1252, as ftfy and
 * Python's `html` module use it).
 *
 * @example
 * ```ts
 * import { WINDOWS_1252_C1 } from "./html_unescape.ts";
 * WINDOWS_1252_C1[0x93 - 0x80]; // "\u201c"
 * ```
 */
export const WINDOWS_1252_C1: string =
  "\u20ac\u0081\u201a\u0192\u201e\u2026\u2020\u2021\u02c6\u2030\u0160\u2039\u0152\u008d\u017d\u008f" +
  "\u0090\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc\u2122\u0161\u203a\u0153\u009d\u017e\u0178";

const ENTITY = /&#?[0-9A-Za-z]{1,24};/g;
const NUMERIC = /^&#(?:([0-9]+)|[xX]([0-9a-fA-F]+));$/;

/**
 * Decodes the complete HTML entities and character references in `text`.
 *
 * @example
 * ```ts
 * import { unescapeHtml } from "./html_unescape.ts";
 * unescapeHtml("P&eacute;rez &ntilde; &nTILDE;"); // "Pérez ñ &nTILDE;"
 * ```
 */
export function unescapeHtml(text: string): string {
  return text.replace(ENTITY, (match) => {
    if (match[1] !== "#") return HTML_ENTITIES.get(match.slice(1, -1)) ?? match;
    const decoded = decodeCharRef(match);
    // ftfy keeps the reference when Python's html.unescape decodes only part of it.
    return decoded === null || decoded.includes(";") ? match : decoded;
  });
}

/**
 * Python's `html.unescape` of a whole `&#...;` match, or null when it would
 * leave the semicolon behind (not a plain decimal or hex reference).
 */
function decodeCharRef(ref: string): string | null {
  const m = NUMERIC.exec(ref);
  if (!m) return null;
  const num = m[1] !== undefined ? parseInt(m[1], 10) : parseInt(m[2]!, 16);
  if (num === 0) return "\ufffd";
  if (num === 0x0d) return "\r";
  if (num >= 0x80 && num <= 0x9f) return WINDOWS_1252_C1[num - 0x80]!;
  if ((num >= 0xd800 && num <= 0xdfff) || num > 0x10ffff) return "\ufffd";
  if (isInvalidCodePoint(num)) return "";
  return String.fromCodePoint(num);
}

/** Python `html._invalid_codepoints` (C0/C1 controls but tab/LF/FF/CR, noncharacters). */
function isInvalidCodePoint(cp: number): boolean {
  return (cp >= 0x1 && cp <= 0x8) || cp === 0xb || (cp >= 0xe && cp <= 0x1f) ||
    (cp >= 0x7f && cp <= 0x9f) || (cp >= 0xfdd0 && cp <= 0xfdef) || (cp & 0xfffe) === 0xfffe;
}
