import { UsageError } from '../errors.js';
import { requirePositiveInteger } from '../util/checks.js';
import { cellNameList, findCell } from './cells/index.js';

/** A cell's name, one of `CELL_NAMES` (model/cells/index.ts). */
export type CellType = string;

/** Everything that fixes a model's shape; stored in every checkpoint. */
export interface ModelConfig {
  /** The recurrent cell's name (model/cells/). */
  cell: CellType;
  /** Number of tokens in the vocabulary (input and output size). */
  vocabSize: number;
  /** Hidden units per layer. */
  hidden: number;
  /** Stacked recurrent layers. */
  layers: number;
  /** Learned embedding width; 0 = one-hot input (the embedding is then folded into Wx). */
  embed: number;
  /** Dropout probability on every layer's input except raw one-hot, and on the top output. */
  dropout: number;
  /**
   * Tied input and output weights (Press & Wolf 2017): the output layer is the embedding table
   * transposed, logits = h @ embed^T, so there is no `out.W`. Needs embed = hidden. Absent in
   * files written before it existed, which means untied.
   */
  tie?: boolean;
}

export function validateModelConfig(c: ModelConfig): void {
  if (!findCell(c.cell)) throw new UsageError(`unknown model type '${c.cell}'`, `use ${cellNameList()}`);
  requirePositiveInteger('--hidden', c.hidden);
  requirePositiveInteger('--layers', c.layers);
  requirePositiveInteger('vocabulary size', c.vocabSize);
  if (!Number.isInteger(c.embed) || c.embed < 0) throw new UsageError(`--embed must be 0 (one-hot) or a positive integer, got ${c.embed}`);
  if (!(c.dropout >= 0 && c.dropout < 1)) throw new UsageError(`--dropout must be in [0, 1), got ${c.dropout}`);
  if (c.tie && (c.embed === 0 || c.embed !== c.hidden)) {
    throw new UsageError(
      `--tie needs an embedding as wide as the hidden layer, got --embed ${c.embed} and --hidden ${c.hidden}`,
      `add --embed ${c.hidden}`,
    );
  }
}
