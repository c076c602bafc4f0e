import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { CharnnError } from '../errors.js';
import { type PeerInvocation, exec, peerPython, runPeer } from './peers.js';
import { makeTempDir, removeTempDir } from '../util/temp-file.js';

/**
 * `charnn bench --quality`: the model each trainer gives for the same wall time. Three runs per
 * seed, one after the other on the same corpus and held-out tail (the last 10%):
 *   - charnn with its defaults (`charnn train CORPUS --time S`),
 *   - charnn with the PyTorch peer's optimizer recipe (Adam 2e-3, global-norm clip 5 on the
 *     per-token mean loss = 5·T on charnn's window-summed objective, constant rate; the rest,
 *     dropout included, charnn's defaults),
 *   - the PyTorch peer, torch_charlstm.py --time-budget S (2x128 LSTM, B 50, T 50).
 * Each validates only at the end (as the peer does), so the whole budget goes to training.
 * charnn runs as a child process, exactly as a user would run it.
 */
export interface QualityOptions {
  corpus: string;
  /** Training seconds per run. */
  seconds: number;
  seeds: number[];
  /** The charnn entry point (bin/charnn.js) and the peers' folder. */
  charnnBin: string;
  peersDir: string;
  cacheDir: string;
  json: boolean;
}

/** One run's outcome: validation cross-entropy on the held-out tail, in nats per character. */
export interface QualityRun {
  trainer: 'charnn-default' | 'charnn-peer-recipe' | 'torch-peer';
  seed: number;
  valLoss: number;
  steps: number;
  seconds: number;
  command: string;
}

export interface QualityIO {
  out(text: string): void;
  progress(line: string): void;
}

const VAL_FRAC = 0.1;

/** charnn's options for the PyTorch peer's recipe (its T is charnn's default 50). */
const PEER_RECIPE = ['--optim', 'adam', '--lr', '0.002', '--clip', '0', '--clip-norm', '250', '--lr-schedule', 'constant', '--warmup', '0'];

/** Run `charnn train` and read its last step and final validation from the --log-json lines. */
async function runCharnnTrain(o: QualityOptions, trainer: QualityRun['trainer'], seed: number, extra: string[], dir: string): Promise<QualityRun> {
  const out = join(dir, `${trainer}-${seed}.charnn`);
  const args = [
    o.charnnBin, 'train', o.corpus, '--time', `${o.seconds}s`, '--val-frac', String(VAL_FRAC), '--seed', String(seed),
    '--eval-every', '0', '--sample-length', '0', '--save-every', '0', '--cache-dir', o.cacheDir, '-o', out, '--log-json', '--print-every', '1',
    ...extra,
  ];
  const command = `charnn ${args.slice(1).join(' ')}`;
  const { code, stderr } = await exec(process.execPath, args, process.env, 0);
  let steps = 0;
  let seconds = NaN;
  let valLoss = NaN;
  for (const line of stderr.split('\n')) {
    if (!line.startsWith('{')) continue;
    const e = JSON.parse(line) as { event: string; iteration?: number; runSeconds?: number; valLoss?: number };
    if (e.event === 'step') {
      steps = e.iteration ?? steps;
      seconds = e.runSeconds ?? seconds;
    } else if (e.event === 'eval') valLoss = e.valLoss ?? NaN;
  }
  if (code !== 0 || !Number.isFinite(valLoss)) {
    const last = stderr.trim().split('\n').slice(-2).join(' | ');
    throw new CharnnError(`${command} failed (exit ${code})${last ? `: ${last}` : ''}`);
  }
  return { trainer, seed, valLoss, steps, seconds, command };
}

async function runTorchPeer(o: QualityOptions, python: string, seed: number): Promise<QualityRun> {
  const inv: PeerInvocation = {
    kind: 'torch',
    script: join(o.peersDir, 'torch_charlstm.py'),
    args: ['--data', o.corpus, '--time-budget', String(o.seconds), '--seed', String(seed), '--val-frac', String(VAL_FRAC)],
    env: {},
  };
  const r = await runPeer(python, inv, (o.seconds * 3 + 600) * 1000);
  const valLoss = Number(r.raw.val_loss_nats_per_char);
  return { trainer: 'torch-peer', seed, valLoss, steps: r.steps, seconds: r.seconds, command: `${python} ${inv.script} ${inv.args.join(' ')}` };
}

