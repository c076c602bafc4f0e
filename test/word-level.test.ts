import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Backend } from '../src/backend/backend.js';
import { cpu } from '../src/backend/cpu-tensor.js';
import { ReferenceBackend } from '../src/backend/reference.js';
import { loadNativeBackend } from '../src/backend/native.js';
import type { ModelConfig } from '../src/model/config.js';
import { Model } from '../src/model/model.js';
import { ParamSet } from '../src/model/params.js';
import type { TrainConfig } from '../src/train/config.js';
import { Optimizer, defaultOptimizerConfig, type OptimizerName } from '../src/train/optimizer.js';
import { TrainingSession } from '../src/train/session.js';
import { Random } from '../src/util/random.js';
import { detokenize, tokenizeText } from '../src/data/index.js';
import { charnn, trainTiny } from './sample-helpers.js';

/**
 * What word-level models need beyond character-level ones: a row-sparse embedding gradient
 * and update (the table is V rows but a window reads only a few), tied input/output weights
 * (gradient-checked in model-gradcheck.test.ts) and learning-rate decay on validation plateaus.
 */
const V = 50;
const T = 6;
const B = 3;
const config: ModelConfig = { cell: 'lstm', vocabSize: V, hidden: 8, layers: 2, embed: 5, dropout: 0.2 };

function randomWindow(rng: Random): { inputs: Int32Array; targets: Int32Array } {
  // Ids from a small range so that some repeat within the window (their rows' gradients sum).
  const inputs = Int32Array.from({ length: T * B }, () => 10 + Math.floor(rng.next() * 12));
  const targets = Int32Array.from({ length: T * B }, () => Math.floor(rng.next() * V));
  return { inputs, targets };
}

// The native backend too where it was built (backend-native.test.ts reports when it was not).
const native = loadNativeBackend();
const backends: Array<[string, () => Backend]> = [['reference', () => new ReferenceBackend()]];
if ('backend' in native) backends.push(['native', () => native.backend]);

