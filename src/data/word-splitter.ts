import type { WordSplit } from './config.js';

const PUNCTUATION = /[\p{P}\p{S}]/u;
/** Code points that attach to the character before them (combining marks, ZWJ, variation selectors, tags). */
const EXTENDING = /[\p{M}\p{Cf}]/u;
const NON_ASCII = /[^\x00-\x7f]/;
/**
 * User-perceived characters, close enough for telling punctuation apart from words: a code
 * point with the marks, emoji modifiers, tag characters and ZWJ-joined code points after it,
 * or a pair of regional indicators (a flag). Many times faster than Intl.Segmenter.
 */
const CHARACTERS = /\p{Regional_Indicator}{2}|[^](?:[\p{M}\p{Emoji_Modifier}\u{E0020}-\u{E007F}]|\u200D[^]?)*/gu;

/**
 * Splits text into word-level tokens, one piece of a stream at a time.
 *
 * Whitespace separates tokens; a line break is a token of its own, `\n`, whether the file
 * writes it as `\n`, `\r\n` or a lone `\r`. In `punct` mode each whitespace-delimited chunk
 * then loses its leading and trailing punctuation characters, each becoming its own token
 * ("(hello)," -> "(", "hello", ")", ","), while a chunk that is all punctuation ("--", "@-@")
 * stays whole. A "character" here is a grapheme (see CHARACTERS), so flags, ZWJ emoji
 * sequences and symbols with combining marks are never torn apart.
 */
export class WordSplitter {
  /** A chunk that reached the end of the text pushed so far: the next piece may continue it. */
  private pending = '';
  /** The previous character was `\r`, so a `\n` right after it is the same line break. */
  private afterCarriageReturn = false;

  constructor(private readonly mode: WordSplit) {}

  push(text: string, emit: (token: string) => void): void {
    const joined = this.pending + text;
    let afterCarriageReturn = this.afterCarriageReturn;
    // The held-back chunk has no whitespace: resume scanning after it, so that a very long
    // run without whitespace is not rescanned on every push.
    let wordStart = this.pending === '' ? -1 : 0;
    for (let i = this.pending.length; i < joined.length; i++) {
      const unit = joined.charCodeAt(i);
      if (!isWhitespace(unit)) {
        afterCarriageReturn = false;
        if (wordStart < 0) wordStart = i;
        continue;
      }
      if (wordStart >= 0) {
        this.emitChunk(joined.slice(wordStart, i), emit);
        wordStart = -1;
      }
      if (unit === 0x0d || (unit === 0x0a && !afterCarriageReturn)) emit('\n');
      afterCarriageReturn = unit === 0x0d;
    }
    this.afterCarriageReturn = afterCarriageReturn;
    this.pending = wordStart >= 0 ? joined.slice(wordStart) : '';
  }

  /** Emits the held-back chunk; call once when the text ends. */
  end(emit: (token: string) => void): void {
    if (this.pending !== '') this.emitChunk(this.pending, emit);
    this.pending = '';
    this.afterCarriageReturn = false;
  }

  private emitChunk(chunk: string, emit: (token: string) => void): void {
    if (this.mode === 'space' || !hasPunctuationEdge(chunk)) {
      emit(chunk);
      return;
    }
    // An ASCII string indexes as its own list of characters.
    const characters: ArrayLike<string> = NON_ASCII.test(chunk) ? chunk.match(CHARACTERS)! : chunk;
    const count = characters.length;
    let lead = 0;
    while (lead < count && isPunctuation(characters[lead]!)) lead++;
    if (lead === count) {
      emit(chunk);
      return;
    }
    let trail = count;
    while (isPunctuation(characters[trail - 1]!)) trail--;
    let coreStart = 0;
    for (let k = 0; k < lead; k++) {
      emit(characters[k]!);
      coreStart += characters[k]!.length;
    }
    let coreEnd = chunk.length;
    for (let k = trail; k < count; k++) coreEnd -= characters[k]!.length;
    emit(chunk.slice(coreStart, coreEnd));
    for (let k = trail; k < count; k++) emit(characters[k]!);
  }
}

/**
 * Whether a chunk may start or end with punctuation: the cheap test that lets most words skip
 * being cut into characters. Its last character's base is found by stepping back over extending
 * code points (an Indic word ending in a vowel sign ends in a letter, not in punctuation).
 */
function hasPunctuationEdge(chunk: string): boolean {
  if (isPunctuation(chunk)) return true;
  let end = chunk.length;
  while (end > 0) {
    const low = chunk.charCodeAt(end - 1);
    const width = low >= 0xdc00 && low <= 0xdfff && end >= 2 ? 2 : 1;
    const last = chunk.slice(end - width, end);
    if (!EXTENDING.test(last)) return isPunctuation(last);
    end -= width;
  }
  return false;
}

/** A grapheme (or any text) counts as punctuation when its first code point is punctuation or a symbol. */
function isPunctuation(grapheme: string): boolean {
  const first = grapheme.charCodeAt(0);
  if (first < 0x80) return ASCII_PUNCTUATION[first] === 1;
  return PUNCTUATION.test(String.fromCodePoint(grapheme.codePointAt(0)!));
}

const ASCII_PUNCTUATION = Uint8Array.from({ length: 0x80 }, (_, code) =>
  PUNCTUATION.test(String.fromCharCode(code)) ? 1 : 0,
);

/** The characters JavaScript's \s matches, tested by code unit (all are in the BMP). */
function isWhitespace(unit: number): boolean {
  if (unit <= 0x20) return unit === 0x20 || (unit >= 0x09 && unit <= 0x0d);
  if (unit < 0xa0) return false;
  return (
    unit === 0xa0 ||
    unit === 0x1680 ||
    (unit >= 0x2000 && unit <= 0x200a) ||
    unit === 0x2028 ||
    unit === 0x2029 ||
    unit === 0x202f ||
    unit === 0x205f ||
    unit === 0x3000 ||
    unit === 0xfeff
  );
}
