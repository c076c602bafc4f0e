import { CharnnError, UsageError } from '../errors.js';
import type { LineEndings, TokenizerConfig, TokenLevel, WordSplit } from './config.js';
import { detokenize } from './detokenizer.js';
import { tokenizeText } from './tokenizer.js';
import { quoteText } from '../util/visible-text.js';

/** The word-level token standing for every word outside the vocabulary (WikiText's spelling). */
export const UNK_TOKEN = '<unk>';

/** How `encode` treats a token the vocabulary lacks: fail, map it to `<unk>`, or drop it. */
export type UnknownTokenPolicy = 'error' | 'unk' | 'skip';

/** A vocabulary as stored in checkpoints and token caches. */
export interface VocabularyJSON {
  level: TokenLevel;
  /** Word level only: how `encode` splits text into words. */
  wordSplit?: WordSplit;
  /** Character level only: `lf` when text is read with line endings as `\n`; absent = `keep`. */
  lineEndings?: 'lf';
  /** Token strings in id order. */
  tokens: string[];
}

/** The mapping between tokens and the integer ids a model sees. */
export class Vocabulary {
  readonly tokens: readonly string[];
  /** Id of `<unk>`, or -1 for character-level vocabularies, which have none. */
  readonly unkId: number;
  private readonly ids: Map<string, number>;

  constructor(
    readonly level: TokenLevel,
    tokens: readonly string[],
    /** Word level: how `encode` splits text; ignored at character level. */
    readonly wordSplit: WordSplit = 'punct',
    /** Character level: how text is read (see LineEndings); word level always reads line breaks as `\n`. */
    readonly lineEndings: LineEndings = 'keep',
  ) {
    this.tokens = Object.freeze([...tokens]);
    this.ids = new Map(tokens.map((token, id) => [token, id]));
    if (this.ids.size !== tokens.length) throw malformed('it lists a token twice');
    if (level === 'char' && tokens.some((token) => [...token].length !== 1)) {
      throw malformed('a character-level token is not exactly one code point');
    }
    this.unkId = level === 'word' ? (this.ids.get(UNK_TOKEN) ?? -1) : -1;
    if (level === 'word' && this.unkId < 0) throw malformed(`a word-level vocabulary lacks ${UNK_TOKEN}`);
  }

  get size(): number {
    return this.tokens.length;
  }

  /** The id of `token`, or -1 when the vocabulary does not hold it. */
  id(token: string): number {
    return this.ids.get(token) ?? -1;
  }

  token(id: number): string {
    const token = this.tokens[id];
    if (token === undefined) throw new RangeError(`token id ${id} is outside the vocabulary (size ${this.size})`);
    return token;
  }

  /** Tokenizes a string held in memory (e.g. a prime text) the way the training corpus was tokenized. */
  encode(text: string, options: { unknown?: UnknownTokenPolicy } = {}): Int32Array {
    const policy = options.unknown ?? 'error';
    if (policy === 'unk' && this.unkId < 0) {
      throw new UsageError(
        `a ${this.level}-level vocabulary has no ${UNK_TOKEN} token to map unknown tokens to`,
        'skip unknown tokens instead',
      );
    }
    const ids: number[] = [];
    const unknown = new Set<string>();
    for (const token of tokenizeText(text, this.level, this.wordSplit, this.lineEndings)) {
      const id = this.ids.get(token);
      if (id !== undefined) ids.push(id);
      else if (policy === 'unk') ids.push(this.unkId);
      else if (policy === 'error') unknown.add(token);
    }
    if (unknown.size > 0) throw unknownTokensError([...unknown], this.level);
    return Int32Array.from(ids);
  }

  /** The text for a sequence of ids: concatenated characters, or words joined by Detokenizer's spacing rules. */
  decode(ids: ArrayLike<number>): string {
    const tokens = Array.from(ids, (id) => this.token(id));
    return this.level === 'char' ? tokens.join('') : detokenize(tokens);
  }