describe('row-sparse embedding gradient', () => {
  for (const [name, make] of backends) {
    it(`${name}: holds exactly the dense gradient's non-zero rows`, async () => {
      const be = make();
      const model = Model.create(be, config, 3);
      const dense = model.runner(T, B, { training: true });
      const sparse = model.runner(T, B, { training: true, sparseEmbeddingGrad: true });
      const { inputs, targets } = randomWindow(new Random(9));
      const run = async (runner: typeof dense) => {
        runner.setWindow(inputs, targets);
        const grads = runner.trainStep(ParamSet.zeros(be, model.params.specs), 1 / B, 77);
        return grads;
      };
      const d = await run(dense);
      const s = await run(sparse);
      const i = d.indexOf('embed');
      expect(d.rowIds[i]).toBeNull();
      const rowIds = Array.from(await be.read(s.rowIds[i]!));
      expect(new Set(rowIds)).toEqual(new Set(inputs));
      expect(rowIds.length).toBe(new Set(inputs).size);
      const denseTable = await be.read(d.tensors[i]);
      const rows = await be.read(s.tensors[i]);
      const E = config.embed;
      const expected = new Float32Array(denseTable.length);
      rowIds.forEach((id, k) => expected.set(rows.subarray(k * E, k * E + E), id * E));
      expect(Array.from(denseTable)).toEqual(Array.from(expected));
      // Every other gradient is the dense runner's, bit for bit.
      for (const spec of model.params.specs) {
        if (spec.name === 'embed') continue;
        expect(Array.from(await be.read(s.get(spec.name))), spec.name).toEqual(Array.from(await be.read(d.get(spec.name))));
      }
    });
  }

  for (const optim of ['sgd', 'adagrad'] as OptimizerName[]) {
    for (const [name, make] of backends) {
      it(`${name}: ${optim} updating only the rows read equals the dense update, bit for bit, over 5 steps`, async () => {
        const be = make();
        const train = async (sparseEmbeddingGrad: boolean) => {
          const model = Model.create(be, config, 3);
          const runner = model.runner(T, B, { training: true, sparseEmbeddingGrad });
          const opt = new Optimizer(be, { ...defaultOptimizerConfig(optim), lr: 0.05 }, model.params);
          // The trainer's gradient set: no dense [V, E] table when the embedding's is row-sparse.
          const grads = runner.gradients();
          expect(grads.get('embed').shape).toEqual(sparseEmbeddingGrad ? [T * B, config.embed] : [V, config.embed]);
          const rng = new Random(4);
          for (let step = 0; step < 5; step++) {
            const { inputs, targets } = randomWindow(rng);
            runner.setWindow(inputs, targets);
            opt.update(model.params, runner.trainStep(grads, 1 / B, step), 0.05);
          }
          const slots = [...opt.slots.values()].flatMap((set) => set.tensors);
          return Promise.all([...model.params.tensors, ...slots].map(async (t) => Array.from(await be.read(t))));
        };
        const dense = await train(false);
        const sparse = await train(true);
        expect(sparse).toEqual(dense);
        // And the embedding did move (the test would pass trivially if nothing were updated).
        const fresh = Array.from(await be.read(Model.create(be, config, 3).params.get('embed')));
        expect(dense[0]).not.toEqual(fresh);
      });
    }
  }

  it('is refused for optimizers whose update moves zero-gradient rows (Adam, RMSprop)', () => {
    const be = new ReferenceBackend();
    const model = Model.create(be, config, 3);
    const runner = model.runner(T, B, { training: true, sparseEmbeddingGrad: true });
    const { inputs, targets } = randomWindow(new Random(1));
    runner.setWindow(inputs, targets);
    const grads = runner.trainStep(ParamSet.zeros(be, model.params.specs), 1 / B, 1);
    for (const optim of ['adam', 'rmsprop'] as OptimizerName[]) {
      const opt = new Optimizer(be, defaultOptimizerConfig(optim), model.params);
      expect(() => opt.update(model.params, grads, 0.01)).toThrow(/cannot update rows alone/);
    }
  });
});

describe('tied input and output weights', () => {
  it('have no out.W; logits are h @ embed^T', async () => {
    const be = new ReferenceBackend('f64');
    const tied: ModelConfig = { ...config, hidden: 5, embed: 5, dropout: 0, tie: true };
    const model = Model.create(be, tied, 2);
    expect(model.params.has('out.W')).toBe(false);
    const runner = model.runner(1, 1, { training: false });
    runner.setWindow(Int32Array.of(7));
    runner.forward(false);
    const h = cpu(runner.layerOutputs(tied.layers - 1)).data;
    const embed = cpu(model.params.get('embed')).data;
    const bias = cpu(model.params.get('out.b')).data;
    const logits = cpu(runner.logits).data;
    for (const v of [0, 7, 49]) {
      let dot = bias[v];
      for (let e = 0; e < 5; e++) dot += h[e] * embed[v * 5 + e];
      expect(logits[v]).toBeCloseTo(dot, 12);
    }
  });

  it('need an embedding as wide as the hidden layer', () => {
    expect(() => Model.create(new ReferenceBackend(), { ...config, tie: true }, 1)).toThrow(/--tie needs an embedding as wide as the hidden layer/);
  });
});

