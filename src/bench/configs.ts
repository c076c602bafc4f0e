import { UsageError } from '../errors.js';
import type { CellType } from '../model/config.js';
import type { OptimizerName } from '../train/optimizer.js';

/** Which reference trainer in ../shared/peers a configuration is measured against. */
export type PeerKind = 'torch' | 'numpy';

/**
 * One benchmark configuration: a model and a training setup that charnn and its peer both
 * run, for `iters` measured iterations after `warmup` unmeasured ones.
 */
export interface BenchConfig {
  /** What `--only` names. */
  id: string;
  /** One line for the table, e.g. "2x128 LSTM, B 50, T 50, one-hot". */
  title: string;
  cell: CellType;
  hidden: number;
  layers: number;
  /** 0 = one-hot input (every configuration here). */
  embed: number;
  batch: number;
  seq: number;
  /** The peer's optimizer and clipping, so both sides do the same work per step. */
  optimizer: OptimizerName;
  lr: number;
  /** Elementwise clip (min-char-rnn's) and global-norm clip (PyTorch's clip_grad_norm_). */
  clip: number;
  clipNorm: number;
  /** Measured iterations and warm-up iterations by default (the command's --iters/--warmup override). */
  iters: number;
  warmup: number;
  /**
   * Native threads for charnn (null = the addon's whole pool). The numpy peer runs on one
   * thread (OPENBLAS_NUM_THREADS=1), so charnn's min-char-rnn run uses one too.
   */
  threads: number | null;
  peer: PeerKind;
  /** The charnn/peer chars/s ratio this configuration should reach. */
  target: number;
}

/**
 * The configurations, in the order they run. The four batched ones are char-rnn's defaults
 * (batch 50, seq 50, one-hot input) with PyTorch's usual Adam 2e-3 and norm clip 5, as
 * torch_charlstm.py trains by default; min-char-rnn is Karpathy's setup exactly (RNN 1x100,
 * seq 25, batch 1, Adagrad 0.1, elementwise clip 5), as min_char_rnn.py trains it.
 * Iteration counts give each run a few seconds on an idle 2-core machine.
 */
export const BENCH_CONFIGS: readonly BenchConfig[] = [
  {
    id: 'lstm128',
    title: '2x128 LSTM, B 50, T 50, one-hot',
    cell: 'lstm', hidden: 128, layers: 2, embed: 0, batch: 50, seq: 50,
    optimizer: 'adam', lr: 2e-3, clip: 0, clipNorm: 5,
    iters: 200, warmup: 5, threads: null, peer: 'torch', target: 1.0,
  },
  {
    id: 'lstm512',
    title: '2x512 LSTM, B 50, T 50, one-hot',
    cell: 'lstm', hidden: 512, layers: 2, embed: 0, batch: 50, seq: 50,
    optimizer: 'adam', lr: 2e-3, clip: 0, clipNorm: 5,
    iters: 30, warmup: 3, threads: null, peer: 'torch', target: 0.8,
  },
  {
    // The GPU configuration of the gpu.js issue (#5): more streams per step, the same model.
    id: 'lstm512b128',
    title: '2x512 LSTM, B 128, T 50, one-hot',
    cell: 'lstm', hidden: 512, layers: 2, embed: 0, batch: 128, seq: 50,
    optimizer: 'adam', lr: 2e-3, clip: 0, clipNorm: 5,
    iters: 12, warmup: 2, threads: null, peer: 'torch', target: 0.8,
  },
  {
    id: 'gru128',
    title: '2x128 GRU, B 50, T 50, one-hot',
    cell: 'gru', hidden: 128, layers: 2, embed: 0, batch: 50, seq: 50,
    optimizer: 'adam', lr: 2e-3, clip: 0, clipNorm: 5,
    iters: 200, warmup: 5, threads: null, peer: 'torch', target: 1.0,
  },
  {
    id: 'rnn128',
    title: '2x128 RNN, B 50, T 50, one-hot',
    cell: 'rnn', hidden: 128, layers: 2, embed: 0, batch: 50, seq: 50,
    optimizer: 'adam', lr: 2e-3, clip: 0, clipNorm: 5,
    iters: 400, warmup: 5, threads: null, peer: 'torch', target: 1.0,
  },
  {
    id: 'min-char-rnn',
    title: '1x100 RNN, B 1, T 25, one-hot, Adagrad (min-char-rnn)',
    cell: 'rnn', hidden: 100, layers: 1, embed: 0, batch: 1, seq: 25,
    optimizer: 'adagrad', lr: 0.1, clip: 5, clipNorm: 0,
    iters: 8000, warmup: 100, threads: 1, peer: 'numpy', target: 10,
  },
];

export const BENCH_CONFIG_IDS: readonly string[] = BENCH_CONFIGS.map((c) => c.id);

/** Whether the numpy peer (min_char_rnn.py) can train `cfg`: a 1-layer vanilla RNN at batch 1 only. */
export function numpyPeerTrains(cfg: BenchConfig): boolean {
  return cfg.cell === 'rnn' && cfg.layers === 1 && cfg.batch === 1;
}

/**
 * The configurations `--only` names (comma-separated ids, any order; run in the table's
 * order), or all of them. An unknown id is a usage error listing the known ones.
 */
export function selectConfigs(only: string | undefined): BenchConfig[] {
  if (only === undefined || only.trim() === '') return [...BENCH_CONFIGS];
  const wanted = only
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const unknown = wanted.filter((id) => !BENCH_CONFIG_IDS.includes(id));
  if (unknown.length > 0) {
    throw new UsageError(`--only: unknown configuration${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}`, `choose from ${BENCH_CONFIG_IDS.join(', ')}`);
  }
  return BENCH_CONFIGS.filter((c) => wanted.includes(c.id));
}
