import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type Tensor, dropoutKeeps } from '../src/backend/backend.js';
import { cpu } from '../src/backend/cpu-tensor.js';
import { loadNativeBackend, nativeAddonPath, type NativeBackend } from '../src/backend/native.js';
import { ReferenceBackend } from '../src/backend/reference.js';
import { seededRandom } from './checkpoint-helpers.js';

/**
 * Every op of the native backend against the reference backend (float32) on random data, odd
 * sizes (1, 3, 17, 65, 130), every transpose combination, several alpha/beta pairs, row views as
 * arguments, and both the single-threaded and the multithreaded paths.
 *
 * Tolerances, all relative to the magnitude of what is computed:
 * - GEMM: |native - ref| <= 3e-5 * (|alpha| * sum_k |a_ik b_kj| + |beta c_ij|). Both sides
 *   accumulate in float32 (in different orders), so each is off by up to ~K ulps of that sum.
 * - sums of rows: 1e-5 * sum of |terms|; sumSquares (double on both sides): 1e-10 relative.
 * - elementwise / cells / softmax / optimisers: |native - ref| <= 1e-5 * |ref| + 1e-6 * scale,
 *   scale being the size of the op's inputs (1 for cells, |gradScale| for dLogits, lr for the
 *   parameter updates). The vector exp and sigmoid are within 2e-7 relative of libm, tanh within
 *   4e-7; the rest is float32 rounding of a handful of operations.
 * - exact: copy, fill, clip, gatherRows, scatterAddRows, addRowVector, dropout (mask and values),
 *   adagrad's Kahan-compensated accumulator and its compensation.
 *
 * The suite is skipped, with the reason, only when the addon was never built (the install
 * script reported why); an addon that was built but does not load fails the first test.
 */

const loaded = loadNativeBackend();
const addonFile = nativeAddonPath();
const built = addonFile !== null && existsSync(addonFile);
const available = 'backend' in loaded || built;
const skipReason = 'error' in loaded ? loaded.error : '';
if (!available) console.warn(`native backend tests skipped: ${skipReason}`);

const ref = new ReferenceBackend('f32');

// ---- helpers ---------------------------------------------------------------------------------

const rand = seededRandom(20240611);

function randArray(n: number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (rand() * 2 - 1) * scale;
  return a;
}

function data(t: Tensor): Float32Array {
  return cpu(t).data as Float32Array;
}

/** The same values in a reference tensor and a native one. */
function pair(nb: NativeBackend, values: ArrayLike<number>, shape: number[]): [Tensor, Tensor] {
  return [ref.upload(values, shape), nb.upload(values, shape)];
}

function expectClose(got: Float32Array, want: Float32Array, tol: (i: number) => number, what: string): void {
  expect(got.length, `${what}: length`).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    const g = got[i];
    const w = want[i];
    if (Number.isNaN(w) && Number.isNaN(g)) continue;
    const err = Math.abs(g - w);
    if (!(err <= tol(i))) {
      expect.fail(`${what}: element ${i} is ${g}, reference ${w} (|diff| ${err.toExponential(3)} > tolerance ${tol(i).toExponential(3)})`);
    }
  }
}

const relTol = (want: Float32Array, rel: number, abs: number) => (i: number) => rel * Math.abs(want[i]) + abs;

function expectExact(got: Float32Array | Int32Array, want: Float32Array | Int32Array, what: string): void {
  expect(got.length, `${what}: length`).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    if (!Object.is(got[i], want[i]) && !(got[i] === 0 && want[i] === 0)) {
      expect.fail(`${what}: element ${i} is ${got[i]}, reference ${want[i]}`);
    }
  }
}

// ---- the suite ---------------------------------------------------------------------------------

const suite = available ? describe : describe.skip;

