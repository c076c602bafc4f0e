import { describe, expect, it } from 'vitest';
import { cpu } from '../src/backend/cpu-tensor.js';
import { ReferenceBackend } from '../src/backend/reference.js';
import { TypeScriptBackend } from '../src/backend/typescript.js';
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
