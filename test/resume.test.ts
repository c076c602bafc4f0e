import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ReferenceBackend } from '../src/backend/reference.js';
import { readCheckpoint } from '../src/checkpoint/read.js';
import { writeCheckpoint } from '../src/checkpoint/write.js';
import { seededRandom } from './checkpoint-helpers.js';
import { readTrainingFile } from '../src/modelfile/contents.js';
import type { TokenizerConfig } from '../src/data/config.js';
import { CharnnError, UsageError } from '../src/errors.js';
import type { CellType } from '../src/model/config.js';
import type { TrainConfig } from '../src/train/config.js';
import { defaultOptimizerConfig, type OptimizerName } from '../src/train/optimizer.js';
import { type NewTokenPolicy, TrainingSession } from '../src/train/session.js';
import { EXPLODING_WINDOWS, type Trainer, explodingThreshold } from '../src/train/trainer.js';

/**
 * Exact resume through the library: a run stopped at iteration k (the way a signal stops it:
 * requestStop, then the final save) and resumed from its checkpoint to n ends with the same
 * bytes in every parameter, optimizer slot and carried state as a run that went to n at once.
 */
const dir = mkdtempSync(join(tmpdir(), 'charnn-resume-'));
const corpus = join(dir, 'corpus.txt');
// Short epochs (a few dozen windows), so runs cross epoch boundaries, state resets and lr decay.
writeFileSync(corpus, 'the cat sat on the mat; a dog ran.\n'.repeat(12));
const CHAR: TokenizerConfig = { level: 'char', invalidUtf8: 'error', wordSplit: 'punct' };
const backend = new ReferenceBackend();

interface Run {
  cell: CellType;
  batch: number;
  optim: OptimizerName;
  dropout?: number;
  embed?: number;
  layers?: number;
  over?: Partial<TrainConfig>;
}

function trainConfig(r: Run, iters: number): TrainConfig {
  return {
    batch: r.batch, seq: 6, optimizer: defaultOptimizerConfig(r.optim), clip: 5, clipNorm: 0, lrDecay: 0.9, lrDecayEvery: 0,
    seed: 11, iters, epochs: 0, timeSeconds: 0, evalEvery: 7, sampleLength: 0, saveEvery: 0, valFrac: 0.1, ...r.over,
  };
}

function fresh(r: Run, iters: number, out: string, file = corpus): Promise<TrainingSession> {
  return TrainingSession.create({
    corpus: file,
    tokenizer: CHAR,
    model: { cell: r.cell, hidden: 8, layers: r.layers ?? 2, embed: r.embed ?? 0, dropout: r.dropout ?? 0 },
    train: trainConfig(r, iters),
    out,
    cacheDir: dir,
    backend,
  });
}

async function resume(path: string, iters: number, opts: { corpus?: string; newTokens?: NewTokenPolicy; out?: string; over?: Partial<TrainConfig> } = {}) {
  const from = await readTrainingFile(path);
  return TrainingSession.resume({
    from,
    corpus: opts.corpus ?? corpus,
    train: { ...from.meta.training.config, iters, ...opts.over },
    tokenizer: from.meta.tokenizer,
    out: opts.out ?? path,
    cacheDir: dir,
    backend,
    newTokens: opts.newTokens ?? 'error',
  });
}

/** Train, stopping after iteration `stopAt` as a signal would (requestStop, then the final save). */
async function trainUntil(s: TrainingSession, stopAt: number | null): Promise<string> {
  const reason = await s.trainer.run({
    step: (r) => {
      if (r.iteration === stopAt) s.trainer.requestStop('SIGINT');
    },
    save: async (why) => {
      if (why !== 'best') await s.save('current');
    },
  });
  return reason;
}

/** Raw float32 bytes of every parameter, optimizer slot and carried state, by name. */
async function snapshot(tr: Trainer): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  const add = async (name: string, t: Parameters<typeof backend.read>[0]) => {
    const v = (await backend.read(t)) as Float32Array;
    out.set(name, Buffer.from(v.buffer, v.byteOffset, v.byteLength));
  };
  const specs = tr.model.params.specs;
  for (let i = 0; i < specs.length; i++) await add(specs[i].name, tr.model.params.tensors[i]);
  for (const [slot, set] of tr.optimizer.slots) for (let i = 0; i < specs.length; i++) await add(`optim.${slot}.${specs[i].name}`, set.tensors[i]);
  for (const [l, { h, c }] of tr.runner.stateTensors().entries()) {
    await add(`state.${l}.h`, h);
    if (c) await add(`state.${l}.c`, c);
  }
  return out;
}

