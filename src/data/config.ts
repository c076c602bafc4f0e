import { UsageError } from '../errors.js';

export type TokenLevel = 'char' | 'word';
/** What to do with bytes that are not valid UTF-8: stop with an error, or decode them as U+FFFD. */
export type InvalidUtf8Mode = 'error' | 'replace';
/** `punct` splits punctuation off word edges; `space` trusts whitespace alone (pre-tokenized corpora). */
export type WordSplit = 'punct' | 'space';
/**
 * Character level: `lf` reads every line ending (`\r\n`, a lone `\r`, `\n`) as `\n`, so a
 * model never learns or emits `\r` (a lone `\r` overwrites the line on a terminal); `keep`
 * reads text as it is. Word level always treats any line break as the token `\n`.
 */
export type LineEndings = 'lf' | 'keep';
export const LINE_ENDINGS: readonly LineEndings[] = ['lf', 'keep'];

export interface TokenizerConfig {
  level: TokenLevel;
  invalidUtf8: InvalidUtf8Mode;
  /** Word level only. */
  wordSplit: WordSplit;
  /** Word level only: the most tokens the vocabulary keeps, `<unk>` included. */
  vocabSize?: number;
  /** Word level only: tokens seen fewer times than this become `<unk>`. */
  minCount?: number;
  /**
   * Character level only. Absent means `keep`: checkpoints written before the setting existed
   * kept `\r`, and go on doing so.
   */
  lineEndings?: LineEndings;
}

/**
 * Rejects settings that cannot work and returns the config with the fields that cannot affect
 * the result left out, so that two configs producing the same tokens compare (and hash) equal.
 */
export function canonicalTokenizerConfig(config: TokenizerConfig): TokenizerConfig {
  if (config.level === 'char') {
    if (config.vocabSize !== undefined || (config.minCount ?? 1) !== 1) {
      throw new UsageError(
        '--vocab-size and --min-count only apply to --level word',
        'character-level models keep every character of the corpus',
      );
    }
    if (config.lineEndings !== undefined && !LINE_ENDINGS.includes(config.lineEndings)) {
      throw new UsageError(`--line-endings must be lf or keep, got ${String(config.lineEndings)}`);
    }
    // `keep` is written as absence, so configs (and cache keys) from before the setting stay equal.
    return { level: 'char', invalidUtf8: config.invalidUtf8, wordSplit: 'punct', ...(config.lineEndings === 'lf' ? { lineEndings: 'lf' as const } : {}) };
  }
  const canonical: TokenizerConfig = {
    level: 'word',
    invalidUtf8: config.invalidUtf8,
    wordSplit: config.wordSplit,
  };
  if (config.vocabSize !== undefined) {
    if (!Number.isInteger(config.vocabSize) || config.vocabSize < 2) {
      throw new UsageError(
        `--vocab-size must be an integer of at least 2, got ${config.vocabSize}`,
        'the vocabulary always holds <unk> plus at least one word',
      );
    }
    canonical.vocabSize = config.vocabSize;
  }
  if (config.minCount !== undefined && config.minCount !== 1) {
    if (!Number.isInteger(config.minCount) || config.minCount < 1) {
      throw new UsageError(`--min-count must be a positive integer, got ${config.minCount}`);
    }
    canonical.minCount = config.minCount;
  }
  return canonical;
}