suite(available ? 'native backend' : `native backend (skipped: ${skipReason})`, () => {
  const nb = (): NativeBackend => {
    if ('error' in loaded) throw new Error(`the native addon was built but does not load: ${loaded.error}`);
    return loaded.backend;
  };
  const threads = 'backend' in loaded ? loaded.backend.info.threads : 1;
  afterAll(() => {
    if ('backend' in loaded) loaded.backend.setThreads(threads);
  });

  it('loads, and names itself', () => {
    expect('error' in loaded ? loaded.error : null).toBeNull();
    expect(nb().name).toBe('native');
    expect(['avx512', 'avx2', 'sse2', 'neon', 'generic']).toContain(nb().info.isa);
  });

  describe('gemm', () => {
    const sizes = [1, 3, 17, 65, 130];
    const coefficients: [number, number][] = [
      [1, 0],
      [0.5, 1],
      [-1.5, 0.25],
      [0, 2],
    ];

    /** Reference result plus the magnitude each element's rounding error scales with. */
    function magnitude(transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number, a: Float32Array, b: Float32Array, beta: number, c: Float32Array): Float64Array {
      const mag = new Float64Array(M * N);
      for (let i = 0; i < M; i++) {
        for (let j = 0; j < N; j++) {
          let s = 0;
          for (let k = 0; k < K; k++) {
            const av = transA ? a[k * M + i] : a[i * K + k];
            const bv = transB ? b[j * K + k] : b[k * N + j];
            s += Math.abs(av * bv);
          }
          mag[i * N + j] = Math.abs(alpha) * s + (beta === 0 ? 0 : Math.abs(beta * c[i * N + j]));
        }
      }
      return mag;
    }

    function check(transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number, beta: number, views: boolean): void {
      const b = nb();
      const aShape = transA ? [K, M] : [M, K];
      const bShape = transB ? [N, K] : [K, N];
      const av = randArray(M * K);
      const bv = randArray(K * N);
      const cv = beta === 0 ? new Float32Array(M * N).fill(Number.NaN) : randArray(M * N);
      const [rA, nA0] = pair(b, av, aShape);
      const [rB, nB0] = pair(b, bv, bShape);
      const [rC] = pair(b, cv, [M, N]);
      let nA = nA0;
      let nB = nB0;
      let nC: Tensor;
      let bigC: Tensor | null = null;
      if (views) {
        // the operands as row blocks of larger tensors (subarray views with byte offsets)
        const pad = (rows: number, cols: number, vals: Float32Array, before: number, after: number): Tensor => {
          const big = b.upload(new Float32Array((rows + before + after) * cols).fill(7), [rows + before + after, cols]);
          data(big).set(vals, before * cols);
          return b.rows(big, before, rows);
        };
        nA = pad(aShape[0], aShape[1], av, 2, 1);
        nB = pad(bShape[0], bShape[1], bv, 1, 3);
        bigC = b.upload(new Float32Array((M + 5) * N).fill(-3), [M + 5, N]);
        data(bigC).set(cv, 3 * N);
        nC = b.rows(bigC, 3, M);
      } else {
        nC = b.upload(cv, [M, N]);
      }
      ref.gemm(transA, transB, alpha, rA, rB, beta, rC);
      b.gemm(transA, transB, alpha, nA, nB, beta, nC);
      const want = data(rC);
      const mag = magnitude(transA, transB, M, N, K, alpha, av, bv, beta, cv);
      expectClose(data(nC), want, (i) => 3e-5 * mag[i] + 1e-30, `gemm(${transA}, ${transB}) [${M},${K}]x[${K},${N}] alpha ${alpha} beta ${beta}${views ? ' (views)' : ''}`);
      if (bigC) {
        const all = data(bigC);
        for (let i = 0; i < 3 * N; i++) expect(all[i]).toBe(-3);
        for (let i = (M + 3) * N; i < all.length; i++) expect(all[i]).toBe(-3);
      }
    }

    it('matches the reference for every transpose combination, odd sizes and alpha/beta', () => {
      let n = 0;
      for (const transA of [false, true]) {
        for (const transB of [false, true]) {
          for (const M of sizes) {
            for (const N of sizes) {
              for (const K of sizes) {
                // every alpha/beta pair on a rotating subset, to keep the suite fast
                const [alpha, beta] = coefficients[n++ % coefficients.length];
                check(transA, transB, M, N, K, alpha, beta, n % 3 === 0);
              }
            }
          }
        }
      }
    });

    it('ignores NaN in C when beta is 0, and handles K = 0', () => {
      for (const [ta, tb] of [
        [false, false],
        [true, true],
      ] as const) {
        check(ta, tb, 17, 65, 3, 1, 0, false);
        check(ta, tb, 3, 5, 0, 1, 0, true);
        check(ta, tb, 3, 5, 0, 1, 0.5, false);
      }
      check(false, false, 1, 100, 100, 1, 0, false);
    });

    it('matches on the multithreaded path (large products), with 1 and with 2+ threads', () => {
      const b = nb();
      for (const t of [1, Math.max(2, threads)]) {
        b.setThreads(t);
        check(false, false, 130, 257, 130, 1, 0, false);
        check(false, true, 260, 65, 129, 0.5, 1, true);
        check(true, false, 65, 300, 260, 1, 0, false);
        check(true, true, 130, 130, 65, -1, 0.25, true);
        check(false, false, 1, 1000, 300, 1, 1, false); // a long row-vector product
        check(false, true, 1000, 1, 300, 1, 0, false); // and a column
      }
      b.setThreads(threads);
    });

    it('rejects inconsistent shapes', () => {
      const b = nb();
      expect(() => b.gemm(false, false, 1, b.zeros([2, 3]), b.zeros([4, 5]), 0, b.zeros([2, 5]))).toThrow(/gemm shapes/);
      expect(() => b.gemmPacked(false, 1, b.zeros([2, 3]), b.packMatrix(b.zeros([4, 5]), false), 0, b.zeros([2, 5]))).toThrow(/gemm shapes/);
    });

    /** A tensor holding `vals` as rows [2, 2 + rows) of a larger one (a subarray view), or on its own. */
    function placed(b: NativeBackend, vals: Float32Array, shape: number[], view: boolean): Tensor {
      if (!view) return b.upload(vals, shape);
      const big = b.upload(new Float32Array((shape[0] + 3) * shape[1]).fill(5), [shape[0] + 3, shape[1]]);
      data(big).set(vals, 2 * shape[1]);
      return b.rows(big, 2, shape[0]);
    }

    it('gemmPacked gives gemm\'s bits: every transpose, odd sizes, K blocked, views, one pack for several products, 1 and 2+ threads', () => {
      const b = nb();
      // small and odd; the per-step shapes of 2x128 LSTMs; products on the pool; K in several
      // blocks (900; 512 over 2048 columns); K <= 4 and single rows (no pack used)
      const shapes: [number, number, number][] = [[2, 3, 5], [13, 37, 29], [17, 65, 130], [50, 512, 128], [50, 128, 512], [130, 257, 130], [64, 1030, 900], [50, 2048, 512], [3, 33, 2], [1, 100, 100]];
      let n = 0;
      for (const t of [1, Math.max(2, threads)]) {
        b.setThreads(t);
        for (const [M, N, K] of shapes) {
          for (const [ta, tb] of [[false, false], [false, true], [true, false], [true, true]] as const) {
            const [alpha, beta] = coefficients[n++ % coefficients.length];
            const view = n % 2 === 0;
            const B = placed(b, randArray(K * N), tb ? [N, K] : [K, N], view);
            const packed = b.packMatrix(B, tb);
            // two products with one pack: the second reuses what the first packed
            for (let use = 0; use < 2; use++) {
              const A = placed(b, randArray(M * K), ta ? [K, M] : [M, K], view);
              const cv = beta === 0 ? new Float32Array(M * N).fill(Number.NaN) : randArray(M * N);
              const want = placed(b, cv, [M, N], false);
              const got = placed(b, cv, [M, N], view);
              b.gemm(ta, tb, alpha, A, B, beta, want);
              b.gemmPacked(ta, alpha, A, packed, beta, got);
              expectExact(data(got), data(want), `gemmPacked(${ta}, ${tb}) [${M},${K}]x[${K},${N}] alpha ${alpha} beta ${beta}, ${t} thread(s), use ${use}${view ? ' (views)' : ''}`);
            }
          }
        }
      }
      b.setThreads(threads);
      // the reference backend's pack is B itself: its gemm
      const [rA, rB, rC, rC2] = [ref.upload(randArray(15), [3, 5]), ref.upload(randArray(35), [7, 5]), ref.zeros([3, 7]), ref.zeros([3, 7])];
      ref.gemm(false, true, 1, rA, rB, 0, rC);
      ref.gemmPacked(false, 1, rA, ref.packMatrix(rB, true), 0, rC2);
      expectExact(data(rC2), data(rC), 'reference gemmPacked');
    });
  });

  describe('bf16 gemm (--precision bf16)', () => {
    const bf16 = 'backend' in loaded && loaded.backend.bf16Supported;
    if (!bf16) console.warn('bf16 gemm tests skipped: this CPU has no AVX512-BF16 (or the addon runs below AVX-512)');
    const itBf16 = bf16 ? it : it.skip;
    const word = new Float32Array(1);
    const bits = new Uint32Array(word.buffer);
    /** x rounded to bfloat16, to nearest even (finite x), as vcvtneps2bf16 does. */
    const toBf16 = (x: number): number => {
      word[0] = x;
      const v = bits[0];
      bits[0] = (((v + 0x7fff + ((v >>> 16) & 1)) >>> 16) << 16) >>> 0;
      return word[0];
    };

    itBf16('is the float64 product of the bf16-rounded inputs to float32 summation, and the float32 one to bf16 rounding', () => {
      const b16 = nb().withPrecision('bf16');
      expect(b16.gemmPrecision).toBe('bf16');
      expect(nb().gemmPrecision).toBe('fp32'); // the shared backend keeps float32
      for (const t of [1, Math.max(2, threads)]) {
        b16.setThreads(t);
        const shapes: [number, number, number][] = [[1, 1, 1], [3, 5, 7], [12, 32, 2], [13, 33, 3], [17, 65, 129], [50, 512, 128], [50, 128, 512], [1, 100, 300], [100, 1, 300], [130, 257, 130]];
        shapes.forEach(([M, N, K], n) => {
          for (const [ta, tb] of [[false, false], [false, true], [true, false], [true, true]] as const) {
            const [alpha, beta] = ([[1, 0], [0.5, 1], [-1.5, 0.25]] as const)[n % 3];
            const av = randArray(M * K);
            const bv = randArray(K * N);
            const cv = beta === 0 ? new Float32Array(M * N).fill(Number.NaN) : randArray(M * N);
            const [rA, nA] = pair(b16, av, ta ? [K, M] : [M, K]);
            const [rB, nB] = pair(b16, bv, tb ? [N, K] : [K, N]);
            const [rC, nC] = pair(b16, cv, [M, N]);
            ref.gemm(ta, tb, alpha, rA, rB, beta, rC);
            b16.gemm(ta, tb, alpha, nA, nB, beta, nC);
            const got = data(nC);
            const f32 = data(rC);
            const what = `bf16 gemm(${ta}, ${tb}) [${M},${K}]x[${K},${N}] alpha ${alpha} beta ${beta}, ${t} thread(s)`;
            for (let i = 0; i < M; i++) {
              for (let j = 0; j < N; j++) {
                let exact = 0;
                let mag = 0;
                for (let k = 0; k < K; k++) {
                  const p = toBf16(ta ? av[k * M + i] : av[i * K + k]) * toBf16(tb ? bv[j * K + k] : bv[k * N + j]);
                  exact += p;
                  mag += Math.abs(p);
                }
                const c0 = beta === 0 ? 0 : beta * cv[i * N + j];
                const scale = Math.abs(alpha) * mag + Math.abs(c0) + 1e-30;
                const g = got[i * N + j];
                // float32 sums of the rounded products: a few ulps of the magnitude
                if (!(Math.abs(g - (alpha * exact + c0)) <= 1e-5 * scale)) expect.fail(`${what}: (${i}, ${j}) is ${g}, bf16-exact ${alpha * exact + c0}`);
                // against float32 inputs: each input off by up to 2^-9 relative, a product by 2^-8
                if (!(Math.abs(g - f32[i * N + j]) <= 2 ** -7 * scale)) expect.fail(`${what}: (${i}, ${j}) is ${g}, float32 ${f32[i * N + j]}`);
              }
            }
          }
        });
      }
      b16.setThreads(threads);
    });

    itBf16('gemmPacked is the bf16 gemm (bf16 products keep packing per call)', () => {
      const b16 = nb().withPrecision('bf16');
      for (const tb of [false, true]) {
        const A = b16.upload(randArray(50 * 128), [50, 128]);
        const B = b16.upload(randArray(128 * 512), tb ? [512, 128] : [128, 512]);
        const [want, got] = [b16.zeros([50, 512]), b16.zeros([50, 512])];
        b16.gemm(false, tb, 1, A, B, 0, want);
        b16.gemmPacked(false, 1, A, b16.packMatrix(B, tb), 0, got);
        expectExact(data(got), data(want), `bf16 gemmPacked(false, ${tb})`);
      }
    });

    itBf16('train --precision bf16 trains (a falling loss) and says so; bench reports the precision', () => {
      const bin = new URL('../bin/charnn.js', import.meta.url).pathname;
      const corpus = new URL('../corpora/arithmetic.txt', import.meta.url).pathname;
      const out = join(tmpdir(), `charnn-bf16-train-${process.pid}.charnn`);
      try {
        const r = spawnSync(process.execPath, [bin, 'train', corpus, '--iters', '60', '--hidden', '32', '--batch', '8', '--seq', '16', '--seed', '1', '--precision', 'bf16', '--device', 'cpu', '--log-json', '-o', out], { encoding: 'utf8' });
        expect(r.status, r.stderr).toBe(0);
        expect(r.stderr).toMatch(/backend native \(bf16 products\)/);
        const evals = r.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { event: string; valLoss?: number }).filter((e) => e.event === 'eval');
        // 14 characters: an untrained model scores ln 14 = 2.64 nats; 60 steps learn the digits' frequencies at least
        expect(evals.length).toBe(1);
        expect(evals[0].valLoss).toBeLessThan(Math.log(14) - 0.3);
      } finally {
        rmSync(out, { force: true });
        rmSync(out.replace(/\.charnn$/, '.best.charnn'), { force: true });
      }
      const bench = spawnSync(process.execPath, [bin, 'bench', '--only', 'rnn128', '--iters', '1', '--warmup', '0', '--precision', 'bf16', '--json', '--quiet', '--corpus', corpus, '--cache-dir', tmpdir()], { encoding: 'utf8' });
      expect(bench.status, bench.stderr).toBe(0);
      expect(JSON.parse(bench.stdout).machine.precision).toBe('bf16');
    });

    it('is refused in one line on other backends, and where the CPU has no BF16', async () => {
      const { applyPrecision } = await import('../src/backend/select.js');
      const { TypeScriptBackend } = await import('../src/backend/typescript.js');
      await expect(applyPrecision(new TypeScriptBackend(), 'bf16')).rejects.toThrow(/^--precision bf16 runs on the native CPU backend only, not the ts backend$/);
      expect(await applyPrecision(nb(), 'fp32')).toBe(nb());
      // The kernels are chosen once per process: the AVX2 level (no bf16 GEMM) in a child.
      const bin = new URL('../bin/charnn.js', import.meta.url).pathname;
      const corpus = new URL('../corpora/arithmetic.txt', import.meta.url).pathname;
      const out = join(tmpdir(), `charnn-bf16-refused-${process.pid}.charnn`);
      const r = spawnSync(process.execPath, [bin, 'train', corpus, '--iters', '1', '--precision', 'bf16', '--backend', 'native', '--device', 'cpu', '-o', out], {
        env: { ...process.env, CHARNN_ISA: 'avx2' },
        encoding: 'utf8',
      });
      rmSync(out, { force: true });
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/^charnn: --precision bf16 needs a CPU with AVX512-BF16, and this one \(kernels: (avx2|sse2|neon|generic)\) has none \(use --precision fp32\)\n$/);
      const direct = spawnSync(process.execPath, ['-e', `const a = require(process.env.CHARNN_ADDON); const x = new Float32Array(1); try { a.gemmBf16(false, false, 1, 1, 1, 1, x, x, 0, x); } catch (e) { console.log(e.message); }`], {
        env: { ...process.env, CHARNN_ISA: 'avx2', CHARNN_ADDON: addonFile ?? '' },
        encoding: 'utf8',
      });
      expect(direct.stdout).toMatch(/^gemmBf16: this CPU has no AVX512-BF16/);
    });
  });

  describe('elementwise and rows', () => {
    it('fill, copy, axpy, scale (views included)', () => {
      const b = nb();
      for (const n of [1, 3, 17, 65, 130, 100003]) {
        const x = randArray(n);
        const y = randArray(n);
        const [rx, nx] = pair(b, x, [n]);
        const [ry, ny] = pair(b, y, [n]);
        ref.axpy(-0.37, rx, ry);
        b.axpy(-0.37, nx, ny);
        expectClose(data(ny), data(ry), relTol(data(ry), 1e-6, 1e-7), `axpy n=${n}`);
        ref.scale(rx, 1.7);
        b.scale(nx, 1.7);
        expectClose(data(nx), data(rx), relTol(data(rx), 1e-6, 0), `scale n=${n}`);
        b.fill(nx, 0.25);
        expect(data(nx).every((v) => v === 0.25)).toBe(true);
        b.copy(ny, nx);
        expectExact(data(nx), data(ny), `copy n=${n}`);
      }
      // a view in the middle of a matrix
      const m = b.upload(randArray(10 * 17), [10, 17]);
      const before = data(m).slice();
      b.fill(b.rows(m, 3, 4), -1);
      const after = data(m);
      for (let i = 0; i < after.length; i++) expect(after[i]).toBe(i >= 3 * 17 && i < 7 * 17 ? -1 : before[i]);
    });

    it('mul and mulBackward: exact (one float32 product per element), views and NaN included', () => {
      const b = nb();
      for (const n of [1, 3, 17, 65, 130, 100003]) {
        const x = randArray(n);
        const y = randArray(n);
        const d = randArray(n);
        if (n > 3) x[2] = NaN;
        const [rx, nx] = pair(b, x, [n]);
        const [ry, ny] = pair(b, y, [n]);
        const [rd, nd] = pair(b, d, [n]);
        const [ro, no] = pair(b, new Float32Array(n), [n]);
        ref.mul(rx, ry, ro);
        b.mul(nx, ny, no);
        expectExact(data(no), data(ro), `mul n=${n}`);
        const [rdx, ndx] = pair(b, new Float32Array(n), [n]);
        const [rdy, ndy] = pair(b, new Float32Array(n), [n]);
        ref.mulBackward(rx, ry, rd, rdx, rdy);
        b.mulBackward(nx, ny, nd, ndx, ndy);
        expectExact(data(ndx), data(rdx), `mulBackward dA n=${n}`);
        expectExact(data(ndy), data(rdy), `mulBackward dB n=${n}`);
      }
      // rows 3..6 of [10, 17] buffers: the rest is left alone
      const [m, dm] = [b.upload(randArray(10 * 17), [10, 17]), b.upload(randArray(10 * 17), [10, 17])];
      const before = data(dm).slice();
      b.mul(b.rows(m, 3, 4), b.rows(m, 0, 4), b.rows(dm, 3, 4));
      const after = data(dm);
      const mv = data(m);
      for (let i = 0; i < after.length; i++) expect(after[i]).toBe(i >= 3 * 17 && i < 7 * 17 ? Math.fround(mv[i] * mv[i - 3 * 17]) : before[i]);
      expect(() => b.mul(b.zeros([3]), b.zeros([4]), b.zeros([3]))).toThrow(/mul: sizes differ/);
    });

    it('addRowVector and sumRows', () => {
      const b = nb();
      for (const [n, m] of [
        [1, 1],
        [3, 17],
        [65, 130],
        [130, 65],
        [2500, 512],
      ]) {
        const x = randArray(n * m);
        const bias = randArray(m);
        const [rx, nx] = pair(b, x, [n, m]);
        const [rb, nbias] = pair(b, bias, [m]);
        ref.addRowVector(rx, rb);
        b.addRowVector(nx, nbias);
        expectExact(data(nx), data(rx), `addRowVector [${n},${m}]`);
        for (const acc of [false, true]) {
          const start = randArray(m);
          const [ro, no] = pair(b, start, [m]);
          ref.sumRows(rx, ro, acc);
          b.sumRows(nx, no, acc);
          const scale = new Float64Array(m);
          for (let r = 0; r < n; r++) for (let j = 0; j < m; j++) scale[j] += Math.abs(data(rx)[r * m + j]);
          expectClose(data(no), data(ro), (j) => 1e-5 * (scale[j] + Math.abs(start[j])) + 1e-7, `sumRows [${n},${m}] accumulate=${acc}`);
        }
      }
      // rows of a bigger tensor as x
      const big = b.upload(randArray(20 * 17), [20, 17]);
      const out = b.zeros([17]);
      const rout = ref.zeros([17]);
      b.sumRows(b.rows(big, 5, 9), out, false);
      ref.sumRows(ref.rows(ref.upload(data(big), [20, 17]), 5, 9), rout, false);
      expectClose(data(out), data(rout), relTol(data(rout), 1e-5, 1e-6), 'sumRows of a view');
    });

    it('gatherRows and scatterAddRows (repeated ids)', () => {
      const b = nb();
      for (const [V, D, N] of [
        [1, 1, 1],
        [65, 17, 130],
        [17, 130, 3],
        [65, 512, 2500],
      ]) {
        const table = randArray(V * D);
        const ids = new Int32Array(N);
        for (let i = 0; i < N; i++) ids[i] = Math.floor(rand() * V);
        const [rt, nt] = pair(b, table, [V, D]);
        const rIds = ref.upload(ids, [N], 'i32');
        const nIds = b.upload(ids, [N], 'i32');
        const rOut = ref.zeros([N, D]);
        const nOut = b.zeros([N, D]);
        ref.gatherRows(rt, rIds, rOut);
        b.gatherRows(nt, nIds, nOut);
        expectExact(data(nOut), data(rOut), `gatherRows V=${V} D=${D} N=${N}`);
        const dOut = randArray(N * D);
        const [rd, nd] = pair(b, dOut, [N, D]);
        ref.scatterAddRows(rd, rIds, rt);
        b.scatterAddRows(nd, nIds, nt);
        expectExact(data(nt), data(rt), `scatterAddRows V=${V} D=${D} N=${N}`);
      }
      const bad = b.upload([0, 3], [2], 'i32');
      expect(() => b.gatherRows(b.zeros([3, 2]), bad, b.zeros([2, 2]))).toThrow(/out of range/);
      expect(() => b.scatterAddRows(b.zeros([2, 2]), b.upload([-1, 0], [2], 'i32'), b.zeros([3, 2]))).toThrow(/out of range/);
    });

    it('row ops check sizes against the row width from the shape (in the addon, with the reference messages)', () => {
      const b = nb();
      // [4, 6] with a bias of 3: 24 is a multiple of 3, so only the width passed from the shape catches it
      expect(() => b.addRowVector(b.zeros([4, 6]), b.zeros([3]))).toThrow(/addRowVector: bias 3 for rows of 6/);
      expect(() => ref.addRowVector(ref.zeros([4, 6]), ref.zeros([3]))).toThrow(/addRowVector: bias 3 for rows of 6/);
      expect(() => b.sumRows(b.zeros([4, 6]), b.zeros([3]), false)).toThrow(/sumRows: out 3 for rows of 6/);
      const ids = b.upload([0, 1], [2], 'i32');
      expect(() => b.gatherRows(b.zeros([3, 2]), ids, b.zeros([2, 3]))).toThrow(/gatherRows: out shape does not match ids x row size/);
      expect(() => b.scatterAddRows(b.zeros([2, 3]), ids, b.zeros([3, 2]))).toThrow(/scatterAddRows: dOut shape does not match ids x row size/);
    });
  });

  describe('cells', () => {
    const shapes: [number, number][] = [
      [1, 1],
      [1, 100],
      [3, 17],
      [50, 128],
      [17, 65],
      [2, 130],
      [64, 512],
    ];
    const tol = (want: Float32Array) => relTol(want, 1e-5, 1e-6);

    it('rnn forward and backward', () => {
      const b = nb();
      for (const [B, H] of shapes) {
        const pre = randArray(B * H, 4);
        const [rp, np] = pair(b, pre, [B, H]);
        const rh = ref.zeros([B, H]);
        const nh = b.zeros([B, H]);
        ref.rnnForward(rp, rh);
        b.rnnForward(np, nh);
        expectClose(data(nh), data(rh), tol(data(rh)), `rnnForward [${B},${H}]`);
        const dh = randArray(B * H);
        const [rdh, ndh] = pair(b, dh, [B, H]);
        const rd = ref.zeros([B, H]);
        const nd = b.zeros([B, H]);
        ref.rnnBackward(rh, rdh, rd);
        b.rnnBackward(b.upload(data(rh), [B, H]), ndh, nd); // from the same h
        expectClose(data(nd), data(rd), tol(data(rd)), `rnnBackward [${B},${H}]`);
      }
    });

    it('lstm forward and backward (as views of time-major buffers)', () => {
      const b = nb();
      for (const [B, H] of shapes) {
        const T = 3;
        const gates = randArray(T * B * 4 * H, 3);
        const [rg, ng] = pair(b, gates, [T * B, 4 * H]);
        const cPrev = randArray(B * H, 2);
        const [rcp, ncp] = pair(b, cPrev, [B, H]);
        const rc = ref.zeros([T * B, H]);
        const nc = b.zeros([T * B, H]);
        const rh = ref.zeros([T * B, H]);
        const nh = b.zeros([T * B, H]);
        const t = 1; // step 1 of 3: rows B..2B-1
        ref.lstmForward(ref.rows(rg, t * B, B), rcp, ref.rows(rc, t * B, B), ref.rows(rh, t * B, B));
        b.lstmForward(b.rows(ng, t * B, B), ncp, b.rows(nc, t * B, B), b.rows(nh, t * B, B));
        expectClose(data(ng), data(rg), tol(data(rg)), `lstmForward gates [${B},${H}]`);
        expectClose(data(nc), data(rc), tol(data(rc)), `lstmForward c [${B},${H}]`);
        expectClose(data(nh), data(rh), tol(data(rh)), `lstmForward h [${B},${H}]`);

        // backward from the reference's activations, so that both start from the same numbers
        const acts = data(rg).slice(t * B * 4 * H, (t + 1) * B * 4 * H);
        const cVals = data(rc).slice(t * B * H, (t + 1) * B * H);
        const [ra, na] = pair(b, acts, [B, 4 * H]);
        const [rcc, ncc] = pair(b, cVals, [B, H]);
        const dh = randArray(B * H);
        const dc = randArray(B * H);
        const [rdh, ndh] = pair(b, dh, [B, H]);
        const [rdc, ndc] = pair(b, dc, [B, H]);
        const rdg = ref.zeros([B, 4 * H]);
        const ndg = b.zeros([B, 4 * H]);
        ref.lstmBackward(ra, rcp, rcc, rdh, rdc, rdg);
        b.lstmBackward(na, ncp, ncc, ndh, ndc, ndg);
        expectClose(data(ndg), data(rdg), tol(data(rdg)), `lstmBackward dGates [${B},${H}]`);
        expectClose(data(ndc), data(rdc), tol(data(rdc)), `lstmBackward dcPrev [${B},${H}]`);
      }
    });

    it('gru forward and backward', () => {
      const b = nb();
      for (const [B, H] of shapes) {
        const xg = randArray(B * 3 * H, 2);
        const hg = randArray(B * 3 * H, 2);
        const hPrev = randArray(B * H);
        const [rx, nx] = pair(b, xg, [B, 3 * H]);
        const [rhg, nhg] = pair(b, hg, [B, 3 * H]);
        const [rhp, nhp] = pair(b, hPrev, [B, H]);
        const rh = ref.zeros([B, H]);
        const nh = b.zeros([B, H]);
        ref.gruForward(rx, rhg, rhp, rh);
        b.gruForward(nx, nhg, nhp, nh);
        expectClose(data(nx), data(rx), tol(data(rx)), `gruForward gates [${B},${H}]`);
        expectClose(data(nh), data(rh), tol(data(rh)), `gruForward h [${B},${H}]`);

        const [ra, na] = pair(b, data(rx), [B, 3 * H]);
        const dh = randArray(B * H);
        const [rdh, ndh] = pair(b, dh, [B, H]);
        const outs = () => [ref.zeros([B, 3 * H]), ref.zeros([B, 3 * H]), ref.zeros([B, H])];
        const [rdx, rdhg, rdhp] = outs();
        const ndx = b.zeros([B, 3 * H]);
        const ndhg = b.zeros([B, 3 * H]);
        const ndhp = b.zeros([B, H]);
        ref.gruBackward(ra, rhg, rhp, rdh, rdx, rdhg, rdhp);
        b.gruBackward(na, nhg, nhp, ndh, ndx, ndhg, ndhp);
        expectClose(data(ndx), data(rdx), tol(data(rdx)), `gruBackward dXg [${B},${H}]`);
        expectClose(data(ndhg), data(rdhg), tol(data(rdhg)), `gruBackward dHg [${B},${H}]`);
        expectClose(data(ndhp), data(rdhp), tol(data(rdhp)), `gruBackward dhPrev [${B},${H}]`);
      }
    });

    it('propagate NaN', () => {
      const b = nb();
      const pre = b.upload([0.5, Number.NaN, -1], [1, 3]);
      const h = b.zeros([1, 3]);
      b.rnnForward(pre, h);
      expect(Number.isNaN(data(h)[1])).toBe(true);
      const gates = b.upload([Number.NaN, 0, 0, 0], [1, 4]);
      const c = b.zeros([1, 1]);
      b.lstmForward(gates, b.zeros([1, 1]), c, b.zeros([1, 1]));
      expect(Number.isNaN(data(c)[0])).toBe(true);
    });
  });

  describe('softmax', () => {
    const shapes: [number, number][] = [
      [1, 1],
      [3, 17],
      [17, 65],
      [130, 3],
      [50, 130],
      [2500, 65],
      [7, 10000],
    ];

    it('softmaxCrossEntropy: losses and gradients, separate and in place', () => {
      const b = nb();
      for (const [N, V] of shapes) {
        const logits = randArray(N * V, 8);
        const targets = new Int32Array(N);
        for (let i = 0; i < N; i++) targets[i] = Math.floor(rand() * V);
        const gradScale = 1 / N;
        const [rl, nl] = pair(b, logits, [N, V]);
        const rt = ref.upload(targets, [N], 'i32');
        const nt = b.upload(targets, [N], 'i32');
        const rLoss = ref.zeros([N]);
        const nLoss = b.zeros([N]);
        const rd = ref.zeros([N, V]);
        const nd = b.zeros([N, V]);
        ref.softmaxCrossEntropy(rl, rt, rLoss, rd, gradScale);
        b.softmaxCrossEntropy(nl, nt, nLoss, nd, gradScale);
        expectClose(data(nLoss), data(rLoss), relTol(data(rLoss), 1e-5, 1e-6), `softmaxCrossEntropy losses [${N},${V}]`);
        expectClose(data(nd), data(rd), relTol(data(rd), 1e-5, 1e-6 * gradScale), `softmaxCrossEntropy dLogits [${N},${V}]`);
        // loss only
        const nLoss2 = b.zeros([N]);
        b.softmaxCrossEntropy(nl, nt, nLoss2, null, 1);
        expectExact(data(nLoss2), data(nLoss), 'loss only');
        // in place: dLogits = logits
        b.softmaxCrossEntropy(nl, nt, nLoss2, nl, gradScale);
        expectClose(data(nl), data(rd), relTol(data(rd), 1e-5, 1e-6 * gradScale), `softmaxCrossEntropy in place [${N},${V}]`);
        expectExact(data(nLoss2), data(nLoss), 'in-place losses');
      }
    });

    it('softmaxCrossEntropy: rows as views, extreme logits, NaN', () => {
      const b = nb();
      const V = 5;
      const big = b.upload([1, 2, 3, 4, 5, 1000, -1000, 0, 0, 0, -1e30, 1e30, 0, 0, 0, 1, Number.NaN, 2, 3, 4], [4, V]);
      const rBig = ref.upload(data(big), [4, V]);
      const nLoss = b.zeros([3]);
      const rLoss = ref.zeros([3]);
      b.softmaxCrossEntropy(b.rows(big, 1, 3), b.upload([0, 1, 2], [3], 'i32'), nLoss, null, 1);
      ref.softmaxCrossEntropy(ref.rows(rBig, 1, 3), ref.upload([0, 1, 2], [3], 'i32'), rLoss, null, 1);
      expectClose(data(nLoss), data(rLoss), relTol(data(rLoss), 1e-5, 1e-6), 'extreme logits');
      expect(Number.isNaN(data(nLoss)[2])).toBe(true);
      expect(() => b.softmaxCrossEntropy(big, b.upload([0, 0, 0, 5], [4], 'i32'), b.zeros([4]), null, 1)).toThrow(/out of range/);
    });

    it('softmax with temperature', () => {
      const b = nb();
      for (const [N, V] of shapes) {
        for (const T of [1, 0.5, 1.7]) {
          const logits = randArray(N * V, 6);
          const [rl, nl] = pair(b, logits, [N, V]);
          const rp = ref.zeros([N, V]);
          const np = b.zeros([N, V]);
          ref.softmax(rl, rp, T);
          b.softmax(nl, np, T);
          expectClose(data(np), data(rp), relTol(data(rp), 1e-5, 1e-7), `softmax [${N},${V}] T=${T}`);
        }
      }
    });
  });

  describe('dropout', () => {
    it('reproduces the reference mask and values bit for bit', () => {
      const b = nb();
      for (const n of [1, 3, 17, 65, 130, 100000]) {
        for (const [p, seed] of [
          [0.5, 1],
          [0.25, 123456789],
          [0.9, 0xffffffff],
          [0, 7],
          [1, 7],
          [0.3, -5],
          [0.3, 2 ** 40 + 3],
        ]) {
          const x = randArray(n);
          const [rx, nx] = pair(b, x, [n]);
          const ro = ref.zeros([n]);
          const no = b.zeros([n]);
          ref.dropout(rx, ro, p, seed);
          b.dropout(nx, no, p, seed);
          expectExact(data(no), data(ro), `dropout n=${n} p=${p} seed=${seed}`);
          if (n === 130) {
            for (let i = 0; i < n; i++) expect(data(no)[i] !== 0).toBe(dropoutKeeps(seed, i, p));
          }
          b.dropout(nx, nx, p, seed); // in place
          expectExact(data(nx), data(ro), `dropout in place n=${n}`);
        }
      }
      // the mask index counts from the start of the tensor handed in, views included
      const big = b.upload(randArray(40), [4, 10]);
      const view = b.rows(big, 1, 2);
      const rv = ref.upload(data(view), [2, 10]);
      const rout = ref.zeros([2, 10]);
      const nout = b.zeros([2, 10]);
      ref.dropout(rv, rout, 0.5, 99);
      b.dropout(view, nout, 0.5, 99);
      expectExact(data(nout), data(rout), 'dropout of a view');
      // a non-integer seed takes the reference path
      const x = b.upload(randArray(64), [64]);
      const o1 = b.zeros([64]);
      const o2 = ref.zeros([64]);
      b.dropout(x, o1, 0.5, 1.5);
      ref.dropout(ref.upload(data(x), [64]), o2, 0.5, 1.5);
      expectExact(data(o1), data(o2), 'dropout with a fractional seed');
    });
  });

  describe('optimisation', () => {
    const sizes = [1, 3, 17, 65, 130, 70001];

    it('clip and sumSquares', async () => {
      const b = nb();
      const tensors: [Tensor, Tensor][] = [];
      for (const n of sizes) {
        const g = randArray(n, 10);
        g[0] = Number.NaN;
        const [rg, ng] = pair(b, g, [n]);
        ref.clip(rg, 5);
        b.clip(ng, 5);
        expectExact(data(ng), data(rg), `clip n=${n}`);
        const [r2, n2] = pair(b, randArray(n, 3), [n]);
        tensors.push([r2, n2]);
      }
      const want = await ref.sumSquares(tensors.map((t) => t[0]));
      const got = await b.sumSquares(tensors.map((t) => t[1]));
      expect(Math.abs(got - want)).toBeLessThanOrEqual(1e-10 * want);
      expect(await b.sumSquares([])).toBe(0);
      // views
      const big = b.upload(randArray(50, 2), [10, 5]);
      const v = b.rows(big, 2, 3);
      const wantV = await ref.sumSquares([ref.upload(data(v), [3, 5])]);
      expect(Math.abs((await b.sumSquares([v])) - wantV)).toBeLessThanOrEqual(1e-12 * wantV);
    });

    it('adagrad, rmsprop, adam', () => {
      const b = nb();
      for (const n of sizes) {
        const p = randArray(n);
        const g = randArray(n, 0.5);
        const s1 = randArray(n).map(Math.abs);
        const s2 = randArray(n).map(Math.abs);
        {
          // Kahan-compensated mem: bit-exact, over several steps from a large mem
          const [rp, np] = pair(b, p, [n]);
          const [rm, nm] = pair(b, s1.map((x) => x * 1000), [n]);
          const [rc, nc] = pair(b, new Float32Array(n), [n]);
          for (let step = 0; step < 5; step++) {
            const [rg, ng] = pair(b, randArray(n, 0.5), [n]);
            ref.adagrad(rp, rg, rm, rc, 0.1, 1e-8);
            b.adagrad(np, ng, nm, nc, 0.1, 1e-8);
          }
          expectExact(data(nm), data(rm), `adagrad mem n=${n}`);
          expectExact(data(nc), data(rc), `adagrad memComp n=${n}`);
          expectClose(data(np), data(rp), relTol(data(rp), 1e-5, 5 * 1e-6 * 0.1), `adagrad p n=${n}`);
        }
        {
          const [rp, np] = pair(b, p, [n]);
          const [rg, ng] = pair(b, g, [n]);
          const [rm, nm] = pair(b, s1, [n]);
          ref.rmsprop(rp, rg, rm, 0.002, 0.95, 1e-8);
          b.rmsprop(np, ng, nm, 0.002, 0.95, 1e-8);
          expectClose(data(nm), data(rm), relTol(data(rm), 1e-5, 1e-7), `rmsprop ms n=${n}`);
          expectClose(data(np), data(rp), relTol(data(rp), 1e-5, 1e-6 * 0.002), `rmsprop p n=${n}`);
        }
        for (const step of [1, 10, 1000]) {
          const [rp, np] = pair(b, p, [n]);
          const [rg, ng] = pair(b, g, [n]);
          const [rm, nm] = pair(b, randArray(n, 0.1), [n]);
          const [rv, nv] = pair(b, s2.map((x) => x * 0.01), [n]);
          ref.adam(rp, rg, rm, rv, 0.001, 0.9, 0.999, 1e-8, step);
          b.adam(np, ng, nm, nv, 0.001, 0.9, 0.999, 1e-8, step);
          expectClose(data(nm), data(rm), relTol(data(rm), 1e-5, 1e-7), `adam m n=${n} step=${step}`);
          expectClose(data(nv), data(rv), relTol(data(rv), 1e-5, 1e-9), `adam v n=${n} step=${step}`);
          expectClose(data(np), data(rp), relTol(data(rp), 1e-5, 1e-6 * 0.001), `adam p n=${n} step=${step}`);
        }
      }
    });
  });

  describe('vector math', () => {
    it('exp and sigmoid within 2e-7, tanh within 4e-7 relative of libm; NaN, Inf and -0 handled', () => {
      const b = nb();
      const n = 20001;
      const fns: [number, number, number, (x: number) => number, number][] = [
        [0, -87, 88.7, Math.exp, 2e-7],
        [1, -10, 10, Math.tanh, 4e-7],
        [1, -0.7, 0.7, Math.tanh, 4e-7],
        [2, -80, 80, (x) => 1 / (1 + Math.exp(-x)), 2e-7],
      ];
      for (const [fn, lo, hi, f, rel] of fns) {
        const x = new Float32Array(n);
        for (let i = 0; i < n; i++) x[i] = lo + ((hi - lo) * i) / (n - 1);
        const y = new Float32Array(n);
        b.addon.map(fn, x, y);
        expectClose(y, Float32Array.from(x, f), (i) => rel * Math.abs(f(x[i])) + 1e-38, `map ${fn} on [${lo}, ${hi}]`);
      }
      const special = Float32Array.from([Number.NaN, Infinity, -Infinity, -0, 100, -110]);
      const y = new Float32Array(special.length);
      b.addon.map(0, special, y);
      expect(Array.from(y)).toEqual([Number.NaN, Infinity, 0, 1, Infinity, 0]);
      b.addon.map(1, special, y);
      expect(Array.from(y.subarray(0, 5))).toEqual([Number.NaN, 1, -1, -0, 1]);
      b.addon.map(2, special, y);
      expect(Array.from(y)).toEqual([Number.NaN, 1, 0, 0.5, 1, 0]);
    });
  });

  describe('instruction-set fallbacks', () => {
    // The addon picks its kernels once per process, so the lower levels run in child processes.
    const script = `
      const { createRequire } = await import('node:module');
      const a = createRequire(process.cwd() + '/')(process.env.CHARNN_ADDON);
      let s = 7; const r = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32) * 2 - 1;
      const rand = (n) => Float32Array.from({ length: n }, r);
      let worst = 0, packedDiffers = 0;
      for (const [ta, tb, M, N, K] of [[0,0,17,65,130],[0,1,130,17,65],[1,0,65,130,17],[1,1,3,130,65],[0,0,1,100,100],[0,0,200,300,150]]) {
        const A = rand(M * K), B = rand(K * N), C = new Float32Array(M * N);
        a.gemm(!!ta, !!tb, M, N, K, 1, A, B, 0, C);
        // the same bits from a pre-packed B (this level's sliver width nr)
        const P = new Float32Array(K * Math.ceil(N / a.info().nr) * a.info().nr), C2 = new Float32Array(M * N);
        a.gemmPacked(!!ta, M, N, K, 1, A, !!tb, B, P, a.packB(!!tb, K, N, B, P), 0, C2);
        if (C2.some((v, i) => !Object.is(v, C[i]))) packedDiffers++;
        for (let i = 0; i < M; i++) for (let j = 0; j < N; j++) {
          let v = 0, m = 0;
          for (let k = 0; k < K; k++) { const p = (ta ? A[k * M + i] : A[i * K + k]) * (tb ? B[j * K + k] : B[k * N + j]); v += p; m += Math.abs(p); }
          worst = Math.max(worst, Math.abs(C[i * N + j] - v) / m);
        }
      }
      const x = Float32Array.from({ length: 999 }, (_, i) => (i - 499) / 25), y = new Float32Array(999);
      let mathWorst = 0;
      for (const [fn, f] of [[0, Math.exp], [1, Math.tanh], [2, (v) => 1 / (1 + Math.exp(-v))]]) {
        a.map(fn, x, y);
        for (let i = 0; i < x.length; i++) mathWorst = Math.max(mathWorst, Math.abs(y[i] - f(x[i])) / Math.abs(f(x[i]) || 1));
      }
      console.log(JSON.stringify({ isa: a.info().isa, worst, mathWorst, packedDiffers }));
    `;
    for (const isa of ['avx2', 'sse2']) {
      it(`CHARNN_ISA=${isa} computes the same`, () => {
        const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
          env: { ...process.env, CHARNN_ISA: isa, CHARNN_ADDON: addonFile ?? '' },
          encoding: 'utf8',
        });
        expect(r.status, r.stderr).toBe(0);
        const res = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as { isa: string; worst: number; mathWorst: number; packedDiffers: number };
        // a lower level is used (or the baseline, on a CPU without it)
        expect(res.isa).not.toBe('avx512');
        expect(res.worst).toBeLessThan(3e-5);
        expect(res.mathWorst).toBeLessThan(4e-7);
        expect(res.packedDiffers).toBe(0);
      });
    }
  });
});
