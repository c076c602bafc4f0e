import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CharnnError } from '../errors.js';
import { type BenchConfig, type PeerKind, numpyPeerTrains } from './configs.js';

/**
 * The reference trainers of ../shared/peers, run as child processes. Each prints one JSON
 * line on stdout; charnn reads its `train_chars_per_s` (measured by the peer itself, after its
 * own start-up: PyTorch's after `--warmup` steps, numpy's over the whole loop).
 */

/** The fields of a peer's JSON line that the benchmark uses (the rest is kept as `raw`). */
export interface PeerReport {
  /** The peer's own description, e.g. "torch_charlstm.py (torch 2.13.0+cpu, 2 threads)". */
  peer: string;
  trainCharsPerSecond: number;
  steps: number;
  seconds: number;
  raw: Record<string, unknown>;
}

/** How to run a peer for one configuration. */
export interface PeerInvocation {
  kind: PeerKind;
  script: string;
  /** Arguments after the script. */
  args: string[];
  /** Extra environment variables. */
  env: Record<string, string>;
}

export interface PeerPlan {
  /** Measured iterations (by iteration count) ... */
  iters: number;
  warmup: number;
  /** ... or seconds of training (when > 0). */
  seconds: number;
  seed: number;
  corpus: string;
}

export const PEER_SCRIPTS: Record<PeerKind, string> = {
  torch: 'torch_charlstm.py',
  numpy: 'min_char_rnn.py',
};

/**
 * The peer's command line for a configuration, with the peer's own flags. Both peers hold out
 * a validation tail and score it after training (outside their timing); 1% keeps that short.
 * - torch_charlstm.py: --model --hidden --layers --batch --seq, Adam or Adagrad with its lr,
 *   norm clip; --steps warm-up + measured with --warmup (it times the steps after the
 *   warm-up) and no time budget, or --time-budget seconds (warm-up included). Its default
 *   2 threads, as charnn's pool on a 2-core machine.
 * - min_char_rnn.py: --hidden --seq --lr; --iters (warm-up + measured: it has no warm-up and
 *   times its whole loop) or --seconds. numpy single-threaded (OPENBLAS_NUM_THREADS=1 and
 *   friends), as its README suggests.
 */
export function peerInvocation(cfg: BenchConfig, plan: PeerPlan, peersDir: string): PeerInvocation {
  const script = join(peersDir, PEER_SCRIPTS[cfg.peer]);
  const byTime = plan.seconds > 0;
  if (cfg.peer === 'torch') {
    const args = [
      '--data', plan.corpus,
      '--model', cfg.cell,
      '--hidden', String(cfg.hidden),
      '--layers', String(cfg.layers),
      '--batch', String(cfg.batch),
      '--seq', String(cfg.seq),
      '--input', cfg.embed > 0 ? 'embed' : 'onehot',
      ...(cfg.embed > 0 ? ['--embed-dim', String(cfg.embed)] : []),
      '--optim', cfg.optimizer,
      '--lr', String(cfg.lr),
      '--clip', String(cfg.clipNorm > 0 ? cfg.clipNorm : cfg.clip),
      '--warmup', String(plan.warmup),
      ...(byTime ? ['--time-budget', String(plan.seconds), '--steps', '0'] : ['--steps', String(plan.warmup + plan.iters), '--time-budget', '0']),
      '--seed', String(plan.seed),
      '--val-frac', '0.01',
    ];
    return { kind: 'torch', script, args, env: {} };
  }
  if (!numpyPeerTrains(cfg)) {
    throw new Error(`min_char_rnn.py trains a 1-layer RNN with batch 1 only, not ${cfg.id}`);
  }
  const args = [
    '--data', plan.corpus,
    '--hidden', String(cfg.hidden),
    '--seq', String(cfg.seq),
    '--lr', String(cfg.lr),
    ...(byTime ? ['--seconds', String(plan.seconds), '--iters', '0'] : ['--iters', String(plan.warmup + plan.iters), '--seconds', '0']),
    '--seed', String(plan.seed),
    '--val-frac', '0.01',
  ];
  const one = { OPENBLAS_NUM_THREADS: '1', OMP_NUM_THREADS: '1', MKL_NUM_THREADS: '1' };
  return { kind: 'numpy', script, args, env: one };
}

