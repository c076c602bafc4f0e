// Shared by the sample, eval, dump and info tests: run the built CLI, make a corpus, train a
// tiny model with the TypeScript backend.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const BIN = resolve(__dirname, '..', 'bin', 'charnn.js');

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs bin/charnn.js (over the built dist/) with the given arguments and stdin. */
export function charnn(args: string[], input?: string, opts: { cwd?: string } = {}): RunResult {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    input,
    encoding: 'utf8',
    cwd: opts.cwd,
    maxBuffer: 256 * 1024 * 1024,
    env: { ...process.env, CHARNN_DEBUG: '' },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/**
 * A small corpus with structure a tiny model learns in a few hundred steps: sums, and lines
 * with quotes and parentheses (for the HTML ranking).
 */
export function structuredCorpus(lines = 400): string {
  let seed = 12345;
  const rand = (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed >>> 8) % n;
  };
  const out: string[] = [];
  for (let i = 0; i < lines; i++) {
    const a = rand(100);
    const b = rand(100);
    out.push(i % 3 ? `${a}+${b}=${a + b}` : `"say ${a}" (or ${b})`);
  }
  return out.join('\n') + '\n';
}

/**
 * Trains a tiny model with --backend ts (1-layer LSTM of 16 units, B 4, T 16, 120 iterations
 * unless `options` says otherwise); returns the checkpoint path. Throws with stderr on failure.
 */
export function trainTiny(dir: string, name: string, corpusPath: string, options: Record<string, string> = {}): string {
  const out = join(dir, `${name}.charnn`);
  const settings: Record<string, string> = {
    hidden: '16', layers: '1', batch: '4', seq: '16', iters: '120', 'eval-every': '60', 'sample-length': '0', seed: '1', 'val-frac': '0.1', dropout: '0',
    ...options,
  };
  const args = ['train', corpusPath, '--out', out, '--cache-dir', join(dir, 'cache'), '--backend', 'ts', '--quiet'];
  for (const [k, v] of Object.entries(settings)) args.push(`--${k}`, v);
  const r = charnn(args);
  if (r.code !== 0) throw new Error(`training ${name} failed (${r.code}): ${r.stderr}`);
  return out;
}

export function writeCorpus(dir: string, name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}
