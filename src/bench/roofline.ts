import { cpus } from 'node:os';
import { exec } from './peers.js';

/**
 * The machine's float32 GEMM roofline: what OpenBLAS's sgemm reaches through numpy on a large
 * square product, on every core. `charnn bench --peers` measures it in the same run as the
 * configurations and reports each one's GFLOP/s as a fraction of it, the honest ceiling for
 * training arithmetic that is mostly matrix products (PyTorch's MKL is slow on AMD CPUs, so
 * beating PyTorch says little about how close to the machine charnn is).
 */

/** Square size and timed repetitions (best of) of the roofline product. */
export const ROOFLINE_SIZE = 2048;
export const ROOFLINE_REPEATS = 5;

/**
 * The Python program: one untimed product (thread start-up, page faults), then `reps` timed
 * ones; prints one JSON line with the best rate in GFLOP/s (2 n^3 per product) and numpy's version.
 */
export const ROOFLINE_SCRIPT = `
import json, sys, time
import numpy as np
n, reps = int(sys.argv[1]), int(sys.argv[2])
rng = np.random.default_rng(1)
a = rng.standard_normal((n, n), dtype=np.float32)
b = rng.standard_normal((n, n), dtype=np.float32)
c = a @ b
best = float('inf')
for _ in range(reps):
    t = time.perf_counter()
    np.matmul(a, b, out=c)
    best = min(best, time.perf_counter() - t)
print(json.dumps({"gflops": 2.0 * n ** 3 / best / 1e9, "numpy": np.__version__, "n": n, "reps": reps}))
`;

export interface Roofline {
  /** Best GFLOP/s of the float32 n x n x n product. */
  gflops: number;
  /** What measured it, e.g. "numpy 2.4.6 sgemm 2048^3, 2 threads, best of 5". */
  source: string;
}

/**
 * The environment of the roofline command: the caller's, less OPENBLAS_CORETYPE and
 * OPENBLAS_L2_SIZE (they pin OpenBLAS to a kernel or cache blocking chosen for some other CPU;
 * issue #16's 348 GFLOP/s on the 2-core Zen 5 was measured without them), with
 * OpenBLAS/OpenMP/MKL on `threads` threads (every core: the machine's limit, not one
 * configuration's).
 */
export function rooflineEnv(base: NodeJS.ProcessEnv, threads: number): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  const t = String(threads);
  return { ...env, OPENBLAS_NUM_THREADS: t, OMP_NUM_THREADS: t, MKL_NUM_THREADS: t };
}

/** Read the roofline program's JSON line (the last line with a positive finite `gflops`); null if none. */
export function parseRooflineOutput(stdout: string): { gflops: number; numpy: string } | null {
  const lines = stdout.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('{'));
  for (let i = lines.length - 1; i >= 0; i--) {
    try {
      const o = JSON.parse(lines[i]) as { gflops?: unknown; numpy?: unknown };
      if (typeof o.gflops === 'number' && Number.isFinite(o.gflops) && o.gflops > 0) {
        return { gflops: o.gflops, numpy: typeof o.numpy === 'string' ? o.numpy : '?' };
      }
    } catch {
      // not JSON: keep looking
    }
  }
  return null;
}

/**
 * Measure the roofline with `python` (numpy needed). Never throws: without Python or numpy,
 * or when the program fails, the result says why in one line, and the bench leaves the
 * roofline fields null.
 */
export async function measureRoofline(python: string, opts: { size?: number; repeats?: number; threads?: number; timeoutMs?: number } = {}): Promise<{ roofline: Roofline } | { error: string }> {
  const n = opts.size ?? ROOFLINE_SIZE;
  const reps = opts.repeats ?? ROOFLINE_REPEATS;
  const threads = opts.threads ?? cpus().length;
  let r;
  try {
    r = await exec(python, ['-c', ROOFLINE_SCRIPT, String(n), String(reps)], rooflineEnv(process.env, threads), opts.timeoutMs ?? 5 * 60_000);
  } catch (err) {
    return { error: `cannot run ${python}: ${(err as Error).message}` };
  }
  const parsed = r.code === 0 ? parseRooflineOutput(r.stdout) : null;
  if (!parsed) {
    const why = r.stderr.trim().split('\n').pop() ?? '';
    return { error: `${python} did not measure it (${r.signal ? `killed by ${r.signal}` : `exit ${r.code}`}${why ? `: ${why.slice(0, 200)}` : ''}); is numpy installed?` };
  }
  return { roofline: { gflops: parsed.gflops, source: `numpy ${parsed.numpy} sgemm ${n}^3, ${threads} thread${threads === 1 ? '' : 's'}, best of ${reps}` } };
}

/** A configuration's GFLOP/s as a fraction of the roofline's, or null without a roofline (or a rate). */
export function rooflineFraction(gflops: number, roofline: number | null): number | null {
  if (roofline === null || !(roofline > 0) || !Number.isFinite(gflops)) return null;
  return gflops / roofline;
}