describe('learning-rate decay on validation plateaus', () => {
  const dir = mkdtempSync(join(tmpdir(), 'charnn-word-'));
  const corpus = join(dir, 'words.txt');
  writeFileSync(corpus, 'the cat sat on the mat .\nthe dog sat on the log .\n'.repeat(40));

  async function session(over: Partial<TrainConfig>) {
    const train: TrainConfig = {
      batch: 2, seq: 5, optimizer: defaultOptimizerConfig('sgd'), clip: 0, clipNorm: 5, lrDecay: 1, lrDecayEvery: 0,
      seed: 5, iters: 10, epochs: 0, timeSeconds: 0, evalEvery: 0, sampleLength: 0, saveEvery: 0, valFrac: 0.1, ...over,
    };
    return TrainingSession.create({
      corpus,
      tokenizer: { level: 'word', invalidUtf8: 'error', wordSplit: 'punct' },
      model: { cell: 'gru', hidden: 6, layers: 1, embed: 6, dropout: 0 },
      train,
      out: join(dir, 'words.charnn'),
      cacheDir: dir,
      backend: new ReferenceBackend(),
    });
  }

  it('multiplies the rate by --plateau-decay after more than --plateau-patience validations without a new best', async () => {
    const s = await session({ plateauDecay: 0.25, plateauPatience: 1 });
    const st = s.trainer.state;
    const lr0 = st.lr;
    await s.trainer.validate({}); // the first validation is a new best
    expect(st.lr).toBe(lr0);
    st.bestValLoss = 0; // nothing beats it now
    await s.trainer.validate({});
    expect(st.lr).toBe(lr0); // one stall is within the patience
    await s.trainer.validate({});
    expect(st.lr).toBe(lr0 * 0.25);
    await s.trainer.validate({});
    expect(st.lr).toBe(lr0 * 0.25);
    await s.trainer.validate({});
    expect(st.lr).toBe(lr0 * 0.25 * 0.25);
    s.close();
  });

  it('leaves the rate alone when off (the default)', async () => {
    const s = await session({});
    const lr0 = s.trainer.state.lr;
    s.trainer.state.bestValLoss = 0;
    for (let i = 0; i < 3; i++) await s.trainer.validate({});
    expect(s.trainer.state.lr).toBe(lr0);
    s.close();
  });
});

describe('word-level samples (CLI, end to end)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'charnn-words-'));
  const corpusPath = join(dir, 'unicode.txt');
  // Punctuation of several scripts, combining marks, a flag, a ZWJ family and CJK full-width
  // punctuation, in lines a small model memorises.
  const lines = [
    'Café « crème », s’il vous plaît !',
    '¿ Dónde está el niño ? ¡ Aquí !',
    'The flag 🇫🇷 and the family 👨‍👩‍👧 are here (really).',
    '東京 、 大阪 。 「 こんにちは 」',
    'Naïve résumé : ṩ̃ stays whole .',
  ];
  writeFileSync(corpusPath, (lines.join('\n') + '\n').repeat(60));

  it('re-assemble tokens with sensible spacing and never split a character', () => {
    const model = trainTiny(dir, 'unicode', corpusPath, { level: 'word', 'word-split': 'punct', hidden: '32', embed: '32', tie: 'true', iters: '300', batch: '4', seq: '12' });
    const r = charnn(['sample', '-m', model, '--length', '200', '--temp', '0.2', '--seed', '3', '--prime', 'Café']);
    expect(r.code, r.stderr).toBe(0);
    const text = r.stdout;
    expect(text).not.toContain('\uFFFD');
    // Each whole line is a corpus line as the detokenizer writes it: characters intact,
    // spacing by the rules (the model memorises the lines; sampling is seeded).
    const rendered = new Set(lines.map((line) => detokenize(tokenizeText(line, 'word', 'punct'))));
    expect([...rendered]).toContain('Café «crème», s’il vous plaît!');
    expect([...rendered]).toContain('¿Dónde está el niño? ¡Aquí!');
    expect([...rendered]).toContain('東京、大阪。「こんにちは」');
    const whole = text.split('\n').slice(0, -1);
    expect(whole.length).toBeGreaterThan(10);
    for (const line of whole) expect([...rendered], JSON.stringify(line)).toContain(line);
    expect(text).toContain('The flag 🇫🇷 and the family 👨‍👩‍👧 are here (really).');
  }, 60_000);
});