function expectSameRun(a: Trainer, b: Trainer, sa: Map<string, Buffer>, sb: Map<string, Buffer>): void {
  expect([...sb.keys()]).toEqual([...sa.keys()]);
  for (const [name, bytes] of sa) expect(sb.get(name)!.equals(bytes), `${name} differs`).toBe(true);
  expect(b.optimizer.step).toBe(a.optimizer.step);
  expect(b.data.batcher.state()).toEqual(a.data.batcher.state());
  expect(b.rng.state()).toEqual(a.rng.state());
  const { elapsedSeconds: _ea, ...stateA } = a.state;
  const { elapsedSeconds: _eb, ...stateB } = b.state;
  expect(stateB).toEqual(stateA);
}

describe('exact resume (library)', () => {
  const runs: Run[] = [];
  for (const cell of ['rnn', 'lstm', 'gru', 'mlstm'] as CellType[]) {
    runs.push({ cell, batch: 1, optim: 'adagrad' });
    runs.push({ cell, batch: 3, optim: cell === 'lstm' ? 'adam' : cell === 'gru' ? 'rmsprop' : 'adagrad', dropout: 0.25, embed: cell === 'gru' ? 5 : 0 });
  }
  const n = 80;
  for (const r of runs) {
    it(`${r.cell}, B=${r.batch}, ${r.optim}${r.dropout ? ', dropout' : ''}${r.embed ? ', embedding' : ''}: stopped at k and resumed to n is bit-identical to n at once`, async () => {
      const name = `${r.cell}-${r.batch}`;
      const straight = await fresh(r, n, join(dir, `${name}-straight.charnn`));
      expect(await trainUntil(straight, null)).toBe('done');
      const want = await snapshot(straight.trainer);

      // k = 13 is mid-epoch; the run crosses at least one epoch end (state reset, lr decay) after it.
      expect(straight.trainer.data.batcher.windowsPerEpoch).toBeLessThan(n - 13);
      const path = join(dir, `${name}-stopped.charnn`);
      const stopped = await fresh(r, n, path);
      expect(await trainUntil(stopped, 13)).toBe('interrupted');
      expect(stopped.trainer.state.iteration).toBe(13);
      stopped.close();

      const resumed = await resume(path, n);
      expect(resumed.resumed).toMatchObject({ iteration: 13, sameCorpus: true, addedTokens: [] });
      expect(await trainUntil(resumed, null)).toBe('done');
      expectSameRun(straight.trainer, resumed.trainer, want, await snapshot(resumed.trainer));

      // And what it saved matches, tensor for tensor.
      const a = await readCheckpoint(join(dir, `${name}-straight.charnn`));
      const b = await readCheckpoint(path);
      expect(b.tensors.map((t) => t.name)).toEqual(a.tensors.map((t) => t.name));
      a.tensors.forEach((t, i) => expect(Buffer.from(b.tensors[i].data.buffer, b.tensors[i].data.byteOffset, b.tensors[i].data.byteLength).equals(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength))).toBe(true));
      straight.close();
      resumed.close();
    });
  }

  it('survives several stops, one exactly at an epoch boundary, and an lr schedule by iterations', async () => {
    const r: Run = { cell: 'lstm', batch: 2, optim: 'adagrad', layers: 1, over: { lrDecay: 0.95, lrDecayEvery: 4 } };
    const n = 75;
    const straight = await fresh(r, n, join(dir, 'multi-straight.charnn'));
    await trainUntil(straight, null);
    const perEpoch = straight.trainer.data.batcher.windowsPerEpoch;
    const path = join(dir, 'multi.charnn');
    const first = await fresh(r, n, path);
    await trainUntil(first, 3);
    first.close();
    let at = 3;
    for (const stop of [perEpoch, perEpoch + 1, 2 * perEpoch - 1]) {
      const s = await resume(path, n);
      expect(s.trainer.state.iteration).toBe(at);
      expect(await trainUntil(s, stop)).toBe('interrupted');
      at = stop;
      s.close();
    }
    const last = await resume(path, n);
    await trainUntil(last, null);
    expectSameRun(straight.trainer, last.trainer, await snapshot(straight.trainer), await snapshot(last.trainer));
    straight.close();
    last.close();
  });
});

