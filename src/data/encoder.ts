import { CharnnError, UsageError } from '../errors.js';
import type { InvalidUtf8Mode } from './config.js';
import { createCharTokenizer, createWordTokenizer, tokenizeText, type ByteTokenizer } from './tokenizer.js';
import { UNK_TOKEN, type UnknownTokenPolicy, type Vocabulary } from './vocabulary.js';
import { quoteText } from '../util/visible-text.js';

/** Distinct unknown tokens remembered for the report; beyond this only the total grows. */
const MAX_DISTINCT_UNKNOWN = 1000;

/** What became of the tokens a text had outside a model's vocabulary. */
export interface UnknownTally {
  /** The rule applied. */
  rule: UnknownTokenPolicy;
  /** Occurrences of tokens outside the vocabulary. */
  count: number;
  /** Occurrences per distinct token (at most MAX_DISTINCT_UNKNOWN distinct tokens kept). */
  distinct: Map<string, number>;
}

/**
 * The default rule for tokens outside the vocabulary when reading text to measure or inspect:
 * word-level vocabularies map them to `<unk>` (as training did for rare words), character-level
 * ones, which have no `<unk>`, drop them.
 */
export function defaultUnknownPolicy(vocab: Vocabulary): UnknownTokenPolicy {
  return vocab.unkId >= 0 ? 'unk' : 'skip';
}

/** One sentence saying what a rule does, for reports. */
export function describeUnknownRule(rule: UnknownTokenPolicy, vocab: Vocabulary): string {
  const noun = vocab.level === 'char' ? 'characters' : 'tokens';
  switch (rule) {
    case 'skip':
      return `${noun} outside the vocabulary are removed from the text before scoring (neither input nor target)`;
    case 'unk':
      return `${noun} outside the vocabulary are replaced by ${UNK_TOKEN} and scored as ${UNK_TOKEN}`;
    case 'error':
      return `a token outside the vocabulary is an error`;
  }
}

function checkPolicy(vocab: Vocabulary, rule: UnknownTokenPolicy): void {
  if (rule === 'unk' && vocab.unkId < 0) {
    throw new UsageError(
      `a ${vocab.level}-level vocabulary has no ${UNK_TOKEN} token to map unknown ${vocab.level === 'char' ? 'characters' : 'tokens'} to`,
      'use --unknown skip or --unknown error',
    );
  }
}

/** Tally one unknown token; returns the id to emit (unk) or -1 (skip). Throws for 'error'. */
function unknownToken(tally: UnknownTally, vocab: Vocabulary, token: string, position: number, sourceName: string): number {
  tally.count++;
  const seen = tally.distinct.get(token);
  if (seen !== undefined) tally.distinct.set(token, seen + 1);
  else if (tally.distinct.size < MAX_DISTINCT_UNKNOWN) tally.distinct.set(token, 1);
  if (tally.rule === 'error') {
    const noun = vocab.level === 'char' ? 'character' : 'token';
    throw new CharnnError(
      `${sourceName}: ${noun} ${position + 1} is ${quoteText(token)}, which the model never saw in training`,
      vocab.unkId >= 0 ? `pass --unknown unk to read it as ${UNK_TOKEN}, or --unknown skip to drop it` : 'pass --unknown skip to drop such characters',
    );
  }
  return tally.rule === 'unk' ? vocab.unkId : -1;
}

/**
 * Turns a stream of UTF-8 byte chunks into the ids of a fixed vocabulary (a trained model's),
 * token by token in constant memory, the way the training corpus was tokenized. Tokens the
 * vocabulary lacks are handled by the rule (`skip`, `unk`, `error`) and tallied.
 *
 * `onToken` receives each emitted id with the text it stands for: the token itself, or for an
 * unknown token mapped to `<unk>`, the original token (so a dump can show the real text).
 */
export class VocabularyEncoder {
  readonly tally: UnknownTally;
  /** Tokens read from the text (known and unknown). */
  tokensRead = 0;
  /** Ids emitted. */
  idsEmitted = 0;
  private readonly tokenizer: ByteTokenizer;

