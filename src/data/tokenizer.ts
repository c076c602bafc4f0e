import { charTokens, forEachCodePoint } from './code-points.js';
import type { InvalidUtf8Mode, TokenizerConfig, TokenLevel, WordSplit } from './config.js';
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
 * corpora never pay for a string per character. `\r` is kept, so text round-trips exactly.
 */
export function createCharTokenizer(
  invalidUtf8: InvalidUtf8Mode,
  sourceName: string,
  onCodePoint: (codePoint: number) => void,
): ByteTokenizer {
  const decoder = new CorpusDecoder(invalidUtf8, sourceName);
  return {
    push: (chunk) => forEachCodePoint(decoder.decode(chunk), onCodePoint),
    end: () => forEachCodePoint(decoder.end(), onCodePoint),
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
      ? createCharTokenizer(config.invalidUtf8, sourceName, (codePoint) =>
          tokens.push(String.fromCodePoint(codePoint)),
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
export function tokenizeText(text: string, level: TokenLevel, wordSplit: WordSplit): string[] {
  if (level === 'char') return charTokens(text);
  const tokens: string[] = [];
  const splitter = new WordSplitter(wordSplit);
  splitter.push(text, (token) => tokens.push(token));
  splitter.end((token) => tokens.push(token));
  return tokens;
}
