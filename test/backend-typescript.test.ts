import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CpuTensor, cpu } from '../src/backend/cpu-tensor.js';
import { GemmPool } from '../src/backend/gemm-pool.js';
import { ReferenceBackend } from '../src/backend/reference.js';
import { type GemmProblem, gemmBlock, planSplit } from '../src/backend/tiled-gemm.js';
import { PARALLEL_MACS, TypeScriptBackend } from '../src/backend/typescript.js';
import { Random } from '../src/util/random.js';

/**
 * The register-tiled GEMM of the TypeScript backend against the reference's plain loops: every
 * transpose pair, sizes that leave tile edges (1, 3, 5, 17, 65) and K beyond one panel (300,
 * 600), alpha/beta, row views. Tolerance: float32 rounding of K-term sums, 2e-6 relative to
 * sum |alpha a b| + |beta c|.
 */
const ref = new ReferenceBackend('f32');
const ts = new TypeScriptBackend();
const rng = new Random(17);
const values = (n: number) => Float32Array.from({ length: n }, () => rng.uniform(-1, 1));

function check(tA: boolean, tB: boolean, M: number, N: number, K: number, alpha: number, beta: number, nanInC = false): void {
  const aData = values(M * K);
  const bData = values(K * N);
  const cData = values(M * N);
  if (nanInC) cData.fill(NaN);
  const run = (be: ReferenceBackend) => {
    const A = be.upload(aData, tA ? [K, M] : [M, K]);
    const B = be.upload(bData, tB ? [N, K] : [K, N]);
    // C is a view into a bigger buffer: rows outside it must stay as they were.
    const big = be.upload(new Float32Array((M + 2) * N).fill(7), [M + 2, N]);
    const C = be.rows(big, 1, M);
    be.write(C, cData);
    be.gemm(tA, tB, alpha, A, B, beta, C);
    return cpu(big).data;
  };
  const want = run(ref);
  const got = run(ts);
  for (let x = 0; x < want.length; x++) {
    const row = Math.floor(x / N) - 1;
    if (row < 0 || row >= M) {
      expect(got[x]).toBe(7);
      continue;
    }
    const tol = 2e-6 * (Math.abs(alpha) * K + Math.abs(beta) + 1);
    expect(Math.abs(got[x] - want[x]), `${tA}${tB} ${M}x${N}x${K} at ${x}: ${got[x]} vs ${want[x]}`).toBeLessThanOrEqual(tol);
  }
}

describe('TypeScript backend GEMM', () => {
  for (const tA of [false, true]) {
    for (const tB of [false, true]) {
      it(`op(A)${tA ? '^T' : ''} op(B)${tB ? '^T' : ''} matches the reference`, () => {
        for (const [M, N, K] of [[1, 1, 1], [3, 5, 17], [4, 4, 4], [17, 65, 3], [65, 17, 300], [8, 12, 600], [5, 9, 0]]) {
          check(tA, tB, M, N, K, 1, 0);
          check(tA, tB, M, N, K, -0.5, 1);
          check(tA, tB, M, N, K, 2, 0.25);
        }
      });
    }
  }

  it('beta = 0 ignores NaN in C', () => {
    check(false, false, 6, 7, 5, 1, 0, true);
    check(true, false, 6, 7, 300, 1, 0, true);
  });

  it('is what --backend ts selects', async () => {
    const { selectBackend } = await import('../src/backend/select.js');
    expect((await selectBackend('ts')).backend.name).toBe('ts');
  });
});

/**
 * The GEMM split over threads (gemm-pool.ts) against the one-thread kernel, compared bit for bit:
 * each element of C must come out of the same code in the same order whichever thread computes
 * it. The workers run the compiled dist/backend/gemm-worker.js (npm test builds it first; a
 * stale build shows up here as a mismatch).
 */
