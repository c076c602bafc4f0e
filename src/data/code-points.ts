/**
 * Calls `visit` with every Unicode code point of `text`, in order. Reads UTF-16 units with
 * charCodeAt and joins surrogate pairs by hand: on large corpora this is several times faster
 * than iterating the string or building per-character strings. A lone surrogate (possible in
 * JavaScript strings, never in decoded UTF-8) is passed on as it is.
 */
export function forEachCodePoint(text: string, visit: (codePoint: number) => void): void {
  const length = text.length;
  for (let i = 0; i < length; i++) {
    const unit = text.charCodeAt(i);
    if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        visit(((unit - 0xd800) << 10) + (next - 0xdc00) + 0x10000);
        i++;
        continue;
      }
    }
    visit(unit);
  }
}

/** The code points of a (small) string as one-code-point strings. */
export function charTokens(text: string): string[] {
  const tokens: string[] = [];
  forEachCodePoint(text, (codePoint) => tokens.push(String.fromCodePoint(codePoint)));
  return tokens;
}
