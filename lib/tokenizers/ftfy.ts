/**
 * A port of `ftfy.fix_text` (ftfy 6.1.1, default `TextFixerConfig`) as
 * transformers' `CLIPTokenizer` calls it, without the mojibake repair.
 *
 * Ported, in ftfy's order, repeated per line until the text stops changing:
 * - `unescape_html` ("auto": skipped from the first line that contains "<" on)
 * - `fix_c1_controls` (U+0080–U+009F read as Windows-1252)
 * - `fix_latin_ligatures` (ﬁ -> fi, Ĳ -> IJ, ...)
 * - `fix_character_width` (fullwidth ASCII and halfwidth kana/Hangul to normal
 *   width, ideographic space to " ")
 * - `uncurl_quotes` (U+02BC, U+2018–U+201B -> '; U+201C–U+201F -> ")
 * - `fix_line_breaks` (CRLF, CR, U+2028, U+2029, U+0085 -> LF)
 * - `fix_surrogates` (unpaired surrogates -> U+FFFD)
 * - `remove_terminal_escapes` (ANSI `ESC[...m` sequences)
 * - `remove_control_chars` (C0 controls but tab/LF/FF/CR, DEL, U+206A–U+206F,
 *   U+FEFF, U+FFF9–U+FFFC)
 * - NFC normalisation
 *
 * Not ported: `fix_encoding` and its helpers (`restore_byte_a0`,
 * `replace_lossy_sequences`, `decode_inconsistent_utf8`), which detect
 * mojibake such as "cafÃ©" with ftfy's badness heuristic and re-decode it.
 * Text that ftfy would treat as mojibake can therefore tokenize differently;
 * well-formed text, including every accented, CJK, Greek and Cyrillic fixture
 * prompt, is unaffected because ftfy leaves it alone too.
 *
 * @example
 * ```ts
 * import { fixText } from "./ftfy.ts";
 * fixText("&quot;ＬＯＵＤ&quot; \u201cquotes\u201d ﬁne"); // "\"LOUD\" \"quotes\" fine"
 * ```
 *
 * @module
 */

import { unescapeHtml, WINDOWS_1252_C1 } from "./html_unescape.ts";

// ftfy's `max_decode_length`: lines longer than this (in code points) are fixed in pieces.
const MAX_SEGMENT = 1_000_000;

const LIGATURES: ReadonlyMap<string, string> = new Map([
  ["\u0132", "IJ"],
  ["\u0133", "ij"],
  ["\u0149", "\u02bcn"],
  ["\u01f1", "DZ"],
  ["\u01f2", "Dz"],
  ["\u01f3", "dz"],
  ["\u01c4", "D\u017d"],
  ["\u01c5", "D\u017e"],
  ["\u01c6", "d\u017e"],
  ["\u01c7", "LJ"],
  ["\u01c8", "Lj"],
  ["\u01c9", "lj"],
  ["\u01ca", "NJ"],
  ["\u01cb", "Nj"],
  ["\u01cc", "nj"],
  ["\ufb00", "ff"],
  ["\ufb01", "fi"],
  ["\ufb02", "fl"],
  ["\ufb03", "ffi"],
  ["\ufb04", "ffl"],
  ["\ufb05", "\u017ft"],
  ["\ufb06", "st"],
]);
const LIGATURE_RE = /[\u0132\u0133\u0149\u01f1-\u01f3\u01c4-\u01cc\ufb00-\ufb06]/g;

/** ftfy's WIDTH_MAP: U+FF01–U+FFEF to their NFKC forms where those differ, U+3000 to " ". */
function buildWidthMap(): ReadonlyMap<string, string> {
  const map = new Map([["\u3000", " "]]);
  for (let cp = 0xff01; cp < 0xfff0; cp++) {
    const ch = String.fromCharCode(cp);
    const alt = ch.normalize("NFKC");
    if (alt !== ch) map.set(ch, alt);
  }
  return map;
}

const WIDTH_MAP = buildWidthMap();
const WIDTH_RE = /[\u3000\uff01-\uffef]/g;
const C1_RE = /[\x80-\x9f]/g;
const SINGLE_QUOTE_RE = /[\u02bc\u2018-\u201b]/g;
const DOUBLE_QUOTE_RE = /[\u201c-\u201f]/g;
const LINE_BREAK_RE = /\r\n|[\r\u2028\u2029\x85]/g;
// With the u flag this matches only surrogates that are not part of a valid pair.
const LONE_SURROGATE_RE = /[\ud800-\udfff]/gu;
// Python's \d is any decimal digit (Nd), not only ASCII. Control characters
// are what these two patterns are for, hence the lint exceptions.
// deno-lint-ignore no-control-regex
const ANSI_RE = /\x1b\[(?:\p{Nd}|;)*[a-zA-Z]/gu;
// deno-lint-ignore no-control-regex
const CONTROL_RE = /[\x00-\x08\x0b\x0e-\x1f\x7f\u206a-\u206f\ufeff\ufff9-\ufffc]/g;

/**
 * `ftfy.fix_text(text)` with ftfy 6.1.1's defaults, minus mojibake repair
 * (see the module documentation for the exact list of steps).
 *
 * @example
 * ```ts
 * import { fixText } from "./ftfy.ts";
 * fixText("HTML &amp; entities"); // "HTML & entities"
 * fixText("<b>&amp;</b>"); // "<b>&amp;</b>" (looks like real HTML: entities kept)
 * ```
 */
export function fixText(text: string): string {
  const chars = Array.from(text);
  let unescape = true;
  let out = "";
  for (let pos = 0; pos < chars.length;) {
    let end = chars.indexOf("\n", pos) + 1;
    if (end === 0) end = chars.length;
    if (end - pos > MAX_SEGMENT) end = pos + MAX_SEGMENT;
    const segment = chars.slice(pos, end).join("");
    // Once a line looks like real HTML, entities stay escaped for the rest of the text.
    if (segment.includes("<")) unescape = false;
    out += fixSegment(segment, unescape);
    pos = end;
  }
  return out;
}

/** ftfy's `fix_and_explain` without `fix_encoding`: all fixers until a fixed point. */
function fixSegment(segment: string, unescape: boolean): string {
  let text = segment;
  for (;;) {
    const before = text;
    if (unescape) text = unescapeHtml(text);
    text = text
      .replace(C1_RE, (c) => WINDOWS_1252_C1[c.charCodeAt(0) - 0x80]!)
      .replace(LIGATURE_RE, (c) => LIGATURES.get(c)!)
      .replace(WIDTH_RE, (c) => WIDTH_MAP.get(c) ?? c)
      .replace(DOUBLE_QUOTE_RE, '"')
      .replace(SINGLE_QUOTE_RE, "'")
      .replace(LINE_BREAK_RE, "\n")
      .replace(LONE_SURROGATE_RE, "\ufffd")
      .replace(ANSI_RE, "")
      .replace(CONTROL_RE, "")
      .normalize("NFC");
    if (text === before) return text;
  }
}