const TITLES: Record<QualityRun['trainer'], string> = {
  'charnn-default': 'charnn, defaults',
  'charnn-peer-recipe': "charnn, the peer's recipe",
  'torch-peer': 'PyTorch peer (Adam)',
};

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** The table: per trainer, each seed's validation loss, the mean, the spread and the difference from the peer. */
export function formatQualityTable(runs: QualityRun[], seconds: number, load: string): string {
  const byTrainer = (t: QualityRun['trainer']) => runs.filter((r) => r.trainer === t);
  const peerMean = mean(byTrainer('torch-peer').map((r) => r.valLoss));
  const lines = [
    `validation loss (nats/char, last ${VAL_FRAC * 100}% held out) after ${seconds} s of training each; ${load}`,
    `${'run'.padEnd(28)}${'steps'.padStart(8)}${'val loss per seed'.padStart(28)}${'mean'.padStart(9)}${'spread'.padStart(8)}${'- peer'.padStart(9)}`,
  ];
  for (const t of Object.keys(TITLES) as QualityRun['trainer'][]) {
    const rs = byTrainer(t);
    if (rs.length === 0) continue;
    const vals = rs.map((r) => r.valLoss);
    const m = mean(vals);
    const diff = Number.isFinite(peerMean) ? `${m - peerMean >= 0 ? '+' : ''}${(m - peerMean).toFixed(3)}` : '';
    lines.push(
      `${TITLES[t].padEnd(28)}${String(Math.round(mean(rs.map((r) => r.steps)))).padStart(8)}${vals.map((v) => v.toFixed(3)).join(' ').padStart(28)}` +
        `${m.toFixed(3).padStart(9)}${(Math.max(...vals) - Math.min(...vals)).toFixed(3).padStart(8)}${diff.padStart(9)}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

/** Run every trainer for every seed, one after the other, and report (JSON lines as runs finish, or the table). */
export async function runQualityBench(o: QualityOptions, io: QualityIO): Promise<QualityRun[]> {
  const loadStart = loadavg()[0];
  if (loadStart > Math.max(1, cpus().length * 0.75)) {
    io.progress(`note: load average ${loadStart.toFixed(2)} on ${cpus().length} cores: other processes are running, and a loaded machine shortens every run's steps`);
  }
  const python = await peerPython('torch', o.peersDir, 'python3');
  const dir = makeTempDir('charnn-quality-');
  const runs: QualityRun[] = [];
  try {
    for (const seed of o.seeds) {
      const jobs: Array<[QualityRun['trainer'], () => Promise<QualityRun>]> = [
        ['charnn-default', () => runCharnnTrain(o, 'charnn-default', seed, [], dir)],
        ['charnn-peer-recipe', () => runCharnnTrain(o, 'charnn-peer-recipe', seed, PEER_RECIPE, dir)],
        ['torch-peer', () => runTorchPeer(o, python, seed)],
      ];
      for (const [trainer, job] of jobs) {
        io.progress(`seed ${seed}: ${TITLES[trainer]}, ${o.seconds} s ...`);
        const r = await job();
        io.progress(`seed ${seed}: ${TITLES[trainer]}: validation ${r.valLoss.toFixed(4)} nats/char after ${r.steps} steps`);
        runs.push(r);
        if (o.json) io.out(`${JSON.stringify({ ...r, corpus: o.corpus, valFrac: VAL_FRAC, budgetSeconds: o.seconds, loadAfter: Math.round(loadavg()[0] * 100) / 100 })}\n`);
      }
    }
  } finally {
    removeTempDir(dir);
  }
  const load = `load average ${loadStart.toFixed(2)} at the start, ${loadavg()[0].toFixed(2)} at the end, ${cpus().length} cores`;
  if (!o.json) io.out(formatQualityTable(runs, o.seconds, load));
  return runs;
}
