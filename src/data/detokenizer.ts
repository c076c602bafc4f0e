/** Punctuation written straight after the previous token, without a space. */
const CLOSING = new Set([',', '.', ';', ':', '!', '?', ')', ']', '}', '’', '”', '»', '…', '%']);
/** Punctuation after which the next token follows without a space. */
const OPENING = new Set(['(', '[', '{', '“', '‘', '«', '¿', '¡']);
/** CJK full-width punctuation carries its own spacing: no space on either side of it. */
const FULL_WIDTH = new Set([...'、。，．！？：；）」』】〉》（「『【〈《']);
/** WikiText's escaped infix punctuation ("state @-@ of @-@ the @-@ art") is written joined ("state-of-the-art"). */
const INFIX: ReadonlyMap<string, string> = new Map([
  ['@-@', '-'],
  ['@,@', ','],
  ['@.@', '.'],
]);

/**
 * Reassembles word-level tokens into text, one token at a time, so a sampler can print each
 * token as soon as it is drawn. Tokens are separated by a space except around line breaks,
 * before closing punctuation and after opening punctuation (a run of punctuation kept as one
 * token, such as "»," or "?!", counts by its first character before it and its last after it),
 * and on both sides of CJK full-width punctuation. A straight quote (" or ') opens
 * a quotation when none is open and closes it otherwise; line breaks forget open quotes, so an
 * unbalanced quote affects one line at most.
 */
export class Detokenizer {
  /** True at the start of the text, after a line break and after opening punctuation. */
  private glueNext = true;
  private readonly openQuotes = new Set<string>();

  /** The text to print for `token`: the token itself, preceded by a space if one belongs there. */
  push(token: string): string {
    if (token === '\n') {
      this.glueNext = true;
      this.openQuotes.clear();
      return '\n';
    }
    const infix = INFIX.get(token);
    if (infix !== undefined) {
      this.glueNext = true;
      return infix;
    }
    const first = firstCodePoint(token);
    const last = lastCodePoint(token);
    let glueBefore = this.glueNext || CLOSING.has(first) || FULL_WIDTH.has(first);
    this.glueNext = OPENING.has(last) || FULL_WIDTH.has(last);
    if (token === '"' || token === "'") {
      if (this.openQuotes.delete(token)) {
        glueBefore = true;
      } else {
        this.openQuotes.add(token);
        this.glueNext = true;
      }
    }
    return glueBefore ? token : ' ' + token;
  }
}

function firstCodePoint(token: string): string {
  return String.fromCodePoint(token.codePointAt(0)!);
}

function lastCodePoint(token: string): string {
  const low = token.charCodeAt(token.length - 1);
  return token.slice(low >= 0xdc00 && low <= 0xdfff && token.length >= 2 ? -2 : -1);
}

/** Joins a whole list of word-level tokens into text (see Detokenizer for the spacing rules). */
export function detokenize(tokens: Iterable<string>): string {
  const detokenizer = new Detokenizer();
  let text = '';
  for (const token of tokens) text += detokenizer.push(token);
  return text;
}