  constructor(
    readonly vocab: Vocabulary,
    opts: { unknown: UnknownTokenPolicy; invalidUtf8: InvalidUtf8Mode; sourceName: string },
    private readonly onToken: (id: number, token: string) => void,
  ) {
    checkPolicy(vocab, opts.unknown);
    this.tally = { rule: opts.unknown, count: 0, distinct: new Map() };
    const { sourceName } = opts;
    if (vocab.level === 'char') {
      const byCodePoint = new Map<number, number>();
      vocab.tokens.forEach((token, id) => byCodePoint.set(token.codePointAt(0)!, id));
      this.tokenizer = createCharTokenizer(
        opts.invalidUtf8,
        sourceName,
        (codePoint) => {
          const token = String.fromCodePoint(codePoint);
          let id = byCodePoint.get(codePoint) ?? -2;
          if (id === -2) id = unknownToken(this.tally, vocab, token, this.tokensRead, sourceName);
          this.tokensRead++;
          if (id >= 0) this.emit(id, token);
        },
        vocab.lineEndings,
      );
    } else {
      this.tokenizer = createWordTokenizer(opts.invalidUtf8, vocab.wordSplit, sourceName, (token) => {
        let id = vocab.id(token);
        if (id < 0) id = unknownToken(this.tally, vocab, token, this.tokensRead, sourceName);
        this.tokensRead++;
        if (id >= 0) this.emit(id, token);
      });
    }
  }

  private emit(id: number, token: string): void {
    this.idsEmitted++;
    this.onToken(id, token);
  }

  push(chunk: Uint8Array): void {
    this.tokenizer.push(chunk);
  }

  /** Call once after the last chunk. */
  end(): void {
    this.tokenizer.end();
  }
}

/**
 * Encodes a string held in memory (a prime text). With the rule `error`, every unknown token
 * is named in one message.
 */
export function encodeText(vocab: Vocabulary, text: string, rule: UnknownTokenPolicy): { ids: Int32Array; tokens: string[]; tally: UnknownTally } {
  checkPolicy(vocab, rule);
  const tally: UnknownTally = { rule, count: 0, distinct: new Map() };
  const ids: number[] = [];
  const tokens: string[] = [];
  for (const token of tokenizeText(text, vocab.level, vocab.wordSplit, vocab.lineEndings)) {
    let id = vocab.id(token);
    if (id < 0) {
      tally.count++;
      tally.distinct.set(token, (tally.distinct.get(token) ?? 0) + 1);
      if (rule === 'skip' || rule === 'error') continue;
      id = vocab.unkId;
    }
    ids.push(id);
    tokens.push(token);
  }
  if (rule === 'error' && tally.count > 0) {
    const names = [...tally.distinct.keys()];
    const shown = names.slice(0, 8).map(quoteText).join(', ');
    const more = names.length > 8 ? ` and ${names.length - 8} more` : '';
    const noun = vocab.level === 'char' ? 'character' : 'token';
    throw new CharnnError(
      `the text has ${names.length} ${noun}${names.length === 1 ? '' : 's'} the model never saw in training: ${shown}${more}`,
      names.length === 1
        ? vocab.unkId >= 0 ? `remove it, or pass --unknown unk (read it as ${UNK_TOKEN}) or --unknown skip (drop it)` : 'remove it, or pass --unknown skip to drop it'
        : vocab.unkId >= 0 ? `remove them, or pass --unknown unk (read them as ${UNK_TOKEN}) or --unknown skip (drop them)` : 'remove them, or pass --unknown skip to drop them',
    );
  }
  return { ids: Int32Array.from(ids), tokens, tally };
}

/**
 * The `max` most frequent unknown tokens with their counts (ties: token order), and how many
 * distinct ones there were: what `eval --json` lists, so that a text with thousands of unknown
 * words (3,368 in PTB's test set) still gives a short line.
 */
export function topUnknown(tally: UnknownTally, max: number): { tokens: Record<string, number>; distinct: number; distinctExact: boolean } {
  const entries = [...tally.distinct].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  return {
    tokens: Object.fromEntries(entries.slice(0, max)),
    distinct: tally.distinct.size,
    distinctExact: tally.distinct.size < MAX_DISTINCT_UNKNOWN,
  };
}

/** `"€" ×2, "☃"`: the most frequent unknown tokens, for one line of a report. */
export function summarizeUnknown(tally: UnknownTally, max = 8): string {
  const entries = [...tally.distinct].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  const shown = entries.slice(0, max).map(([t, n]) => (n > 1 ? `${quoteText(t)} ×${n}` : quoteText(t)));
  const rest = entries.length - max;
  return shown.join(', ') + (rest > 0 ? ` and ${rest} more` : '');
}