describe('TypeScript backend GEMM on worker threads', () => {
  const pool = new GemmPool(2);
  beforeAll(async () => {
    expect(await pool.whenReady()).toBe(1);
  });
  afterAll(() => pool.close());

  /** A float32 array of n values in shared memory, `offset` elements into its buffer. */
  const shared = (n: number, offset: number, fill: () => number) => {
    const x = new Float32Array(new SharedArrayBuffer(4 * (n + offset + 2))).subarray(offset, offset + n);
    for (let i = 0; i < n; i++) x[i] = fill();
    return x;
  };
  const bits = (x: Float32Array) => new Uint32Array(Float32Array.from(x).buffer);

  /** The first element where two float32 arrays differ in any bit, or -1. */
  function firstDifference(x: Float32Array, y: Float32Array): number {
    const bx = bits(x);
    const by = bits(y);
    for (let i = 0; i < bx.length; i++) if (bx[i] !== by[i]) return i;
    return bx.length === by.length ? -1 : bx.length;
  }

  it('equals the one-thread kernel bit for bit: every transpose pair, odd sizes, beta 0 and 1', () => {
    const sizes = [1, 3, 17, 65, 130];
    let split = 0;
    const workersBefore = pool.partsByWorkers;
    for (const tA of [false, true]) {
      for (const tB of [false, true]) {
        for (const M of sizes) {
          for (const N of sizes) {
            // K = 300 crosses a K panel when A is transposed.
            for (const K of [...sizes, 300]) {
              for (const [alpha, beta] of [[1, 0], [-0.75, 1]]) {
                const a = shared(M * K, 1, () => rng.uniform(-1, 1));
                const b = shared(K * N, 3, () => rng.uniform(-1, 1));
                // beta = 0 must ignore C's old contents, NaN included.
                const c0 = Float32Array.from({ length: M * N }, () => (beta === 0 ? NaN : rng.uniform(-1, 1)));
                const one: GemmProblem = { transA: tA, transB: tB, M, N, K, alpha, beta, a, b, c: shared(M * N, 5, () => 0) };
                one.c.set(c0);
                const many: GemmProblem = { ...one, c: shared(M * N, 2, () => 0) };
                many.c.set(c0);
                gemmBlock(one, 0, M, 0, N);
                const ran = pool.run(many);
                expect(ran).toBe(planSplit(M, N, 4) !== null);
                if (!ran) gemmBlock(many, 0, M, 0, N);
                else split++;
                const at = firstDifference(one.c, many.c);
                expect(at, `${tA}${tB} ${M}x${N}x${K} beta ${beta}: element ${at}: ${many.c[at]} on two threads, ${one.c[at]} on one`).toBe(-1);
                // The views' neighbours in the shared buffer stay untouched.
                const whole = new Float32Array(many.c.buffer);
                expect([whole[1], whole[2 + M * N]]).toEqual([0, 0]);
              }
            }
          }
        }
      }
    }
    expect(split).toBeGreaterThan(500);
    expect(pool.partsByWorkers - workersBefore, 'parts the worker computed').toBeGreaterThan(0);
  });

  it('leaves C to the caller when it cannot split it', () => {
    const p = (a: Float32Array, c: Float32Array): GemmProblem => ({ transA: false, transB: false, M: 8, N: 8, K: 8, alpha: 1, beta: 0, a, b: shared(64, 0, () => 1), c });
    // C with a single 4-wide tile on both sides.
    expect(pool.run({ ...p(shared(64, 0, () => 1), shared(64, 0, () => 0)), M: 4, N: 4, K: 16 })).toBe(false);
    // An operand outside shared memory.
    const plain = p(new Float32Array(64).fill(1), shared(64, 0, () => 0));
    expect(pool.run(plain)).toBe(false);
    expect(plain.c[0]).toBe(0);
    // One thread wanted.
    const single = new GemmPool(1);
    expect(single.run(p(shared(64, 0, () => 1), shared(64, 0, () => 0)))).toBe(false);
  });

  it('the backend splits GEMMs above PARALLEL_MACS with the same results as one thread', async () => {
    const be = new TypeScriptBackend();
    const A0 = be.upload(values(50 * 128), [50, 128]);
    const B0 = be.upload(values(128 * 512), [128, 512]);
    expect(cpu(A0).data.buffer).toBeInstanceOf(SharedArrayBuffer);
    // The workers start with the first GEMM that could use them; later ones use them.
    be.gemm(false, false, 1, A0, B0, 0, be.zeros([50, 512]));
    expect(await be.gemmWorkersReady()).toBe(be.info.threads - 1);
    for (const [M, N, K] of [[50, 512, 128], [130, 65, 17], [3, 130, 600], [17, 65, 3], [1, 130, 130]]) {
      for (const [tA, tB, beta] of [[false, false, 1], [true, false, 0], [false, true, 1], [true, true, 0]] as const) {
        const aData = values(M * K);
        const bData = values(K * N);
        const cData = values(M * N);
        const A = be.upload(aData, tA ? [K, M] : [M, K]);
        const B = be.upload(bData, tB ? [N, K] : [K, N]);
        const C = be.rows(be.upload(new Float32Array((M + 1) * N), [M + 1, N]), 1, M);
        be.write(C, cData);
        be.gemm(tA, tB, 0.5, A, B, beta, C);
        // The one-thread kernel on ordinary (unshared) copies.
        const want: GemmProblem = { transA: tA, transB: tB, M, N, K, alpha: 0.5, beta, a: aData, b: bData, c: Float32Array.from(cData) };
        gemmBlock(want, 0, M, 0, N);
        expect(firstDifference(want.c, cpu(C).data as Float32Array), `${tA}${tB} ${M}x${N}x${K} (${M * N * K >= PARALLEL_MACS ? 'above' : 'below'} the threshold)`).toBe(-1);
      }
    }
  });

  it('computes with operands outside shared memory (one thread), and reads back unshared copies', async () => {
    const be = new TypeScriptBackend();
    const aData = values(64 * 64);
    const bData = values(64 * 64);
    const A = new CpuTensor(Float32Array.from(aData), [64, 64], 'f32');
    const B = be.upload(bData, [64, 64]);
    const C = be.zeros([64, 64]);
    be.gemm(false, false, 1, A, B, 0, C);
    const want: GemmProblem = { transA: false, transB: false, M: 64, N: 64, K: 64, alpha: 1, beta: 0, a: aData, b: bData, c: new Float32Array(64 * 64) };
    gemmBlock(want, 0, 64, 0, 64);
    expect(firstDifference(want.c, cpu(C).data as Float32Array)).toBe(-1);
    const back = await be.read(C);
    expect(back.buffer).toBeInstanceOf(ArrayBuffer);
    expect(back.buffer).not.toBeInstanceOf(SharedArrayBuffer);
  });
});
