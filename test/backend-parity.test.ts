import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Backend } from '../src/backend/backend.js';
import { loadNativeBackend, nativeAddonPath } from '../src/backend/native.js';
import { ReferenceBackend } from '../src/backend/reference.js';
import type { CellType, ModelConfig } from '../src/model/config.js';
import type { TrainConfig } from '../src/train/config.js';
import { defaultOptimizerConfig } from '../src/train/optimizer.js';
import { TrainingSession } from '../src/train/session.js';
import { Random } from '../src/util/random.js';
import { randomWindowCase, windowGradients } from './window-gradients.js';

/**
 * The native backend against the reference, through the whole model rather than op by op
 * (test/backend-native.test.ts does that):
 *
 * 1. Gradients. For rnn, lstm and gru, 1 and 2 layers, one-hot and embedding input, and with
 *    dropout, one training step's analytic gradients on the native backend (float32) and on
 *    ReferenceBackend('f64'), from the same float32-representable weights, carried state,
 *    window and dropout seed. The f64 reference's gradients are themselves checked against
 *    centered finite differences in test/model-gradcheck.test.ts (to 1e-5 relative), so
 *    agreement here to float32 accuracy means the native gradients are right. Tolerance, per
 *    tensor: |native - f64| <= 2e-6 * max|f64 over the tensor| + 2e-5 * |f64| (the errors seen
 *    are 8x or more below that: float32 rounding through a few dozen dependent operations).
 * 2. Training. The same small model, seed and iterations on the native and the TypeScript
 *    (float32) backends end at validation losses within 0.02 nats per char.
 *
 * Skipped, with the reason, only when the addon was never built.
 */

const loaded = loadNativeBackend();
const addonFile = nativeAddonPath();
const built = addonFile !== null && existsSync(addonFile);
const available = 'backend' in loaded || built;
const skipReason = 'error' in loaded ? loaded.error : '';
if (!available) console.warn(`backend parity tests skipped: the native addon is not built (${skipReason})`);

function native(): Backend {
  if ('error' in loaded) throw new Error(`the native addon was built but does not load: ${loaded.error}`);
  return loaded.backend;
}

const suite = available ? describe : describe.skip;

// ---- 1. gradients ------------------------------------------------------------------------------

const T = 5;
const B = 3;
const V = 11;
const H = 24; // not a multiple of the SIMD width: the kernels' tails are exercised too

interface Case {
  cell: CellType;
  layers: number;
  embed: number;
  dropout: number;
}

const cases: Case[] = [];
for (const cell of ['rnn', 'lstm', 'gru', 'mlstm'] as CellType[]) {
  for (const layers of [1, 2]) for (const embed of [0, 7]) cases.push({ cell, layers, embed, dropout: 0 });
  cases.push({ cell, layers: 2, embed: 7, dropout: 0.3 });
  cases.push({ cell, layers: 2, embed: 0, dropout: 0.3 });
}

suite(available ? 'native vs f64 reference: gradients of a training step' : `native vs f64 reference (skipped: ${skipReason})`, () => {
  for (const cs of cases) {
    const name = `${cs.cell} layers=${cs.layers} ${cs.embed ? `embed=${cs.embed}` : 'one-hot'}${cs.dropout ? ` dropout=${cs.dropout}` : ''}`;
    it(name, async () => {
      const config: ModelConfig = { cell: cs.cell, vocabSize: V, hidden: H, layers: cs.layers, embed: cs.embed, dropout: cs.dropout };
      const rng = new Random(1234 + cases.indexOf(cs));
      const c = randomWindowCase(config, rng, T, B, 987654321);
      const want = await windowGradients(new ReferenceBackend('f64'), c);
      const got = await windowGradients(native(), c);

      for (let i = 0; i < want.losses.length; i++) {
        expect(Math.abs(got.losses[i] - want.losses[i]), `loss[${i}]`).toBeLessThanOrEqual(2e-6 * Math.abs(want.losses[i]) + 1e-6);
      }
      want.names.forEach((pname, pi) => {
        const w = want.grads[pi];
        const g = got.grads[pi];
        let max = 0;
        for (let i = 0; i < w.length; i++) max = Math.max(max, Math.abs(w[i]));
        expect(max, `${pname}: the gradient is not all zero`).toBeGreaterThan(0);
        for (let i = 0; i < w.length; i++) {
          const err = Math.abs(g[i] - w[i]);
          const tol = 2e-6 * max + 2e-5 * Math.abs(w[i]);
          if (!(err <= tol)) expect.fail(`${pname}[${i}]: native ${g[i]}, f64 reference ${w[i]} (|diff| ${err.toExponential(2)} > ${tol.toExponential(2)})`);
        }
      });
    });
  }
});

// ---- 2. training -------------------------------------------------------------------------------

const CORPUS = resolve(__dirname, '..', 'corpora', 'arithmetic.txt');
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function trainToValLoss(backend: Backend, cell: CellType): Promise<{ valLoss: number; trainLoss: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'charnn-parity-'));
  dirs.push(dir);
  const train: TrainConfig = {
    batch: 8,
    seq: 16,
    optimizer: defaultOptimizerConfig('adam'),
    clip: 5,
    clipNorm: 0,
    lrDecay: 1,
    lrDecayEvery: 0,
    seed: 42,
    iters: 120,
    epochs: 0,
    timeSeconds: 0,
    evalEvery: 0,
    sampleLength: 0,
    saveEvery: 0,
    valFrac: 0.02,
  };
  const session = await TrainingSession.create({
    corpus: CORPUS,
    tokenizer: { level: 'char', invalidUtf8: 'error', wordSplit: 'punct' },
    model: { cell, hidden: 24, layers: 2, embed: 0, dropout: 0 },
    train,
    out: join(dir, 'unused.charnn'),
    cacheDir: dir,
    backend,
  });
  try {
    let valLoss = NaN;
    let trainLoss = NaN;
    const reason = await session.trainer.run({
      step: (r) => (trainLoss = r.smoothLossPerToken),
      eval: (r) => (valLoss = r.valLoss),
    });
    expect(reason).toBe('done');
    return { valLoss, trainLoss };
  } finally {
    session.close();
  }
}

suite(available ? 'native vs TypeScript backend: the same training run' : `native vs TypeScript training (skipped: ${skipReason})`, () => {
  for (const cell of ['lstm', 'gru'] as CellType[]) {
    it(`2x24 ${cell}, 120 iterations of B 8 x T 16: validation losses within 0.02`, { timeout: 60000 }, async () => {
      const ts = await trainToValLoss(new ReferenceBackend('f32'), cell);
      const nat = await trainToValLoss(native(), cell);
      // It learned something (uniform guessing over its 14 characters is ln 14 = 2.64 nats).
      expect(ts.valLoss).toBeLessThan(2.45);
      expect(Math.abs(nat.valLoss - ts.valLoss), `native ${nat.valLoss}, TypeScript ${ts.valLoss}`).toBeLessThan(0.02);
    });
  }
});
