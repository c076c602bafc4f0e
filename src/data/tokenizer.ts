import { charTokens, forEachCodePoint } from './code-points.js';
import type { InvalidUtf8Mode, LineEndings, TokenizerConfig, TokenLevel, WordSplit } from './config.js';
import { CorpusDecoder } from './corpus-decoder.js';
import { describeSource } from './source.js';
import { WordSplitter } from './word-splitter.js';

/** Turns a corpus's byte chunks into tokens, reporting each token to the callback it was made with. */
export interface ByteTokenizer {
  push(chunk: Uint8Array): void;
  /** Call once after the last chunk: reports the tokens held back for more input. */
  end(): void;
}

/**
 * Character level: every Unicode code point is a token, reported as a number so that large
 * corpora never pay for a string per character. With `lineEndings` `lf`, `\r\n` and a lone
 * `\r` are reported as `\n` (a `\r\n` split across chunks included); with `keep`, `\r` is
 * kept, so text round-trips exactly.
 */
export function createCharTokenizer(
  invalidUtf8: InvalidUtf8Mode,
  sourceName: string,
  onCodePoint: (codePoint: number) => void,
  lineEndings: LineEndings = 'keep',
): ByteTokenizer {
  const decoder = new CorpusDecoder(invalidUtf8, sourceName);
  const visit = lineEndings === 'lf' ? lineFeedsOnly(onCodePoint) : onCodePoint;
  return {
    push: (chunk) => forEachCodePoint(decoder.decode(chunk), visit),
    end: () => forEachCodePoint(decoder.end(), visit),
  };
}

/** Wraps a code point visitor so that `\r\n` and a lone `\r` reach it as one `\n`. */
function lineFeedsOnly(visit: (codePoint: number) => void): (codePoint: number) => void {
  let afterCarriageReturn = false;
  return (codePoint) => {
    if (codePoint === 0x0a && afterCarriageReturn) {
      afterCarriageReturn = false;
      return;
    }
    afterCarriageReturn = codePoint === 0x0d;
    visit(afterCarriageReturn ? 0x0a : codePoint);
  };
}

/** Word level: see WordSplitter for what a token is. */
export function createWordTokenizer(
  invalidUtf8: InvalidUtf8Mode,
  wordSplit: WordSplit,
  sourceName: string,
  onToken: (token: string) => void,
): ByteTokenizer {
  const decoder = new CorpusDecoder(invalidUtf8, sourceName);
  const splitter = new WordSplitter(wordSplit);
  return {
    push: (chunk) => splitter.push(decoder.decode(chunk), onToken),
    end: () => {
      splitter.push(decoder.end(), onToken);
      splitter.end(onToken);
    },
  };
}

/** Streams a corpus's tokens as strings, one array per chunk read. */
export async function* tokenize(
  source: AsyncIterable<Uint8Array>,
  config: TokenizerConfig,
): AsyncGenerator<string[]> {
  let tokens: string[] = [];
  const sourceName = describeSource(source);
  const tokenizer =
    config.level === 'char'
      ? createCharTokenizer(
          config.invalidUtf8,
          sourceName,
          (codePoint) => tokens.push(String.fromCodePoint(codePoint)),
          config.lineEndings,
        )
      : createWordTokenizer(config.invalidUtf8, config.wordSplit, sourceName, (token) =>
          tokens.push(token),
        );
  for await (const chunk of source) {
    tokenizer.push(chunk);
    if (tokens.length > 0) yield tokens;
    tokens = [];
  }
  tokenizer.end();
  if (tokens.length > 0) yield tokens;
}

/** Tokenizes a whole string that is already in memory (a prime text, a test case). */
export function tokenizeText(text: string, level: TokenLevel, wordSplit: WordSplit, lineEndings: LineEndings = 'keep'): string[] {
  if (level === 'char') return charTokens(lineEndings === 'lf' ? text.replace(/\r\n?/g, '\n') : text);
  const tokens: string[] = [];
  const splitter = new WordSplitter(wordSplit);
  splitter.push(text, (token) => tokens.push(token));
  splitter.end((token) => tokens.push(token));
  return tokens;
}