describe('exact resume with a learning-rate schedule', () => {
  const cosine = { kind: 'cosine' as const, warmup: 10, floor: 0.1 };

  it('warm-up and cosine decay by iterations: stopped in the warm-up and in the decay, resumed, bit-identical', async () => {
    const r: Run = { cell: 'lstm', batch: 2, optim: 'adagrad', layers: 1, over: { schedule: cosine, lrDecay: 1 } };
    const n = 60;
    const straight = await fresh(r, n, join(dir, 'sched-straight.charnn'));
    const lrs: number[] = [];
    await straight.trainer.run({ step: (s) => lrs.push(s.lr) });
    // The rate the updates used: lr/10 first, the full rate at the end of the warm-up, lr × floor last.
    const lr = defaultOptimizerConfig('adagrad').lr;
    expect(lrs[0]).toBeCloseTo(lr / 10, 12);
    expect(lrs[9]).toBeCloseTo(lr, 12);
    expect(lrs[n - 1]).toBeCloseTo(lr * 0.1, 12);
    expect(lrs[34]).toBeCloseTo(lr * 0.55, 12);
    const path = join(dir, 'sched.charnn');
    const first = await fresh(r, n, path);
    await trainUntil(first, 4);
    first.close();
    const second = await resume(path, n);
    await trainUntil(second, 41);
    second.close();
    const last = await resume(path, n);
    await trainUntil(last, null);
    expectSameRun(straight.trainer, last.trainer, await snapshot(straight.trainer), await snapshot(last.trainer));
    straight.close();
    last.close();
  });

  it('a --time run keeps the horizon it estimated: resumed twice from one checkpoint, the same bytes', async () => {
    const r: Run = { cell: 'gru', batch: 2, optim: 'adagrad', layers: 1, over: { schedule: cosine, lrDecay: 1 } };
    const path = join(dir, 'timed.charnn');
    const s = await fresh(r, 0, path);
    s.trainer.config.timeSeconds = 0.5;
    s.trainer.config.epochs = 0;
    expect(await trainUntil(s, null)).toBe('done');
    const end = s.trainer.state.scheduleEnd!;
    const stoppedAt = s.trainer.state.iteration;
    expect(end).toBeGreaterThan(10);
    s.close();
    const stored = await readTrainingFile(path);
    expect(stored.meta.training.state.scheduleEnd).toBe(end);

    // Two continuations of that checkpoint (still time-limited, but stopped by --iters first),
    // one of them stopped and resumed once more on the way.
    const target = stoppedAt + 30;
    const a = await resume(path, target, { out: join(dir, 'timed-a.charnn'), over: { timeSeconds: 1e6 } });
    const lrs: number[] = [];
    await a.trainer.run({ step: (x) => lrs.push(x.lr) });
    expect(a.trainer.state.scheduleEnd).toBe(end);
    // The horizon is the estimate or --iters, the nearer: the rate follows the cosine to it.
    const horizon = Math.min(end, target);
    const factor = horizon - 10 > 0 ? 0.1 + 0.9 * 0.5 * (1 + Math.cos((Math.PI * Math.min(1, (stoppedAt + 1 - 10) / (horizon - 10))))) : 0.1;
    expect(lrs[0]).toBeCloseTo(defaultOptimizerConfig('adagrad').lr * (stoppedAt + 1 <= 10 ? (stoppedAt + 1) / 10 : factor), 12);
    const bPath = join(dir, 'timed-b.charnn');
    const b1 = await resume(path, target, { out: bPath, over: { timeSeconds: 1e6 } });
    await trainUntil(b1, stoppedAt + 7);
    b1.close();
    const b = await resume(bPath, target, { over: { timeSeconds: 1e6 } });
    await trainUntil(b, null);
    expectSameRun(a.trainer, b.trainer, await snapshot(a.trainer), await snapshot(b.trainer));
    a.close();
    b.close();
  });
});