/**
 * Read a peer's report from its stdout: the last line that is a JSON object with a numeric
 * `train_chars_per_s`. Anything else is an error quoting what the peer printed.
 */
export function parsePeerOutput(stdout: string): PeerReport {
  const lines = stdout.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  for (let i = lines.length - 1; i >= 0; i--) {
    if (!lines[i].startsWith('{')) continue;
    let obj: unknown;
    try {
      obj = JSON.parse(lines[i]);
    } catch {
      continue;
    }
    if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) continue;
    const raw = obj as Record<string, unknown>;
    const cps = raw.train_chars_per_s;
    if (typeof cps !== 'number' || !Number.isFinite(cps)) continue;
    return {
      peer: typeof raw.peer === 'string' ? raw.peer : 'peer',
      trainCharsPerSecond: cps,
      steps: typeof raw.steps === 'number' ? raw.steps : NaN,
      seconds: typeof raw.seconds === 'number' ? raw.seconds : NaN,
      raw,
    };
  }
  const shown = lines.slice(-3).join(' | ').slice(0, 300);
  throw new Error(`no JSON line with train_chars_per_s in its output${shown ? ` (it printed: ${shown})` : ' (it printed nothing)'}`);
}

/** Run a command, collecting stdout and stderr; rejects only when it cannot be started (timeoutMs 0 = none). */
export function exec(cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = timeoutMs > 0 ? setTimeout(() => child.kill('SIGTERM'), timeoutMs) : null;
    child.on('error', (err) => {
      if (timer) clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

function lastLines(text: string, n: number): string {
  return text.trim().split('\n').slice(-n).join(' | ');
}

/**
 * The Python interpreter for a peer: for PyTorch, the one `torch-env.sh` prints (it finds or
 * creates the venv with the fast local torch wheel); for numpy, `python` (default python3).
 * Resolved once per kind per benchmark run.
 */
export async function peerPython(kind: PeerKind, peersDir: string, python: string): Promise<string> {
  if (kind === 'numpy') return python;
  const script = join(peersDir, 'torch-env.sh');
  if (!existsSync(script)) throw new CharnnError(`${script} not found`, 'pass --peers-dir, the folder holding the peer scripts');
  const r = await exec('bash', [script], process.env, 15 * 60_000);
  const path = r.stdout.trim().split('\n').pop() ?? '';
  if (r.code !== 0 || path === '') {
    throw new CharnnError(`${script} found no Python with PyTorch (exit ${r.code ?? r.signal})${r.stderr.trim() ? `: ${lastLines(r.stderr, 2)}` : ''}`);
  }
  return path;
}

/** Run a peer and read its report. Failures are errors saying what the peer printed. */
export async function runPeer(python: string, inv: PeerInvocation, timeoutMs: number): Promise<PeerReport> {
  if (!existsSync(inv.script)) throw new CharnnError(`peer script ${inv.script} not found`, 'pass --peers-dir, the folder holding the peer scripts');
  let r;
  try {
    r = await exec(python, [inv.script, ...inv.args], { ...process.env, ...inv.env, PYTHONUNBUFFERED: '1' }, timeoutMs);
  } catch (err) {
    throw new CharnnError(`cannot run ${python} ${inv.script}: ${(err as Error).message}`, 'pass --python, or install python3 with numpy');
  }
  if (r.code !== 0) {
    const why = r.signal ? `killed by ${r.signal}${r.signal === 'SIGTERM' ? ' (time limit)' : ''}` : `exit ${r.code}`;
    throw new CharnnError(`${inv.script} failed (${why})${r.stderr.trim() ? `: ${lastLines(r.stderr, 2)}` : ''}`);
  }
  try {
    return parsePeerOutput(r.stdout);
  } catch (err) {
    throw new CharnnError(`${inv.script}: ${(err as Error).message}`);
  }
}
