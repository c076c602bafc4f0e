import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Backend, type Tensor, dropoutKeeps } from '../src/backend/backend.js';
import { GpuBackend } from '../src/backend/gpu.js';
import { type AdapterFound, probeAdapter } from '../src/backend/gpu/webgpu.js';
import { ReferenceBackend } from '../src/backend/reference.js';
import { selectBackend } from '../src/backend/select.js';
import type { CellType, ModelConfig } from '../src/model/config.js';
import { Random } from '../src/util/random.js';
import { randomWindowCase, windowGradients } from './window-gradients.js';

/**
 * The gpu backend's gpu.js kernels against the float32 reference backend.
 *
 * 1. Every op in gpu.js `cpu` mode (the kernel sources run as JavaScript; runs everywhere):
 *    random data, sizes 1, 3, 17, 65, outputs written into row views of bigger buffers (the
 *    rows outside must stay as they were), every GEMM transpose pair, alpha/beta with NaN in C
 *    for beta = 0, in-place dropout and cross-entropy, the LSTM's cPrev and c as two views of
 *    one buffer as the model passes them.
 *    Tolerance |gpu - ref| <= rel * |ref| + abs * scale, scale being the size of the terms
 *    (sum |a b| for GEMMs and row sums). The kernels compute in double in cpu mode and store
 *    float32, the reference rounds to float32 per element or per accumulation step: rel 1e-5
 *    and abs 2e-6 cover that. Dropout masks, copies, gathers, scatters, clip and Adagrad's
 *    compensated sum must match exactly.
 * 2. A whole window: Model.trainStep on small RNN/LSTM/GRU models (1-2 layers, one-hot and
 *    embedding input, dropout), every gradient and loss against the f64 reference with the
 *    native backend's tolerance (test/backend-parity.test.ts): 2e-6 * max|g| + 2e-5 * |g|.
 * 3. The same in gpu.js `webgpu` mode (WGSL on a real WebGPU device, float32 throughout and
 *    the device's exp/tanh: rel 1e-4) when Dawn finds an adapter, a software one included
 *    (Mesa's llvmpipe through OpenGL ES: Debian's libegl-mesa0). Skipped, saying so, otherwise.
 *
 * 4. --device: cpu never loads Dawn; gpu without a hardware adapter is a one-line error (exit 1)
 *    and auto falls back to the CPU; CHARNN_WEBGPU_SOFTWARE=1 accepts a software adapter.
 *
 * The largest error seen per op is printed at the end.
 */

const maxErr = new Map<string, number>();
afterAll(() => {
  const rows = [...maxErr].map(([k, v]) => `  ${k.padEnd(40)} ${v.toExponential(2)}`);
  console.log(`gpu backend, largest |gpu - reference| / (|reference| + scale) per op:\n${rows.join('\n')}`);
});

function note(key: string, err: number): void {
  maxErr.set(key, Math.max(maxErr.get(key) ?? 0, err));
}

let rng = new Random(2024);
const values = (n: number, s = 1) => Float32Array.from({ length: n }, () => rng.uniform(-s, s));
const ids = (n: number, v: number) => Int32Array.from({ length: n }, () => Math.floor(rng.next() * v));

interface Tol {
  rel: number;
  abs: number;
  /** Per-element scale of abs (default 1). */
  scale?: (i: number) => number;
}

function compare(label: string, got: ArrayLike<number>, want: ArrayLike<number>, tol: Tol): void {
  expect(got.length, `${label}: length`).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    const g = got[i];
    const w = want[i];
    if (Number.isNaN(w) && Number.isNaN(g)) continue;
    const s = tol.scale ? tol.scale(i) : 1;
    const err = Math.abs(g - w);
    note(label, err / (Math.abs(w) + s));
    const bound = tol.rel * Math.abs(w) + tol.abs * s;
    if (!(err <= bound)) expect.fail(`${label}[${i}]: gpu ${g}, reference ${w} (|diff| ${err.toExponential(3)} > ${bound.toExponential(3)})`);
  }
}

