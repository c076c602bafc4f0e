import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { readCheckpoint } from '../src/checkpoint/read.js';
import type { Checkpoint } from '../src/checkpoint/types.js';

/**
 * Resume, signals, divergence and concurrent writers through the real command
 * (bin/charnn.js over the built dist/), on tiny models and the TypeScript backend.
 */
const BIN = resolve(__dirname, '..', 'bin', 'charnn.js');
const dir = mkdtempSync(join(tmpdir(), 'charnn-resume-cli-'));
const cache = join(dir, 'cache');
const corpus = join(dir, 'corpus.txt');
const text = 'the quick brown fox jumps over the lazy dog.\n'.repeat(30);
const common = ['--backend', 'ts', '--cache-dir', cache, '--print-every', '1'];

interface Result {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Start the CLI; `onStderr` sees stderr as it grows (to send signals at the right moment).
 * Resolves when the process ends.
 */
function charnn(
  args: string[],
  opts: { node?: string[]; env?: Record<string, string>; input?: string; onStderr?: (all: string, child: ChildProcessWithoutNullStreams) => void } = {},
): Promise<Result> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [...(opts.node ?? []), BIN, ...args], { cwd: dir, env: { ...process.env, CHARNN_DEBUG: '', ...opts.env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      opts.onStderr?.(stderr, child);
    });
    if (opts.input !== undefined) child.stdin.end(opts.input);
    else child.stdin.end();
    // Never leave a runaway trainer behind a failed test.
    const guard = setTimeout(() => child.kill('SIGKILL'), 80_000);
    child.on('close', (code, signal) => {
      clearTimeout(guard);
      done({ code, signal, stdout, stderr });
    });
  });
}

const bytes = (d: Float32Array) => Buffer.from(d.buffer, d.byteOffset, d.byteLength);

/** Same tensors bit for bit, and the same training state apart from wall-clock seconds. */
function expectSameCheckpoint(a: Checkpoint, b: Checkpoint): void {
  expect(b.tensors.map((t) => t.name)).toEqual(a.tensors.map((t) => t.name));
  a.tensors.forEach((t, i) => expect(bytes(b.tensors[i].data).equals(bytes(t.data)), `${t.name} differs`).toBe(true));
  const ta = (a.meta as any).training;
  const tb = (b.meta as any).training;
  expect(tb.batcher).toEqual(ta.batcher);
  expect(tb.optimizerStep).toBe(ta.optimizerStep);
  expect({ ...tb.state, elapsedSeconds: 0 }).toEqual({ ...ta.state, elapsedSeconds: 0 });
}

const iterationOf = async (path: string) => ((await readCheckpoint(path)).meta as any).training.state.iteration as number;

beforeAll(() => {
  mkdirSync(cache);
  writeFileSync(corpus, text);
});

describe.concurrent('interrupt by signal at k, resume to n: bit-identical to an uninterrupted run to n', { timeout: 90_000 }, () => {
  for (const cell of ['rnn', 'lstm', 'gru']) {
    for (const batch of [1, 3]) {
      // B = 1 is stopped with SIGINT (Ctrl-C), B = 3 with SIGTERM; B = 3 also uses dropout and
      // another optimizer, so the RNG and every kind of optimizer slot must continue exactly.
      const signal: NodeJS.Signals = batch === 1 ? 'SIGINT' : 'SIGTERM';
      const run = ['--model', cell, '--hidden', '12', '--layers', '2', '--batch', String(batch), '--seq', '8', '--eval-every', '10', '--sample-length', '5', '--seed', '3'];
      if (batch > 1) run.push('--dropout', '0.1', '--optim', cell === 'lstm' ? 'adam' : 'rmsprop');
      it(`${cell}, B=${batch}, ${signal}`, async () => {
        const name = `${cell}-${batch}`;
        const stopped = join(dir, `${name}-stopped.charnn`);
        let sent = false;
        const first = await charnn(['train', corpus, '--iters', '100000', '--out', stopped, ...run, ...common], {
          onStderr: (all, child) => {
            if (!sent && /iter 5 /.test(all)) {
              sent = true;
              child.kill(signal);
            }
          },
        });
        expect(first.code, first.stderr).toBe(signal === 'SIGINT' ? 130 : 143);
        expect(first.stderr).toMatch(signal === 'SIGINT' ? /interrupted: saving a checkpoint/ : /terminated: saving a checkpoint/);
        expect(first.stderr).toMatch(/stopped at iteration \d+/);
        const k = await iterationOf(stopped);
        expect(k).toBeGreaterThanOrEqual(5);
        const n = k + 25;

        const straight = join(dir, `${name}-straight.charnn`);
        // The corpus argument is left out on resume: the checkpoint names it.
        const [resumed, whole] = await Promise.all([
          charnn(['train', '--resume', stopped, '--iters', String(n), ...common]),
          charnn(['train', corpus, '--iters', String(n), '--out', straight, ...run, ...common]),
        ]);
        expect(resumed.code, resumed.stderr).toBe(0);
        expect(resumed.stderr).toMatch(new RegExp(`resuming .*${name}-stopped\\.charnn at iteration ${k} `));
        expect(whole.code, whole.stderr).toBe(0);
        expect(await iterationOf(stopped)).toBe(n);
        expectSameCheckpoint(await readCheckpoint(straight), await readCheckpoint(stopped));
      });
    }
  }
});

