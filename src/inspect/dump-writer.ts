import type { ModelFileMeta } from '../modelfile/contents.js';
import type { Vocabulary } from '../data/vocabulary.js';
import type { Model } from '../model/model.js';
import type { Quantity, StateBlock } from './states.js';

/** What every dump writer knows about the run. */
export interface DumpContext {
  model: Model;
  vocab: Vocabulary;
  meta: ModelFileMeta;
  /** The recorded quantities, in the order of StateBlock.values. */
  quantities: readonly Quantity[];
  /** The layers recorded (0-based). */
  layers: readonly number[];
  modelPath: string;
  /** The text's name: its path, or `stdin`. */
  sourceName: string;
}

/** Receives the states a window at a time; `finish` completes the files and names them. */
export interface DumpWriter {
  block(b: StateBlock): Promise<void>;
  finish(tokens: number): Promise<string[]>;
}

/** Where a writer writes: a file or stdout (undefined / '-'), or for a directory format, the directory. */
export interface DumpWriterOptions {
  out: string | undefined;
  /** html: the regex (or @column) whose correlation ranks the cells when the page opens. */
  pattern?: string;
}