/** A tensor of `rows` x `cols` values, as rows 1..rows of a [rows + 2, cols] buffer of 7s. */
function framed(be: Backend, data: Float32Array, rows: number, cols: number): { view: Tensor; whole: Tensor } {
  const whole = be.upload(new Float32Array((rows + 2) * cols).fill(7), [rows + 2, cols]);
  const view = be.rows(whole, 1, rows);
  be.write(view, data);
  return { view, whole };
}

/**
 * Run `op` on the reference and on `gpu` with the same inputs (made by `op` from the backend
 * it is given) and compare every tensor it returns, whole buffers included.
 */
async function same(gpu: Backend, label: string, op: (be: Backend) => Tensor[], tol: Tol): Promise<void> {
  const ref = new ReferenceBackend('f32');
  const state = rng.state();
  const want = op(ref);
  rng = new Random(state);
  const got = op(gpu);
  for (let k = 0; k < want.length; k++) {
    compare(`${(gpu as GpuBackend).mode} ${label}`, Array.from(await gpu.read(got[k])), Array.from(await ref.read(want[k])), tol);
  }
}

const EXACT: Tol = { rel: 0, abs: 0 };
const SIZES = [1, 3, 17, 65];

/** The op-by-op checks, for one gpu backend. `f32Only`: float32 arithmetic (webgpu). */
function opSuite(getBackend: () => GpuBackend, tolScale: number): void {
  const ELEM: Tol = { rel: 1e-5 * tolScale, abs: 2e-6 * tolScale };

  it('fill, copy, axpy, scale, clip into row views', async () => {
    const gpu = getBackend();
    for (const c of SIZES) {
      for (const r of [1, 3]) {
        const a = values(r * c, 3);
        const b = values(r * c, 3);
        await same(gpu, 'fill', (be) => {
          const { view, whole } = framed(be, a, r, c);
          be.fill(view, -2.5);
          return [whole];
        }, EXACT);
        await same(gpu, 'copy', (be) => {
          const { view, whole } = framed(be, a, r, c);
          be.copy(be.upload(b, [r, c]), view);
          return [whole];
        }, EXACT);
        await same(gpu, 'axpy', (be) => {
          const { view, whole } = framed(be, a, r, c);
          be.axpy(-0.75, be.rows(be.upload(new Float32Array(b.length + c).fill(1).map((_, i) => (i < c ? 9 : b[i - c])), [r + 1, c]), 1, r), view);
          return [whole];
        }, ELEM);
        await same(gpu, 'scale', (be) => {
          const { view, whole } = framed(be, a, r, c);
          be.scale(view, 1.7);
          return [whole];
        }, ELEM);
        await same(gpu, 'clip', (be) => {
          const { view, whole } = framed(be, a, r, c);
          be.clip(view, 1.25);
          return [whole];
        }, EXACT);
      }
    }
  });

  it('mul and mulBackward into row views (exact: one float32 product per element)', async () => {
    const gpu = getBackend();
    for (const c of SIZES) {
      for (const r of [1, 3]) {
        const a = values(r * c, 3);
        const b = values(r * c, 3);
        const d = values(r * c, 3);
        await same(gpu, 'mul', (be) => {
          const out = framed(be, new Float32Array(r * c), r, c);
          be.mul(framed(be, a, r, c).view, be.upload(b, [r, c]), out.view);
          return [out.whole];
        }, EXACT);
        await same(gpu, 'mulBackward', (be) => {
          const dA = framed(be, new Float32Array(r * c), r, c);
          const dB = framed(be, new Float32Array(r * c), r, c);
          be.mulBackward(framed(be, a, r, c).view, be.upload(b, [r, c]), framed(be, d, r, c).view, dA.view, dB.view);
          return [dA.whole, dB.whole];
        }, EXACT);
      }
    }
  });

  for (const tA of [false, true]) {
    for (const tB of [false, true]) {
      it(`gemm op(A)${tA ? '^T' : ''} op(B)${tB ? '^T' : ''}`, async () => {
        const gpu = getBackend();
        // [3, 5, 300] and [2, 3, 1100] are cut into 2 and 8 slices of K (split-K), the last short.
        for (const [M, N, Kd] of [[1, 1, 1], [3, 5, 17], [17, 65, 3], [65, 17, 65], [5, 9, 0], [3, 5, 300], [2, 3, 1100]]) {
          for (const [alpha, beta, nan] of [[1, 0, true], [-0.5, 1, false], [2, 0.25, false]] as const) {
            const a = values(M * Kd);
            const b = values(Kd * N);
            const c = values(M * N).map((x) => (nan ? NaN : x));
            // The terms' size: sum_k |a b| <= K for values in [-1, 1], plus |beta c|.
            const scale = () => Math.abs(alpha) * Kd + Math.abs(beta) + 1;
            await same(gpu, `gemm ${tA ? 'T' : 'N'}${tB ? 'T' : 'N'}`, (be) => {
              const A = be.upload(a, tA ? [Kd, M] : [M, Kd]);
              const B = be.upload(b, tB ? [N, Kd] : [Kd, N]);
              const { view, whole } = framed(be, c, M, N);
              be.gemm(tA, tB, alpha, A, B, beta, view);
              return [whole];
            }, { rel: 0, abs: 2e-6 * tolScale, scale });
          }
        }
      });
    }
  }

  it('gemm with B transposed: the kept transpose of B follows every write to B', async () => {
    const gpu = getBackend();
    const a = values(3 * 4);
    const b = values(5 * 4);
    const b2 = values(5 * 4);
    await same(gpu, 'gemm NT, B rewritten', (be) => {
      const A = be.upload(a, [3, 4]);
      const B = be.upload(new Float32Array(5 * 4 + 4).fill(2), [6, 4]);
      const Bv = be.rows(B, 1, 5);
      const out = [1, 2, 3, 4, 5].map(() => be.zeros([3, 5]));
      be.gemm(false, true, 1, A, Bv, 0, out[0]);
      be.write(Bv, b);
      be.gemm(false, true, 1, A, Bv, 0, out[1]);
      be.gemm(false, true, 1, A, Bv, 0, out[2]);
      be.scale(be.rows(B, 0, 1), 3);
      be.gemm(false, true, 1, A, be.rows(B, 0, 5), 0, out[3]);
      be.copy(be.upload(b2, [5, 4]), Bv);
      be.gemm(false, true, 1, A, Bv, 0, out[4]);
      return out;
    }, { rel: 0, abs: 2e-6 * tolScale, scale: () => 20 });
  });

  it('addRowVector, sumRows', async () => {
    const gpu = getBackend();
    for (const n of SIZES) {
      for (const m of [1, 3, 17]) {
        const x = values(n * m);
        const bias = values(m);
        await same(gpu, 'addRowVector', (be) => {
          const { view, whole } = framed(be, x, n, m);
          be.addRowVector(view, be.upload(bias, [m]));
          return [whole];
        }, ELEM);
        for (const acc of [false, true]) {
          await same(gpu, 'sumRows', (be) => {
            const out = framed(be, bias, 1, m);
            be.sumRows(be.upload(x, [n, m]), out.view, acc);
            return [out.whole];
          }, { rel: 0, abs: 2e-6 * tolScale, scale: () => n + 1 });
        }
      }
    }
  });

  it('gatherRows, scatterAddRows (repeated ids), scatterRows (distinct ids)', async () => {
    const gpu = getBackend();
    for (const v of [1, 3, 17, 65]) {
      for (const d of [1, 3, 17]) {
        for (const n of [1, 3, 17]) {
          const table = values(v * d);
          const idx = ids(n, v);
          const rowsData = values(n * d);
          await same(gpu, 'gatherRows', (be) => {
            const out = framed(be, new Float32Array(n * d), n, d);
            // ids as a row view of an i32 [n + 1, 1] tensor, as the sparse embedding passes them.
            const idt = be.rows(be.upload(Int32Array.from([0, ...idx]), [n + 1, 1], 'i32'), 1, n);
            be.gatherRows(be.upload(table, [v, d]), idt, out.view);
            return [out.whole];
          }, EXACT);
          await same(gpu, 'scatterAddRows', (be) => {
            const t = framed(be, table, v, d);
            be.scatterAddRows(be.upload(rowsData, [n, d]), be.upload(idx, [n], 'i32'), t.view);
            return [t.whole];
          }, { rel: 1e-6, abs: 1e-6 * tolScale, scale: () => n });
          const distinct = [...new Set(idx)];
          const src = values(distinct.length * d);
          await same(gpu, 'scatterRows', (be) => {
            const t = framed(be, table, v, d);
            be.scatterRows(be.upload(src, [distinct.length, d]), be.upload(Int32Array.from(distinct), [distinct.length, 1], 'i32'), t.view);
            return [t.whole];
          }, EXACT);
        }
      }
    }
  });

  it('rejects ids out of range, as the reference does', () => {
    const gpu = getBackend();
    expect(() => gpu.gatherRows(gpu.zeros([3, 2]), gpu.upload([0, 3], [2], 'i32'), gpu.zeros([2, 2]))).toThrow(/id 3 outside \[0, 3\)/);
    expect(() => gpu.scatterAddRows(gpu.zeros([2, 2]), gpu.upload([-1, 0], [2], 'i32'), gpu.zeros([3, 2]))).toThrow(/outside/);
  });

  it('rnn, lstm and gru cells, forward and backward', async () => {
    const gpu = getBackend();
    for (const B of [1, 3]) {
      for (const H of [1, 3, 17, 65]) {
        const n = B * H;
        await same(gpu, 'rnnForward', (be) => {
          const h = framed(be, values(n), B, H);
          be.rnnForward(be.upload(values(n, 3), [B, H]), h.view);
          return [h.whole];
        }, ELEM);
        await same(gpu, 'rnnBackward', (be) => {
          const d = framed(be, values(n), B, H);
          be.rnnBackward(be.upload(values(n), [B, H]), be.upload(values(n), [B, H]), d.view);
          return [d.whole];
        }, ELEM);
        // LSTM: cPrev and c are consecutive row blocks of one buffer, as in the model.
        const gatesPre = values(4 * n, 4);
        const cAll = values(2 * n, 2);
        await same(gpu, 'lstmForward', (be) => {
          const g = framed(be, gatesPre, B, 4 * H);
          const cs = be.upload(cAll, [2 * B, H]);
          const h = framed(be, new Float32Array(n), B, H);
          be.lstmForward(g.view, be.rows(cs, 0, B), be.rows(cs, B, B), h.view);
          return [g.whole, cs, h.whole];
        }, ELEM);
        const acts = values(4 * n).map((x) => (x + 1) / 2); // activations in (0, 1) (g's in [-1, 1] is fine too)
        await same(gpu, 'lstmBackward', (be) => {
          const cs = be.upload(cAll, [2 * B, H]);
          const dc = framed(be, values(n), B, H);
          const dg = framed(be, new Float32Array(4 * n), B, 4 * H);
          be.lstmBackward(be.upload(acts, [B, 4 * H]), be.rows(cs, 0, B), be.rows(cs, B, B), be.upload(values(n), [B, H]), dc.view, dg.view);
          return [dc.whole, dg.whole];
        }, ELEM);
        const xg = values(3 * n, 3);
        const hg = values(3 * n, 3);
        await same(gpu, 'gruForward', (be) => {
          const hAll = be.upload(values(2 * n), [2 * B, H]);
          const x = framed(be, xg, B, 3 * H);
          be.gruForward(x.view, be.upload(hg, [B, 3 * H]), be.rows(hAll, 0, B), be.rows(hAll, B, B));
          return [x.whole, hAll];
        }, ELEM);
        await same(gpu, 'gruBackward', (be) => {
          const dx = framed(be, new Float32Array(3 * n), B, 3 * H);
          const dhg = framed(be, new Float32Array(3 * n), B, 3 * H);
          const dhp = framed(be, new Float32Array(n), B, H);
          be.gruBackward(be.upload(acts.subarray(0, 3 * n), [B, 3 * H]), be.upload(hg, [B, 3 * H]), be.upload(values(n), [B, H]), be.upload(values(n), [B, H]), dx.view, dhg.view, dhp.view);
          return [dx.whole, dhg.whole, dhp.whole];
        }, ELEM);
      }
    }
  });

  it('softmaxCrossEntropy (separate, in place, loss only) and softmax', async () => {
    const gpu = getBackend();
    for (const n of [1, 3, 17]) {
      for (const v of [1, 3, 17, 65]) {
        const z = values(n * v, 6);
        const tg = ids(n, v);
        for (const mode of ['separate', 'in place', 'loss only'] as const) {
          await same(gpu, 'softmaxCrossEntropy', (be) => {
            const logits = framed(be, z, n, v);
            const losses = be.zeros([n]);
            const d = mode === 'separate' ? framed(be, new Float32Array(n * v), n, v) : null;
            const dTarget = mode === 'separate' ? d!.view : mode === 'in place' ? logits.view : null;
            be.softmaxCrossEntropy(logits.view, be.upload(tg, [n], 'i32'), losses, dTarget, 0.37);
            return [logits.whole, losses, ...(d ? [d.whole] : [])];
          }, ELEM);
        }
        for (const temperature of [1, 0.5, 2]) {
          await same(gpu, 'softmax', (be) => {
            const p = framed(be, new Float32Array(n * v), n, v);
            be.softmax(be.upload(z, [n, v]), p.view, temperature);
            return [p.whole];
          }, ELEM);
        }
      }
    }
  });

  it('dropout: the same mask as dropoutKeeps, in place and not', async () => {
    const gpu = getBackend();
    for (const [p, seed] of [[0.3, 987654321], [0.5, 0], [0.9, 0xffffffff], [0.05, 0x80000001]] as const) {
      for (const n of [1, 17, 4099]) {
        const x = values(n);
        for (const inPlace of [false, true]) {
          await same(gpu, 'dropout', (be) => {
            const src = framed(be, x, 1, n);
            const out = inPlace ? src : framed(be, new Float32Array(n), 1, n);
            be.dropout(src.view, out.view, p, seed);
            return [out.whole];
          }, ELEM);
        }
        const got = await gpu.read((() => {
          const ones = gpu.upload(new Float32Array(n).fill(1), [n]);
          gpu.dropout(ones, ones, p, seed);
          return ones;
        })());
        for (let i = 0; i < n; i++) expect(got[i] !== 0, `mask[${i}]`).toBe(dropoutKeeps(seed, i, p));
      }
    }
  });

  it('sumSquares', async () => {
    const gpu = getBackend();
    const ref = new ReferenceBackend('f32');
    const parts = [values(1), values(300), values(65 * 17)];
    const want = await ref.sumSquares(parts.map((d) => ref.upload(d, [d.length])));
    // As [n, 1] row views of [n + 1, 1] buffers: the first row must not count.
    const got = await gpu.sumSquares(parts.map((d) => gpu.rows(gpu.upload(Float32Array.from([3, ...d]), [d.length + 1, 1]), 1, d.length)));
    compare(`${gpu.mode} sumSquares`, [got], [want], { rel: 1e-6 * tolScale, abs: 0 });
    expect(await gpu.sumSquares([])).toBe(0);
  });

  it('adagrad (compensated accumulator exact), rmsprop, adam on row views', async () => {
    const gpu = getBackend();
    for (const r of [1, 3, 17]) {
      for (const c of [1, 17]) {
        const n = r * c;
        const p = values(n);
        const g = values(n, 2);
        // A large accumulator, where a plain float32 sum would drop g^2: the compensation matters.
        const mem = values(n).map((x) => 1e4 + 1e3 * x);
        const comp = values(n, 1e-4);
        await same(gpu, 'adagrad (memory, compensation)', (be) => {
          const pv = framed(be, p, r, c);
          const mv = framed(be, mem, r, c);
          const cv = framed(be, comp, r, c);
          be.adagrad(pv.view, be.upload(g, [r, c]), mv.view, cv.view, 0.1, 1e-8);
          return [mv.whole, cv.whole];
        }, tolScale === 1 ? EXACT : ELEM);
        await same(gpu, 'adagrad (parameters)', (be) => {
          const pv = framed(be, p, r, c);
          be.adagrad(pv.view, be.upload(g, [r, c]), be.upload(mem, [r, c]), be.upload(comp, [r, c]), 0.1, 1e-8);
          return [pv.whole];
        }, ELEM);
        const ms = values(n).map((x) => x * x);
        await same(gpu, 'rmsprop', (be) => {
          const pv = framed(be, p, r, c);
          const mv = framed(be, ms, r, c);
          be.rmsprop(pv.view, be.upload(g, [r, c]), mv.view, 2e-3, 0.95, 1e-8);
          return [pv.whole, mv.whole];
        }, ELEM);
        for (const step of [1, 7]) {
          await same(gpu, 'adam', (be) => {
            const pv = framed(be, p, r, c);
            const mv = framed(be, values(n, 0.1), r, c);
            const vv = framed(be, ms, r, c);
            be.adam(pv.view, be.upload(g, [r, c]), mv.view, vv.view, 2e-3, 0.9, 0.999, 1e-8, step);
            return [pv.whole, mv.whole, vv.whole];
          }, ELEM);
        }
      }
    }
  });
}

