import { type Tensor, gemmDims } from './backend.js';
import { cpu } from './cpu-tensor.js';
import { GemmPool } from './gemm-pool.js';
import { ReferenceBackend } from './reference.js';
import { type GemmProblem, gemmBlock } from './tiled-gemm.js';

/**
 * Multiply-adds from which a GEMM is split over threads. Measured on a 2-core Xeon: two threads
 * win from ~30k (a [32,32]x[32,32] product, ~40 us on one thread) when the worker is awake;
 * 65k leaves a margin for one that first has to be woken. Every per-step GEMM of a batch-50
 * model is far above ([50,128]x[128,512] is 3.3M), min-char-rnn's per-step ones (10k) below.
 */
export const PARALLEL_MACS = 65_536;

/** The process's GEMM workers, shared by every TypeScript backend (as the native addon's pool is). */
const pool = new GemmPool();

/**
 * The TypeScript backend used when the native addon is missing (`--backend ts`): the reference
 * backend with its hot spot, the GEMM, register-tiled (tiled-gemm.ts) and, when big enough,
 * split over worker threads (gemm-pool.ts). Each 4x4 block of C is summed in registers over
 * the whole K dimension and stored once, so C is not re-read and re-rounded to float32 at every
 * k as in the reference's loops. Results equal the reference's up to rounding, and are the
 * same bit for bit on any number of threads (test/backend-typescript.test.ts).
 *
 * Float tensors live in SharedArrayBuffers so that the workers can read and write them in place.
 */
export class TypeScriptBackend extends ReferenceBackend {
  override readonly name: string = 'ts';

  constructor() {
    super('f32');
  }

  /** Shared memory, which the GEMM workers read and write in place (nothing is copied to them). */
  protected override newFloatArray(n: number): Float32Array {
    return new Float32Array(new SharedArrayBuffer(4 * n));
  }

  /** The thread count, as the native backend reports it (`charnn bench` reads it). */
  get info(): { threads: number } {
    return { threads: pool.threads };
  }

  /** Threads a GEMM may use, the calling one included (1 = no workers); process-wide. */
  setThreads(n: number): number {
    return pool.setThreads(n);
  }

  /**
   * Resolves once the GEMM workers run: how many are ready. Never needed for correctness (a
   * GEMM arriving before them runs on one thread); tests await it to see the workers take part.
   */
  gemmWorkersReady(): Promise<number> {
    return pool.whenReady();
  }

  override gemm(transA: boolean, transB: boolean, alpha: number, A: Tensor, B: Tensor, beta: number, C: Tensor): void {
    const { M, N, K } = gemmDims(transA, transB, A, B, C);
    // op(A): [M, K], op(B): [K, N], C: [M, N].
    const p: GemmProblem = {
      transA, transB, M, N, K, alpha, beta,
      a: cpu(A).data as Float32Array,
      b: cpu(B).data as Float32Array,
      c: cpu(C).data as Float32Array,
    };
    // Split over threads when big enough and possible (pool.run says no otherwise, e.g. for an
    // operand outside shared memory); the same values either way.
    if (M * N * K >= PARALLEL_MACS && pool.run(p)) return;
    gemmBlock(p, 0, M, 0, N);
  }
}
