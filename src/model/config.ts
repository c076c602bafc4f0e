import { UsageError } from '../errors.js';
import { requirePositiveInteger } from '../util/checks.js';

export type CellType = 'rnn' | 'lstm' | 'gru';
export const CELL_TYPES: readonly CellType[] = ['rnn', 'lstm', 'gru'];

/** Everything that fixes a model's shape; stored in every checkpoint. */
export interface ModelConfig {
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

/** Pre-activation width per layer: the cell's gates side by side. */
export function gateWidth(cell: CellType, hidden: number): number {
  return cell === 'lstm' ? 4 * hidden : cell === 'gru' ? 3 * hidden : hidden;
}

export function validateModelConfig(c: ModelConfig): void {
  if (!CELL_TYPES.includes(c.cell)) throw new UsageError(`unknown model type '${c.cell}'`, 'use rnn, lstm or gru');
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