// ---- 2. a whole window's gradients -------------------------------------------------------------

const T = 5;
const B = 3;
const V = 11;
const H = 9;

interface Case {
  cell: CellType;
  layers: number;
  embed: number;
  dropout: number;
}


function windowSuite(getBackend: () => GpuBackend, cases: Case[], tolScale: number): void {
  for (const cs of cases) {
    const name = `${cs.cell} layers=${cs.layers} ${cs.embed ? `embed=${cs.embed}` : 'one-hot'}${cs.dropout ? ` dropout=${cs.dropout}` : ''}`;
    it(`trainStep gradients: ${name}`, async () => {
      const config: ModelConfig = { cell: cs.cell, vocabSize: V, hidden: H, layers: cs.layers, embed: cs.embed, dropout: cs.dropout };
      const r = new Random(77 + cases.indexOf(cs));
      const c = randomWindowCase(config, r, T, B, 13579);
      const want = await windowGradients(new ReferenceBackend('f64'), c);
      const got = await windowGradients(getBackend(), c);
      compare(`${getBackend().mode} window losses`, got.losses, want.losses, { rel: 2e-6 * tolScale, abs: 1e-6 * tolScale });
      want.names.forEach((pname, pi) => {
        const w = want.grads[pi];
        let max = 0;
        for (const x of w) max = Math.max(max, Math.abs(x));
        expect(max, `${pname}: the gradient is not all zero`).toBeGreaterThan(0);
        compare(`${getBackend().mode} window gradients`, got.grads[pi], w, { rel: 2e-5 * tolScale, abs: 2e-6 * tolScale, scale: () => max });
      });
    });
  }
}