describe('resuming on another corpus', () => {
  const r: Run = { cell: 'gru', batch: 2, optim: 'adagrad', layers: 1 };

  async function stoppedRun(name: string): Promise<string> {
    const path = join(dir, name);
    const s = await fresh(r, 20, path);
    await trainUntil(s, null);
    s.close();
    return path;
  }

  it('continues on a text made of known tokens from its start, with fresh state', async () => {
    const path = await stoppedRun('subset.charnn');
    const other = join(dir, 'subset.txt');
    writeFileSync(other, 'a cat ran on the mat.\n'.repeat(20));
    const s = await resume(path, 30, { corpus: other });
    expect(s.resumed).toMatchObject({ sameCorpus: false, addedTokens: [] });
    expect(s.trainer.data.batcher.state()).toEqual({ epoch: 0, windowInEpoch: 0 });
    expect(s.vocabulary.tokens).toEqual((await readTrainingFile(path)).vocabulary.tokens);
    expect(await trainUntil(s, null)).toBe('done');
    expect(s.trainer.state.iteration).toBe(30);
    s.close();
  });

  it('names the tokens the model never saw, and grows the vocabulary when asked', async () => {
    const path = await stoppedRun('grow.charnn');
    const other = join(dir, 'new-chars.txt');
    writeFileSync(other, 'the cat sat on the mat; a dog ran. ZQ!\n'.repeat(12));
    const err = await resume(path, 30, { corpus: other }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CharnnError);
    expect((err as CharnnError).message).toMatch(/has 3 characters the model's vocabulary lacks: "!", "Q", "Z"/);
    expect((err as CharnnError).hint).toMatch(/--new-tokens grow/);
    await expect(resume(path, 30, { corpus: other, newTokens: 'unk' })).rejects.toThrow(UsageError);

    const before = await readTrainingFile(path);
    const V = before.vocabulary.size;
    const s = await resume(path, 30, { corpus: other, newTokens: 'grow', out: join(dir, 'grown.charnn') });
    expect(s.resumed!.addedTokens).toEqual(['!', 'Q', 'Z']);
    expect(s.vocabulary.tokens).toEqual([...before.vocabulary.tokens, '!', 'Q', 'Z']);
    expect(s.trainer.model.config.vocabSize).toBe(V + 3);
    // The old rows and columns are the stored ones, exactly.
    const outW = (await backend.read(s.trainer.model.params.get('out.W'))) as Float32Array;
    const storedW = before.checkpoint.tensors.find((t) => t.name === 'out.W')!.data;
    const H = 8;
    for (let h = 0; h < H; h++) expect(Array.from(outW.subarray(h * (V + 3), h * (V + 3) + V))).toEqual(Array.from(storedW.subarray(h * V, (h + 1) * V)));
    const Wx = (await backend.read(s.trainer.model.params.get('layers.0.Wx'))) as Float32Array;
    const storedWx = before.checkpoint.tensors.find((t) => t.name === 'layers.0.Wx')!.data;
    expect(Array.from(Wx.subarray(0, storedWx.length))).toEqual(Array.from(storedWx));
    expect(await trainUntil(s, null)).toBe('done');
    s.close();
    const grown = await readTrainingFile(join(dir, 'grown.charnn'));
    expect(grown.vocabulary.size).toBe(V + 3);
    expect(grown.meta.training.state.iteration).toBe(30);
  });

  it('word level: reads unseen words as <unk> when asked', async () => {
    const words = join(dir, 'words.txt');
    writeFileSync(words, 'the cat sat on the mat .\n'.repeat(30));
    const path = join(dir, 'words.charnn');
    const s = await TrainingSession.create({
      corpus: words,
      tokenizer: { level: 'word', invalidUtf8: 'error', wordSplit: 'punct' },
      model: { cell: 'rnn', hidden: 8, layers: 1, embed: 4, dropout: 0 },
      train: trainConfig({ cell: 'rnn', batch: 2, optim: 'adagrad' }, 10),
      out: path,
      cacheDir: dir,
      backend,
    });
    await trainUntil(s, null);
    s.close();
    const other = join(dir, 'words2.txt');
    writeFileSync(other, 'the dog sat on the log .\n'.repeat(30));
    await expect(resume(path, 20, { corpus: other })).rejects.toThrow(/2 tokens the model's vocabulary lacks: "dog", "log"/);
    const u = await resume(path, 20, { corpus: other, newTokens: 'unk' });
    expect(u.resumed!.unknownTokens).toEqual(['dog', 'log']);
    expect(u.vocabulary.size).toBe(s.vocabulary.size);
    const ids = new Int32Array(8);
    u.tokens.read(0, 8, ids);
    expect(u.vocabulary.decode(ids)).toBe('the <unk> sat on the <unk>.\n');
    expect(await trainUntil(u, null)).toBe('done');
    u.close();
  });
});

describe('divergence', () => {
  it('stops a run whose loss explodes, after the documented number of windows, without saving meanwhile', async () => {
    const r: Run = { cell: 'rnn', batch: 2, optim: 'adagrad', layers: 1, over: { clip: 0, saveEvery: 1, evalEvery: 0 } };
    const s = await fresh(r, 100, join(dir, 'explode.charnn'));
    // A huge output bias on one token (the rare "\n"): confidently wrong predictions, a finite
    // but enormous loss that Adagrad's small steps cannot undo within a few windows.
    const b = s.trainer.model.params.get('out.b');
    const v = (await backend.read(b)) as Float32Array;
    v[s.vocabulary.id('\n')] = 500;
    backend.write(b, v);
    const saves: number[] = [];
    const messages: string[] = [];
    const reason = await s.trainer.run({
      save: async () => void saves.push(s.trainer.state.iteration),
      diverged: (m, d) => {
        messages.push(m);
        expect(d.iteration).toBe(EXPLODING_WINDOWS);
      },
    });
    expect(reason).toBe('diverged');
    expect(s.trainer.state.iteration).toBe(EXPLODING_WINDOWS);
    expect(saves).toEqual([]);
    expect(messages[0]).toMatch(new RegExp(`diverged at iteration ${EXPLODING_WINDOWS}: the loss has exploded: above ${explodingThreshold(s.vocabulary.size).toFixed(2)} nats per token .* \\(lower --lr`));
    s.close();
  });

  it('uses a generous threshold: 4 × ln V, at least 4 nats', () => {
    expect(explodingThreshold(2)).toBe(4);
    expect(explodingThreshold(100)).toBeCloseTo(4 * Math.log(100));
  });
});

describe('resuming from a forged training state', () => {
  it('any field replaced by a wrong value ends in a one-line CharnnError or a working run, never a crash', async () => {
    const r: Run = { cell: 'lstm', batch: 2, optim: 'adam', layers: 1 };
    const good = join(dir, 'forge-good.charnn');
    const s = await fresh(r, 6, good);
    await trainUntil(s, null);
    s.close();
    const original = await readCheckpoint(good);

    // Every leaf of the header a resume reads, as a path of keys.
    const leaves: string[][] = [];
    const walk = (v: unknown, at: string[]) => {
      if (v !== null && typeof v === 'object' && !(Array.isArray(v) && at.at(-1) === 'tokens')) {
        for (const [k, x] of Object.entries(v)) walk(x, [...at, k]);
        if (Array.isArray(v) || Object.keys(v).length === 0) leaves.push(at);
      } else leaves.push(at);
    };
    for (const key of ['model', 'tokenizer', 'vocabulary', 'training']) walk(original.meta[key], [key]);
    const random = seededRandom(8);
    const wrong = [null, -1, 0, 1.5, 1e12, 'x', [], {}, true, [1, 2, 3, 4]];
    const path = join(dir, 'forged.charnn');
    let rejected = 0;
    for (let i = 0; i < 120; i++) {
      const meta = structuredClone(original.meta) as Record<string, any>;
      const at = leaves[Math.floor(random() * leaves.length)];
      let node = meta;
      for (const k of at.slice(0, -1)) node = node[k];
      const value = wrong[Math.floor(random() * wrong.length)];
      if (random() < 0.2) delete node[at.at(-1)!];
      else node[at.at(-1)!] = value;
      await writeCheckpoint(path, { meta, tensors: original.tensors });
      try {
        // (A huge but valid sample length or time limit would only make the run long.)
        const session = await resume(path, 8, { out: join(dir, 'forged-out.charnn'), over: { sampleLength: 0, epochs: 0, timeSeconds: 0 } });
        await session.trainer.run();
        session.close();
      } catch (error) {
        expect(error, `${at.join('.')} = ${JSON.stringify(value)}: ${(error as Error).stack}`).toBeInstanceOf(CharnnError);
        expect((error as CharnnError).message).not.toContain('\n');
        rejected++;
      }
    }
    expect(rejected).toBeGreaterThan(30);
  });

  it('a model file without training state, or missing an optimizer tensor, is refused with a clear message', async () => {
    const good = join(dir, 'forge-good.charnn');
    const original = await readCheckpoint(good);
    const path = join(dir, 'forged2.charnn');
    const { training: _t, ...plain } = original.meta;
    await writeCheckpoint(path, { meta: plain, tensors: original.tensors });
    await expect(readTrainingFile(path)).rejects.toThrow(/holds a model but no training state, so it cannot be resumed/);
    await writeCheckpoint(path, { meta: original.meta, tensors: original.tensors.filter((t) => t.name !== 'optim.v.out.W') });
    await expect(resume(path, 8)).rejects.toThrow(/checkpoint has no tensor "optim\.v\.out\.W"/);
    await writeCheckpoint(path, { meta: original.meta, tensors: original.tensors.map((t) => (t.name === 'state.0.h' ? { ...t, shape: [t.data.length] } : t)) });
    await expect(resume(path, 8)).rejects.toThrow(/tensor "state\.0\.h" has shape \[16\], expected \[2, 8\]/);
  });
});
