import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ReferenceBackend } from '../src/backend/reference.js';
import type { CellType } from '../src/model/config.js';
import { evaluateRegion } from '../src/train/evaluate.js';
import { defaultOptimizerConfig, type OptimizerName } from '../src/train/optimizer.js';
import type { TrainConfig } from '../src/train/config.js';
import { TrainingSession } from '../src/train/session.js';

const dir = mkdtempSync(join(tmpdir(), 'charnn-train-'));
const corpus = join(dir, 'abc.txt');
// A strongly predictable text: a model that learns anything gets far below log(V).
writeFileSync(corpus, 'abcdefgh\n'.repeat(300));

function trainConfig(over: Partial<TrainConfig> = {}, optim: OptimizerName = 'adagrad'): TrainConfig {
  return {
    batch: 4, seq: 10, optimizer: defaultOptimizerConfig(optim), clip: 5, clipNorm: 0, lrDecay: 1, lrDecayEvery: 0,
    seed: 5, iters: 60, epochs: 0, timeSeconds: 0, evalEvery: 0, sampleLength: 0, saveEvery: 0, valFrac: 0.1, ...over,
  };
}

async function session(cell: CellType, train: TrainConfig) {
  return TrainingSession.create({
    corpus,
    tokenizer: { level: 'char', invalidUtf8: 'error', wordSplit: 'punct' },
    model: { cell, hidden: 12, layers: 2, embed: 0, dropout: 0 },
    train,
    out: join(dir, `${cell}.charnn`),
    cacheDir: dir,
    backend: new ReferenceBackend(),
  });
}

describe('training loop', () => {
  for (const [cell, optim] of [['rnn', 'adagrad'], ['lstm', 'adam'], ['gru', 'rmsprop'], ['mlstm', 'adam']] as Array<[CellType, OptimizerName]>) {
    it(`${cell} with ${optim} learns a repetitive text (validation loss falls far below log V)`, async () => {
      const s = await session(cell, trainConfig({ iters: 300 }, optim));
      const before = await evaluateRegion(s.trainer.model, s.cache, s.trainTokens, s.cache.length, 10, 1);
      expect(before.loss).toBeGreaterThan(1.8); // about log(9) = 2.2 at the start
      const reason = await s.trainer.run();
      expect(reason).toBe('done');
      expect(s.trainer.state.iteration).toBe(300);
      expect(s.trainer.state.bestValLoss).toBeLessThan(0.5);
      s.close();
    });
  }

  it('the same seed gives bit-identical weights; another seed does not', async () => {
    const weights = async (seed: number) => {
      const s = await session('lstm', trainConfig({ seed, iters: 20, dropout: 0 } as Partial<TrainConfig>));
      await s.trainer.run();
      const out = await Promise.all(s.trainer.model.params.tensors.map((t) => s.trainer.backend.read(t)));
      s.close();
      return out.map((a) => Array.from(a));
    };
    const a = await weights(1);
    const b = await weights(1);
    const c = await weights(2);
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
  });

  it('stops at --epochs and resets state at each epoch', async () => {
    const s = await session('rnn', trainConfig({ iters: 0, epochs: 2 }));
    const perEpoch = s.trainer.data.batcher.windowsPerEpoch;
    await s.trainer.run();
    expect(s.trainer.state.iteration).toBe(2 * perEpoch);
    s.close();
  });

  it('stops on divergence without updating the weights', async () => {
    const s = await session('rnn', trainConfig({ iters: 50, clip: 0 }, 'adagrad'));
    const be = s.trainer.backend;
    // Poison one weight: the next forward produces NaN and the trainer must stop there.
    const w = s.trainer.model.params.get('out.W');
    const values = await be.read(w);
    values[0] = NaN;
    be.write(w, values);
    const messages: string[] = [];
    const reason = await s.trainer.run({ diverged: (m) => messages.push(m) });
    expect(reason).toBe('diverged');
    expect(s.trainer.state.iteration).toBe(0);
    expect(messages[0]).toMatch(/diverged at iteration 1.*lower --lr/);
    s.close();
  });
});

describe('evaluateRegion', () => {
  it('scores every prediction of every stream, whatever T, with carried state', async () => {
    const s = await session('gru', trainConfig({ iters: 10 }));
    await s.trainer.run();
    const m = s.trainer.model;
    const end = s.cache.length;
    const start = end - 101; // 100 predictions
    const oneByOne = await evaluateRegion(m, s.cache, start, end, 1, 1);
    expect(oneByOne.tokens).toBe(100);
    for (const T of [7, 10, 100]) {
      const r = await evaluateRegion(m, s.cache, start, end, T, 1);
      expect(r.tokens).toBe(100);
      expect(r.loss).toBeCloseTo(oneByOne.loss, 5);
    }
    // Four streams of 25 predictions each: the same tokens, but state restarts per stream.
    const four = await evaluateRegion(m, s.cache, start, end, 7, 4);
    expect(four.tokens).toBe(100);
    s.close();
  });
});