const ALL_CASES: Case[] = [];
for (const cell of ['rnn', 'lstm', 'gru', 'mlstm'] as CellType[]) {
  ALL_CASES.push({ cell, layers: 1, embed: 0, dropout: 0 });
  ALL_CASES.push({ cell, layers: 2, embed: 7, dropout: 0 });
  ALL_CASES.push({ cell, layers: 2, embed: 7, dropout: 0.3 });
}

// ---- the suites ----------------------------------------------------------------------------------

describe('gpu backend, gpu.js cpu mode: every op against the reference', () => {
  const gpu = new GpuBackend({ mode: 'cpu' });
  opSuite(() => gpu, 1);
  windowSuite(() => gpu, ALL_CASES, 1);

  it('refuses tensors past float32 indexing', () => {
    expect(() => gpu.zeros([4097, 4097])).toThrow(/at most 16777216 elements/);
  });

  it('a failed kernel fails the reads after it', async () => {
    const be = new GpuBackend({ mode: 'cpu' });
    const t = be.zeros([2]);
    be.dispose(t);
    be.scale(t, 2); // a disposed tensor: fails when it runs
    await expect(be.read(be.zeros([1]))).rejects.toThrow(/after dispose/);
  });
});

let adapter: AdapterFound | null = null;
let adapterError = '';
let webgpuBackend: GpuBackend | null = null;
const probe = await probeAdapter({ allowSoftware: true });
if ('error' in probe) {
  adapterError = `${probe.error}; Mesa's llvmpipe would do: run scripts/ensure-test-packages.sh as root`;
  console.warn(`gpu backend webgpu-mode tests skipped: ${adapterError}`);
} else adapter = probe;