  toJSON(): VocabularyJSON {
    const json: VocabularyJSON = { level: this.level, tokens: [...this.tokens] };
    if (this.level === 'word') json.wordSplit = this.wordSplit;
    if (this.level === 'char' && this.lineEndings === 'lf') json.lineEndings = 'lf';
    return json;
  }

  /** Rebuilds a vocabulary from a checkpoint or cache, rejecting anything malformed. */
  static fromJSON(value: unknown): Vocabulary {
    const json = value as Partial<VocabularyJSON> | null;
    if (typeof json !== 'object' || json === null) throw malformed('it is not an object');
    if (json.level !== 'char' && json.level !== 'word') throw malformed('its level is neither char nor word');
    if (!Array.isArray(json.tokens) || !json.tokens.every((token) => typeof token === 'string')) {
      throw malformed('its tokens are not a list of strings');
    }
    if (json.level === 'word' && json.wordSplit !== 'punct' && json.wordSplit !== 'space') {
      throw malformed('its word split mode is neither punct nor space');
    }
    if (json.lineEndings !== undefined && json.lineEndings !== 'lf') throw malformed('its line endings are not lf');
    return new Vocabulary(json.level, json.tokens, json.wordSplit, json.level === 'char' ? (json.lineEndings ?? 'keep') : 'keep');
  }
}

/**
 * Builds the final vocabulary from corpus token counts. Ids depend only on the counts, never on
 * the order tokens were seen, so the same corpus always gives the same ids.
 * - Character level: every code point seen, in code point order.
 * - Word level: `<unk>` plus every token seen at least `minCount` times, capped at `vocabSize`
 *   entries (`<unk>` included) keeping the most frequent (ties: smaller token string first).
 *   Everything dropped counts as `<unk>`; a literal `<unk>` in the corpus is the same token.
 *   Ids go by descending count, then token string.
 */
export function buildVocabulary(counts: ReadonlyMap<string, number>, config: TokenizerConfig): Vocabulary {
  if (config.level === 'char') {
    const tokens = [...counts.keys()].sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!);
    return new Vocabulary('char', tokens, 'punct', config.lineEndings ?? 'keep');
  }
  const minCount = config.minCount ?? 1;
  const maxWords = (config.vocabSize ?? Infinity) - 1;
  let unkCount = counts.get(UNK_TOKEN) ?? 0;
  const kept: [string, number][] = [];
  for (const entry of [...counts].sort(byCountThenToken)) {
    if (entry[0] === UNK_TOKEN) continue;
    if (entry[1] >= minCount && kept.length < maxWords) kept.push(entry);
    else unkCount += entry[1];
  }
  kept.push([UNK_TOKEN, unkCount]);
  kept.sort(byCountThenToken);
  return new Vocabulary('word', kept.map(([token]) => token), config.wordSplit);
}

function byCountThenToken([tokenA, countA]: [string, number], [tokenB, countB]: [string, number]): number {
  if (countA !== countB) return countB - countA;
  return tokenA < tokenB ? -1 : tokenA > tokenB ? 1 : 0;
}

function unknownTokensError(tokens: string[], level: TokenLevel): CharnnError {
  const shown = tokens.slice(0, 5).map(quoteText).join(', ');
  const more = tokens.length > 5 ? ` and ${tokens.length - 5} more` : '';
  const noun = level === 'char' ? 'character' : 'token';
  return new CharnnError(
    `the text has ${tokens.length} ${noun}${tokens.length === 1 ? '' : 's'} the model never saw in training: ${shown}${more}`,
    level === 'char'
      ? 'remove them, or skip unknown characters'
      : `remove them, or map unknown words to ${UNK_TOKEN} or skip them`,
  );
}

function malformed(reason: string): CharnnError {
  return new CharnnError(
    `the vocabulary is malformed: ${reason}`,
    'the checkpoint or token cache is damaged or was not written by charnn',
  );
}
