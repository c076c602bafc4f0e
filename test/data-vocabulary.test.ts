import { describe, expect, it } from 'vitest';
import { buildVocabulary, UNK_TOKEN, Vocabulary, type TokenizerConfig } from '../src/data/index.js';
import { CharnnError, UsageError } from '../src/errors.js';

const CHAR: TokenizerConfig = { level: 'char', invalidUtf8: 'error', wordSplit: 'punct' };
const WORD: TokenizerConfig = { level: 'word', invalidUtf8: 'error', wordSplit: 'punct' };

const countsOf = (tokens: string[]) => {
  const counts = new Map<string, number>();
  for (const token of tokens) counts.set(token, (counts.get(token) ?? 0) + 1);
  return counts;
};

function thrown(action: () => unknown): CharnnError {
  try {
    action();
  } catch (err) {
    expect(err).toBeInstanceOf(CharnnError);
    return err as CharnnError;
  }
  throw new Error('expected a CharnnError');
}

describe('character vocabulary', () => {
  const vocab = buildVocabulary(countsOf(Array.from('hello, 世界 😀!\n')), CHAR);

  it('holds every code point, sorted by code point, with no <unk>', () => {
    expect(vocab.tokens).toEqual(['\n', ' ', '!', ',', 'e', 'h', 'l', 'o', '世', '界', '😀']);
    expect(vocab.unkId).toBe(-1);
    expect(vocab.level).toBe('char');
    expect(vocab.size).toBe(11);
  });

  it('maps tokens to ids and back', () => {
    expect(vocab.id('😀')).toBe(10);
    expect(vocab.id('z')).toBe(-1);
    expect(vocab.token(8)).toBe('世');
    expect(() => vocab.token(11)).toThrow(RangeError);
  });

  it('encodes and decodes text', () => {
    const ids = vocab.encode('hello 😀');
    expect(Array.from(ids)).toEqual([5, 4, 6, 6, 7, 1, 10]);
    expect(vocab.decode(ids)).toBe('hello 😀');
  });

  it('names unknown characters, or skips them when asked', () => {
    const err = thrown(() => vocab.encode('hex\tz'));
    expect(err.message).toContain('"x", "\\t", "z"');
    expect(Array.from(vocab.encode('hex', { unknown: 'skip' }))).toEqual([5, 4]);
    expect(() => vocab.encode('x', { unknown: 'unk' })).toThrow(UsageError);
  });
});

describe('word vocabulary', () => {
  const corpus = 'the cat sat on the mat . the dog sat . a b'.split(' ');

  it('orders words by descending count, then token, and always holds <unk>', () => {
    const vocab = buildVocabulary(countsOf(corpus), WORD);
    expect(vocab.tokens).toEqual(['the', '.', 'sat', 'a', 'b', 'cat', 'dog', 'mat', 'on', UNK_TOKEN]);
    expect(vocab.unkId).toBe(9);
  });

  it('caps the size (counting <unk>) keeping the most frequent, ties by token, the rest counted as <unk>', () => {
    const vocab = buildVocabulary(countsOf(corpus), { ...WORD, vocabSize: 4 });
    // Kept: the(3) .(2) sat(2); dropped a b cat dog mat on (6 in all) become <unk> with count 6.
    expect(vocab.tokens).toEqual(['<unk>', 'the', '.', 'sat']);
    expect(vocab.size).toBe(4);
  });

  it('drops words seen fewer than minCount times', () => {
    const vocab = buildVocabulary(countsOf(corpus), { ...WORD, minCount: 2 });
    expect(vocab.tokens).toEqual(['<unk>', 'the', '.', 'sat']);
    const capped = buildVocabulary(countsOf(corpus), { ...WORD, minCount: 2, vocabSize: 3 });
    expect(capped.tokens).toEqual(['<unk>', 'the', '.']);
  });

  it('treats a literal <unk> in the corpus as the same token', () => {
    const vocab = buildVocabulary(countsOf(['<unk>', 'x', '<unk>', 'y', 'y', 'y']), WORD);
    expect(vocab.tokens).toEqual(['y', '<unk>', 'x']);
    expect(vocab.unkId).toBe(1);
  });

  it('encodes with the corpus tokenizer and handles unknown words as asked', () => {
    const vocab = buildVocabulary(countsOf(corpus), { ...WORD, minCount: 2 });
    expect(Array.from(vocab.encode('The sat.', { unknown: 'unk' }))).toEqual([0, 3, 2]);
    expect(Array.from(vocab.encode('The sat.', { unknown: 'skip' }))).toEqual([3, 2]);
    const err = thrown(() => vocab.encode('The sat.'));
    expect(err.message).toContain('"The"');
    expect(vocab.decode([1, 3, 2])).toBe('the sat.');
  });
});

describe('vocabulary JSON', () => {
  it('round-trips both levels, keeping ids and the word split mode', () => {
    const char = buildVocabulary(countsOf(Array.from('ab😀')), CHAR);
    const word = buildVocabulary(countsOf(['a', 'b']), { ...WORD, wordSplit: 'space' });
    for (const vocab of [char, word]) {
      const copy = Vocabulary.fromJSON(JSON.parse(JSON.stringify(vocab)));
      expect(copy.tokens).toEqual(vocab.tokens);
      expect(copy.level).toBe(vocab.level);
      expect(copy.unkId).toBe(vocab.unkId);
    }
    expect(Vocabulary.fromJSON(JSON.parse(JSON.stringify(word))).encode('a,b', { unknown: 'unk' })).toEqual(
      Int32Array.from([word.unkId]),
    );
  });

  it('rejects malformed vocabularies with a CharnnError', () => {
    for (const bad of [
      null,
      { level: 'byte', tokens: [] },
      { level: 'char', tokens: ['a', 'a'] },
      { level: 'char', tokens: ['ab'] },
      { level: 'word', wordSplit: 'punct', tokens: ['a'] },
      { level: 'word', tokens: ['<unk>'] },
      { level: 'char', tokens: [1] },
    ]) {
      expect(thrown(() => Vocabulary.fromJSON(bad)).message).toContain('malformed');
    }
  });
});