(adapter ? describe : describe.skip)(
  adapter ? `gpu backend, gpu.js webgpu mode on ${adapter.name}` : `gpu backend, gpu.js webgpu mode (skipped: ${adapterError})`,
  () => {
    beforeAll(() => {
      webgpuBackend = new GpuBackend({ mode: 'webgpu', adapter: adapter! });
    });
    opSuite(() => webgpuBackend!, 10);
    windowSuite(() => webgpuBackend!, ALL_CASES.filter((c) => c.layers === 2), 10);

    it('after its first call, a kernel is recorded into the shared encoder, not run by gpu.js', async () => {
      // The checks above pass either way; this one says they checked the recorded launches.
      const be = webgpuBackend!;
      const before = be.launchCounts();
      const x = be.upload([1, 2, 3], [3]);
      for (let i = 0; i < 3; i++) be.scale(x, 2);
      expect(Array.from(await be.read(x))).toEqual([8, 16, 24]);
      expect(be.launchCounts().recorded - before.recorded).toBeGreaterThanOrEqual(2);
    });
  },
);

// ---- 4. --device -----------------------------------------------------------------------------------

describe('--device selection', () => {
  const hardware = probeAdapter();
  const saved = process.env.CHARNN_WEBGPU_SOFTWARE;
  afterAll(() => {
    if (saved === undefined) delete process.env.CHARNN_WEBGPU_SOFTWARE;
    else process.env.CHARNN_WEBGPU_SOFTWARE = saved;
  });

  it('cpu: a CPU backend, no notice', async () => {
    const s = await selectBackend('ts', 'cpu');
    expect(s.backend.name).toBe('ts');
    expect(s.notice).toBeNull();
  });

  it('--backend with --device gpu is a usage error', async () => {
    await expect(selectBackend('native', 'gpu')).rejects.toMatchObject({ exitCode: 2 });
  });

  it('without a hardware adapter: gpu fails, auto falls back to the CPU', async (ctx) => {
    const probe = await hardware;
    if (!('error' in probe)) ctx.skip(); // this machine has a GPU
    delete process.env.CHARNN_WEBGPU_SOFTWARE;
    await expect(selectBackend('auto', 'gpu')).rejects.toMatchObject({ exitCode: 1, message: expect.stringMatching(/^no usable GPU: /) });
    expect((await selectBackend('ts', 'auto')).backend.name).toBe('ts');
    // The command: one line, exit 1, before it even opens the model.
    const bin = resolve(__dirname, '..', 'bin', 'charnn.js');
    const r = spawnSync(process.execPath, [bin, 'sample', '-m', 'no-such.charnn', '--device', 'gpu'], { encoding: 'utf8', env: { ...process.env, CHARNN_DEBUG: '' } });
    expect(r.status).toBe(1);
    const last = r.stderr.trim().split('\n').at(-1);
    expect(last).toMatch(/^charnn: no usable GPU: .+ \(use --device cpu\)$/);
  });

  it('CHARNN_WEBGPU_SOFTWARE=1 runs the gpu backend on a software adapter', async (ctx) => {
    if (!adapter) ctx.skip();
    process.env.CHARNN_WEBGPU_SOFTWARE = '1';
    const s = await selectBackend('auto', 'gpu');
    expect(s.backend.name).toBe('gpu');
    expect(s.notice).toMatch(/^device gpu: /);
  });
});
