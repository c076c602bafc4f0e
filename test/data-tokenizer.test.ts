import { describe, expect, it } from 'vitest';
import { Detokenizer, detokenize, tokenize, tokenizeText, type TokenizerConfig } from '../src/data/index.js';
import { CharnnError } from '../src/errors.js';

const CHAR: TokenizerConfig = { level: 'char', invalidUtf8: 'error', wordSplit: 'punct' };
const WORD: TokenizerConfig = { level: 'word', invalidUtf8: 'error', wordSplit: 'punct' };

/** A one-shot byte stream cutting `bytes` into pieces of `size` bytes. */
async function* inChunks(bytes: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.slice(i, i + size);
}

async function allTokens(bytes: Uint8Array, config: TokenizerConfig, chunkSize = bytes.length || 1): Promise<string[]> {
  const tokens: string[] = [];
  for await (const chunk of tokenize(inChunks(bytes, chunkSize), config)) tokens.push(...chunk);
  return tokens;
}

async function errorOf(promise: Promise<unknown>): Promise<CharnnError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CharnnError);
  return err as CharnnError;
}

const utf8 = (text: string) => new TextEncoder().encode(text);

// Family (ZWJ sequence), flags, skin tone, CJK, combining marks (decomposed é, Devanagari),
// a musical symbol outside the BMP, CRLF line ends.
const MIXED =
  'Family: 👨‍👩‍👧‍👦 flags 🇯🇵🇫🇷 wave 👋🏽\r\n' +
  '漢字とかな、한국어. Cafe\u0301 नमस्ते 𝄞 done\r\n' +
  'last line without newline';

describe('character-level tokenization', () => {
  it('yields one token per code point and round-trips exactly for every chunk size from 1 to 7 bytes', async () => {
    const bytes = utf8(MIXED);
    const expected = Array.from(MIXED); // Array.from splits a string by code point
    for (let size = 1; size <= 7; size++) {
      const tokens = await allTokens(bytes, CHAR, size);
      expect(tokens, `chunk size ${size}`).toEqual(expected);
      expect(tokens.join('')).toBe(MIXED);
    }
  });

  it('keeps astral code points as single tokens and combining marks as their own code points', async () => {
    const tokens = await allTokens(utf8('a𝄞e\u0301😀'), CHAR, 1);
    expect(tokens).toEqual(['a', '𝄞', 'e', '\u0301', '😀']);
    expect(tokens[1]!.length).toBe(2); // a surrogate pair, kept together
  });

  it('keeps \\r so that CRLF text round-trips', async () => {
    expect(await allTokens(utf8('a\r\nb'), CHAR)).toEqual(['a', '\r', '\n', 'b']);
  });

  it('drops a leading UTF-8 byte order mark', async () => {
    expect(await allTokens(utf8('\uFEFFab'), CHAR)).toEqual(['a', 'b']);
  });
});

describe('invalid input', () => {
  it('rejects invalid UTF-8 with the byte offset and a hint to use --invalid-utf8 replace', async () => {
    const bytes = new Uint8Array([...utf8('héllo'), 0xff, ...utf8('rest')]);
    for (const size of [1, 2, 3, 1 << 20]) {
      const err = await errorOf(allTokens(bytes, CHAR, size));
      expect(err.message).toContain('not valid UTF-8');
      expect(err.message).toContain('offset 6');
      expect(err.hint).toContain('--invalid-utf8 replace');
    }
  });

  it('locates a sequence broken across chunks at its first byte', async () => {
    // "ab" then the first two bytes of "€" (E2 82 AC) followed by "x" instead of AC.
    const bytes = new Uint8Array([0x61, 0x62, 0xe2, 0x82, 0x78]);
    for (let size = 1; size <= 5; size++) {
      const err = await errorOf(allTokens(bytes, CHAR, size));
      expect(err.message, `chunk size ${size}`).toContain('offset 2');
    }
  });

  it('rejects a sequence cut off by the end of input', async () => {
    const bytes = new Uint8Array([...utf8('abc'), 0xf0, 0x9f, 0x98]);
    const err = await errorOf(allTokens(bytes, WORD, 2));
    expect(err.message).toContain('offset 3');
  });

  it('replaces invalid bytes with U+FFFD in replace mode', async () => {
    const bytes = new Uint8Array([0x61, 0xff, 0x62, 0xc3]);
    for (let size = 1; size <= 4; size++) {
      const tokens = await allTokens(bytes, { ...CHAR, invalidUtf8: 'replace' }, size);
      expect(tokens).toEqual(['a', '\uFFFD', 'b', '\uFFFD']);
    }
  });

  it('rejects input with a NUL byte as binary', async () => {
    const bytes = new Uint8Array([...utf8('PK'), 0x03, 0x04, 0x00, 0x00, ...utf8('data')]);
    const err = await errorOf(allTokens(bytes, CHAR, 3));
    expect(err.message).toContain('looks like a binary file');
    expect(err.message).toContain('offset 4');
  });

  it('rejects UTF-16 text as binary, pointing at a conversion', async () => {
    const utf16 = new Uint8Array(Buffer.from('\uFEFFhello', 'utf16le'));
    const err = await errorOf(allTokens(utf16, WORD));
    expect(err.message).toContain('binary');
    expect(err.hint).toContain('iconv');
  });
});