describe.concurrent('resume options', { timeout: 60_000 }, () => {
  const tiny = ['--hidden', '8', '--layers', '1', '--batch', '2', '--seq', '8', '--eval-every', '0', '--sample-length', '0', '--seed', '4', '--quiet', ...common];

  it('options that would change the run are an error naming them; others may change', async () => {
    const path = join(dir, 'opts.charnn');
    expect((await charnn(['train', corpus, '--iters', '10', '--out', path, ...tiny])).code).toBe(0);
    const before = readFileSync(path);
    const bad = await charnn(['train', '--resume', path, '--iters', '20', '--hidden', '16', '--batch', '2', '--seq', '4', '--model', 'gru', '--quiet']);
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    // --batch 2 is what the run has, so it is not named.
    expect(bad.stderr).toMatch(/^charnn: --model gru \(the run has lstm\), --hidden 16 \(the run has 8\), --seq 4 \(the run has 8\): --resume continues .*opts\.charnn with the settings it was started with \(leave these options out/);
    expect(readFileSync(path).equals(before)).toBe(true);

    // The run is at its --iters: nothing to do, and the file is left alone.
    const done = await charnn(['train', '--resume', path, ...common]);
    expect(done.code).toBe(0);
    expect(done.stderr).toMatch(/already reached --iters 10; nothing to do/);
    expect(readFileSync(path).equals(before)).toBe(true);

    // Learning rate, clipping, frequencies and stop conditions may change; --out leaves the original alone.
    const out = join(dir, 'opts-more.charnn');
    const more = await charnn(['train', '--resume', path, '--iters', '15', '--lr', '0.05', '--clip', '1', '--save-every', '2', '--out', out, '--quiet', ...common]);
    expect(more.code, more.stderr).toBe(0);
    const meta = (await readCheckpoint(out)).meta as any;
    expect(meta.training.state.iteration).toBe(15);
    expect(meta.training.state.lr).toBe(0.05);
    expect(meta.training.config).toMatchObject({ clip: 1, saveEvery: 2, iters: 15, batch: 2, seq: 8 });
    expect(readFileSync(path).equals(before)).toBe(true);
  });

  it('a run trained on stdin resumes from stdin, and says so when the corpus is missing', async () => {
    const path = join(dir, 'stdin.charnn');
    expect((await charnn(['train', '-', '--iters', '6', '--out', path, ...tiny], { input: text })).code).toBe(0);
    const missing = await charnn(['train', '--resume', path, '--iters', '9', '--quiet']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^charnn: .*stdin\.charnn was trained on stdin, .*\(pipe the same text in and pass -/);
    const again = await charnn(['train', '-', '--resume', path, '--iters', '9', ...common], { input: text });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/resuming .* at iteration 6 /);
    expect(again.stderr).not.toMatch(/corpus is not the run's/);
    expect(await iterationOf(path)).toBe(9);
  });

  it('another corpus: unseen tokens are named; --new-tokens grow adds them', async () => {
    const path = join(dir, 'vocab.charnn');
    expect((await charnn(['train', corpus, '--iters', '6', '--out', path, ...tiny])).code).toBe(0);
    const other = join(dir, 'other.txt');
    writeFileSync(other, 'THE QUICK BROWN FOX? the lazy dog!\n'.repeat(30));
    const r = await charnn(['train', other, '--resume', path, '--iters', '12', '--quiet', ...common]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^charnn: .*other\.txt has 17 characters the model's vocabulary lacks: "!", "\?", "B", "C", "E", "F", "H", "I" and 9 more \(pass --new-tokens grow/);
    const grown = await charnn(['train', other, '--resume', path, '--iters', '12', '--new-tokens', 'grow', ...common]);
    expect(grown.code, grown.stderr).toBe(0);
    expect(grown.stderr).toMatch(/added 17 new tokens to the vocabulary; the corpus is not the run's/);
    const meta = (await readCheckpoint(path)).meta as any;
    expect(meta.model.vocabSize).toBe(29 + 17);
    expect(meta.training.state.iteration).toBe(12);
    const sample = await charnn(['sample', '-m', path, '--length', '30', '--seed', '1', '--backend', 'ts']);
    expect(sample.code).toBe(0);
  });

  it('divergence stops with one line, exit 1, and leaves the resumed checkpoint as it was', async () => {
    const path = join(dir, 'diverge.charnn');
    expect((await charnn(['train', corpus, '--iters', '10', '--model', 'rnn', '--out', path, ...tiny])).code).toBe(0);
    const before = readFileSync(path);
    const r = await charnn(['train', '--resume', path, '--iters', '200', '--lr', '50', '--clip', '0', '--save-every', '0', '--quiet', ...common]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(
      /^charnn: training diverged at iteration 2\d: the loss has exploded: above 13\.47 nats per token \(4 × ln V\) for 10 iterations in a row, [\d.]+ now; no checkpoint was written; .*diverge\.charnn is as it was \(lower --lr, or clip with --clip \/ --clip-norm, e\.g\. charnn train --resume .*diverge\.charnn --lr <lower>\)/,
    );
    expect(readFileSync(path).equals(before)).toBe(true);

    // Saving every iteration: saves stop while the loss is above the threshold, so what is
    // kept is from before the trouble.
    const r2 = await charnn(['train', '--resume', path, '--iters', '200', '--lr', '50', '--clip', '0', '--save-every', '1', '--quiet', ...common]);
    expect(r2.code).toBe(1);
    const m = /the last checkpoint from before that, .*diverge\.charnn \(iteration (\d+)\), is kept \(lower --lr/.exec(r2.stderr);
    expect(m, r2.stderr).not.toBeNull();
    expect(await iterationOf(path)).toBe(Number(m![1]));
    expect(Number(m![1])).toBeLessThan(20);
  });
});

describe('signals and concurrent writers', { timeout: 90_000 }, () => {
  it('a second Ctrl-C during the save exits at once, leaving the last checkpoint untouched', async () => {
    const path = join(dir, 'twice.charnn');
    const tiny = ['--hidden', '8', '--layers', '1', '--batch', '2', '--seq', '8', '--eval-every', '0', '--sample-length', '0', '--seed', '5', ...common];
    expect((await charnn(['train', corpus, '--iters', '10', '--out', path, '--quiet', ...tiny])).code).toBe(0);
    const before = readFileSync(path);
    // A preload slows every write to a checkpoint temp file, so the second signal surely
    // arrives while the first one's save is under way.
    const preload = join(dir, 'slow-save.mjs');
    writeFileSync(
      preload,
      `import fsp from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
const realOpen = fsp.open;
fsp.open = async function (path, ...rest) {
  const handle = await realOpen.call(this, path, ...rest);
  if (/\\.charnn\\.tmp-/.test(String(path))) {
    const write = handle.write.bind(handle);
    handle.write = async (...args) => {
      await new Promise((r) => setTimeout(r, 1500));
      return write(...args);
    };
  }
  return handle;
};
syncBuiltinESMExports();
`,
    );
    let signals = 0;
    let savingAt = 0;
    const r = await charnn(['train', '--resume', path, '--iters', '100000', '--save-every', '0', ...common], {
      node: ['--import', pathToFileURL(preload).href],
      onStderr: (all, child) => {
        if (signals === 0 && /iter 15 /.test(all)) {
          signals++;
          child.kill('SIGINT');
        } else if (signals === 1 && /interrupted: saving a checkpoint/.test(all)) {
          signals++;
          // Once the save's temp file exists (so its removal is what is tested), Ctrl-C again.
          const poll = setInterval(() => {
            if (readdirSync(dir).some((n) => n.startsWith('twice.charnn.tmp-'))) {
              clearInterval(poll);
              savingAt = Date.now();
              child.kill('SIGINT');
            }
          }, 5);
        }
      },
    });
    expect(r.code, r.stderr).toBe(130);
    expect(signals).toBe(2);
    expect(Date.now() - savingAt).toBeLessThan(1400); // did not wait for the slow save
    expect(r.stderr).not.toMatch(/saved|stopped at/);
    expect(readFileSync(path).equals(before)).toBe(true);
    expect(readdirSync(dir).filter((n) => n.startsWith('twice.charnn.tmp'))).toEqual([]);
  });

  it('two trainers saving to the same path every iteration never leave an interleaved file', async () => {
    const sub = join(dir, 'shared');
    mkdirSync(sub);
    copyFileSync(corpus, join(sub, 'corpus.txt'));
    const out = join(sub, 'shared.charnn');
    const run = (seed: number) =>
      charnn(['train', join(sub, 'corpus.txt'), '--iters', '60', '--save-every', '1', '--out', out, '--hidden', '8', '--layers', '1', '--batch', '2', '--seq', '8', '--eval-every', '0', '--sample-length', '0', '--seed', String(seed), '--quiet', ...common]);
    let running = true;
    let reads = 0;
    const watcher = (async () => {
      // Every read while they write sees one whole checkpoint (readCheckpoint verifies the CRC).
      while (running) {
        try {
          const c = await readCheckpoint(out);
          expect([1, 2]).toContain((c.meta as any).training.config.seed);
          reads++;
        } catch (err) {
          if (!/does not exist/.test((err as Error).message)) throw err;
        }
        await new Promise((r) => setTimeout(r, 2));
      }
    })();
    const [a, b] = await Promise.all([run(1), run(2)]);
    running = false;
    await watcher;
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    expect(reads).toBeGreaterThan(0);
    const final = await readCheckpoint(out);
    expect((final.meta as any).training.state.iteration).toBe(60);
    expect(readdirSync(sub).filter((n) => n.includes('.tmp'))).toEqual([]);
  });
});
