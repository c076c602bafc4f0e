/**
 * Text from files (tokens, tensor names, paths) shown in messages and `info` must be readable as
 * what it is: a no-break space printed raw reads as a plain space, a zero-width space or a BOM
 * as nothing, a line separator or `\r` breaks or overwrites the line. These functions are the
 * one place that decides which characters are invisible and how they are written.
 */

/**
 * Invisible by Unicode category or property: controls (Cc), format characters (Cf: ZWSP, BOM,
 * bidi marks), every space separator but the plain space (Zs: no-break and thin spaces), line
 * and paragraph separators (Zl, Zp), lone surrogates (Cs), private-use (Co) and unassigned (Cn)
 * code points, and the default-ignorable ones (variation selectors, Hangul fillers, U+034F).
 */
const INVISIBLE = /(?! )[\p{Cc}\p{Cf}\p{Z}\p{Cs}\p{Co}\p{Cn}\p{Default_Ignorable_Code_Point}]/gu;

/** `\uXXXX` for a BMP code point, `\u{XXXXX}` beyond it (JSON's and JavaScript's spellings). */
function escapeCodePoint(ch: string): string {
  const cp = ch.codePointAt(0)!;
  if (ch === '\n') return '\\n';
  if (ch === '\r') return '\\r';
  if (ch === '\t') return '\\t';
  return cp > 0xffff ? `\\u{${cp.toString(16).toUpperCase()}}` : `\\u${cp.toString(16).toUpperCase().padStart(4, '0')}`;
}

/** `text` with every invisible character (see INVISIBLE) written as an escape; the rest as it is. */
export function escapeInvisible(text: string): string {
  return text.replace(INVISIBLE, escapeCodePoint);
}

/**
 * A token or name quoted for a message or listing: JSON's quoting (so `"` and `\` are escaped
 * and `""` is visibly empty) with invisible characters escaped too: `"a\u00A0b"`, `"\u200B"`.
 */
export function quoteText(text: string): string {
  return escapeInvisible(JSON.stringify(text));
}
