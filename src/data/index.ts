export { StreamBatcher, splitTrainVal, type BatcherState, type StreamBatcherOptions, type TokenRange } from './batcher.js';
export {
  canonicalTokenizerConfig,
  type InvalidUtf8Mode,
  type TokenizerConfig,
  type TokenLevel,
  type WordSplit,
} from './config.js';
export { Detokenizer, detokenize } from './detokenizer.js';
export { CORPUS_CHUNK_BYTES, openCorpus, type Corpus } from './source.js';
export {
  buildTokenCache,
  cacheKeyFor,
  defaultCacheDir,
  openTokenCache,
  TokenCache,
  type TokenReader,
} from './token-cache.js';
export {
  createCharTokenizer,
  createWordTokenizer,
  tokenize,
  tokenizeText,
  type ByteTokenizer,
} from './tokenizer.js';
export {
  buildVocabulary,
  UNK_TOKEN,
  Vocabulary,
  type UnknownTokenPolicy,
  type VocabularyJSON,
} from './vocabulary.js';