describe('word-level tokenization', () => {
  const TEXT = 'Hello, world!\n(This) is "quoted" -- ok... @-@ don\'t\r\nend.';

  it('splits leading and trailing punctuation off words, one token per character', () => {
    expect(tokenizeText(TEXT, 'word', 'punct')).toEqual([
      'Hello', ',', 'world', '!', '\n',
      '(', 'This', ')', 'is', '"', 'quoted', '"', '--', 'ok', '.', '.', '.', '@-@', "don't", '\n',
      'end', '.',
    ]);
  });

  it('splits on whitespace only in space mode', () => {
    expect(tokenizeText(TEXT, 'word', 'space')).toEqual([
      'Hello,', 'world!', '\n', '(This)', 'is', '"quoted"', '--', 'ok...', '@-@', "don't", '\n', 'end.',
    ]);
  });

  it('makes every line break a token, whatever the line ending, and treats other whitespace as a separator', () => {
    expect(tokenizeText('a\n\nb\r\n\r\nc\rd \t\u00a0e\u3000f\n', 'word', 'punct')).toEqual([
      'a', '\n', '\n', 'b', '\n', '\n', 'c', '\n', 'd', 'e', 'f', '\n',
    ]);
  });

  it('keeps emoji sequences and flags whole when splitting them off words', () => {
    expect(tokenizeText('wow🇯🇵! «Bonjour» 👨‍👩‍👧 hi👋🏽 ❤️x', 'word', 'punct')).toEqual([
      'wow', '🇯🇵', '!', '«', 'Bonjour', '»', '👨‍👩‍👧', 'hi', '👋🏽', '❤️', 'x',
    ]);
  });

  it('keeps words ending in combining marks whole', () => {
    expect(tokenizeText('नमस्ते, cafe\u0301.', 'word', 'punct')).toEqual(['नमस्ते', ',', 'cafe\u0301', '.']);
  });

  it('gives the same tokens however the bytes are chunked, including words and CRLF split across chunks', async () => {
    const text = `${TEXT} internationalization 漢字かな "😀" ${MIXED}\r\n`;
    const expected = tokenizeText(text, 'word', 'punct');
    expect(expected).toContain('internationalization');
    for (let size = 1; size <= 7; size++) {
      expect(await allTokens(utf8(text), WORD, size), `chunk size ${size}`).toEqual(expected);
    }
  });

  it('emits the last word even without a final newline', async () => {
    expect(await allTokens(utf8('one two'), WORD, 3)).toEqual(['one', 'two']);
  });
});

describe('detokenization', () => {
  it('puts spaces between words but not around line breaks, before closing or after opening punctuation', () => {
    const tokens = ['Hello', ',', 'world', '!', '\n', '(', 'This', ')', 'is', '[', 'it', ']', ';', 'right', '?', '\n', 'Yes', '.'];
    expect(detokenize(tokens)).toBe('Hello, world!\n(This) is [it]; right?\nYes.');
  });

  it('pairs straight quotes: space before an opening one, none inside', () => {
    expect(detokenize(['He', 'said', '"', 'no', '"', 'and', "'", 'left', "'", '.'])).toBe(
      'He said "no" and \'left\'.',
    );
  });

  it('forgets an unbalanced quote at the end of a line', () => {
    expect(detokenize(['"', 'Open', '\n', 'next', '"', 'quote', '"'])).toBe('"Open\nnext "quote"');
  });

  it('handles typographic quotes and joins WikiText infix markers', () => {
    expect(detokenize(['“', 'Hi', '”', ',', 'she', 'said', '’'])).toBe('“Hi”, she said’');
    expect(detokenize(['state', '@-@', 'of', '@-@', 'the', '@-@', 'art', ',', '1', '@,@', '000'])).toBe(
      'state-of-the-art, 1,000',
    );
  });

  it('reads a punctuation run kept as one token by its first character before it and its last after it', () => {
    expect(detokenize(['«', 'crème', '»,', 's’il', 'vous', 'plaît', '?!', '(', 'oui', ').', '—', 'non', '!?'])).toBe('«crème», s’il vous plaît?! (oui). — non!?');
  });

  it('puts no space on either side of CJK full-width punctuation', () => {
    expect(detokenize(['東京', '、', '大阪', '。', '「', 'こんにちは', '」', 'と', '言った'])).toBe('東京、大阪。「こんにちは」と 言った');
  });

  it('reassembles ordinarily spaced text that went through the punct tokenizer', () => {
    const text = 'Well, "this" (I think) works: yes!\nA new line... and the end.';
    expect(detokenize(tokenizeText(text, 'word', 'punct'))).toBe(text);
  });

  it('streams: Detokenizer.push returns exactly the text to emit for each token', () => {
    const tokens = tokenizeText('Once, (upon) a "time".\nThe end!', 'word', 'punct');
    const detokenizer = new Detokenizer();
    const pieces = tokens.map((token) => detokenizer.push(token));
    expect(pieces.join('')).toBe(detokenize(tokens));
    expect(pieces.slice(0, 4)).toEqual(['Once', ',', ' (', 'upon']);
  });
});
