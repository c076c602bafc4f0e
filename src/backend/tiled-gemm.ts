/**
 * The TypeScript backend's GEMM kernel, in a module of its own because two kinds of thread run
 * it: the main thread (typescript.ts) and the GEMM workers (gemm-worker.ts), each computing
 * blocks of the same C. Both import this very code, so a block computes the same wherever it
 * runs: JavaScript arithmetic is IEEE double with no contraction into fused multiply-adds, the
 * same in every isolate.
 */

/** C = alpha * op(A) op(B) + beta * C, everything the kernel needs. */
export interface GemmProblem {
  transA: boolean;
  transB: boolean;
  /** op(A): [M, K], op(B): [K, N], C: [M, N]. */
  M: number;
  N: number;
  K: number;
  alpha: number;
  beta: number;
  /** A: [M, K] (or [K, M] transposed), B: [K, N] (or [N, K]), C: [M, N], row-major, dense. */
  a: Float32Array;
  b: Float32Array;
  c: Float32Array;
}

/** K elements per panel when A is transposed: 256 rows of A and of B, 2 x 256 cache lines. */
export const K_PANEL = 256;

/**
 * The block rows [i0, i1) x columns [j0, j1) of C, computed completely (every K panel).
 * Element (i, j) of C is summed over k = 0..K-1 in order, in a double, whatever the block
 * bounds are; the bounds are multiples of 4 (but for C's own edges) so that a block's 4x4
 * tiles are exactly the tiles of the whole-C call, and each element even runs the same line of
 * code (tile or edge loop) as when one thread computes all of C.
 */
export function gemmBlock(p: GemmProblem, i0: number, i1: number, j0: number, j1: number): void {
  const { M, N, K } = p;
  // Element (i, k) of op(A) is a[i * sai + k * sak]; (k, j) of op(B) is b[k * sbk + j * sbj].
  const [sai, sak] = p.transA ? [1, M] : [K, 1];
  const [sbk, sbj] = p.transB ? [1, K] : [N, 1];
  const a = p.a.subarray(i0 * sai);
  const b = p.b.subarray(j0 * sbj);
  const c = p.c.subarray(i0 * N + j0);
  // With A transposed (weight gradients, K = T*B) both operands step a whole row per k, a
  // new cache line each time; K is then cut into panels that stay in cache while every tile
  // of C sweeps them. After the first panel, C accumulates (beta = 1).
  const panel = p.transA ? K_PANEL : Math.max(K, 1);
  for (let k0 = 0; k0 < K || k0 === 0; k0 += panel) {
    const kn = Math.min(panel, K - k0);
    tiledGemm(i1 - i0, j1 - j0, kn, p.alpha, a.subarray(k0 * sak), sai, sak, b.subarray(k0 * sbk), sbk, sbj, k0 === 0 ? p.beta : 1, c, N);
  }
}

/**
 * C = alpha * op(A) op(B) + beta * C over strided views, in 4x4 register tiles. Each 4x4 block
 * of C is summed in 16 local variables (doubles in registers) over the whole K dimension and
 * stored once, so every value loaded from A or B feeds four multiply-adds and C is not re-read
 * and re-rounded to float32 at every k. C's rows are ldc apart.
 */
export function tiledGemm(
  M: number, N: number, K: number, alpha: number,
  a: Float32Array, sai: number, sak: number,
  b: Float32Array, sbk: number, sbj: number,
  beta: number, c: Float32Array, ldc: number,
): void {
  const M4 = M - (M % 4);
  const N4 = N - (N % 4);
  for (let i = 0; i < M4; i += 4) {
    const a0 = i * sai;
    const a1 = a0 + sai;
    const a2 = a1 + sai;
    const a3 = a2 + sai;
    for (let j = 0; j < N4; j += 4) {
      const b0 = j * sbj;
      const b1 = b0 + sbj;
      const b2 = b1 + sbj;
      const b3 = b2 + sbj;
      let s00 = 0, s01 = 0, s02 = 0, s03 = 0;
      let s10 = 0, s11 = 0, s12 = 0, s13 = 0;
      let s20 = 0, s21 = 0, s22 = 0, s23 = 0;
      let s30 = 0, s31 = 0, s32 = 0, s33 = 0;
      for (let k = 0; k < K; k++) {
        const ak = k * sak;
        const bk = k * sbk;
        const x0 = a[a0 + ak], x1 = a[a1 + ak], x2 = a[a2 + ak], x3 = a[a3 + ak];
        const y0 = b[bk + b0], y1 = b[bk + b1], y2 = b[bk + b2], y3 = b[bk + b3];
        s00 += x0 * y0; s01 += x0 * y1; s02 += x0 * y2; s03 += x0 * y3;
        s10 += x1 * y0; s11 += x1 * y1; s12 += x1 * y2; s13 += x1 * y3;
        s20 += x2 * y0; s21 += x2 * y1; s22 += x2 * y2; s23 += x2 * y3;
        s30 += x3 * y0; s31 += x3 * y1; s32 += x3 * y2; s33 += x3 * y3;
      }
      store4(c, i * ldc + j, alpha, beta, s00, s01, s02, s03);
      store4(c, (i + 1) * ldc + j, alpha, beta, s10, s11, s12, s13);
      store4(c, (i + 2) * ldc + j, alpha, beta, s20, s21, s22, s23);
      store4(c, (i + 3) * ldc + j, alpha, beta, s30, s31, s32, s33);
    }
  }
  // The right edge (columns N4..N) for the tiled rows, and the bottom rows M4..M: one dot each.
  for (let i = 0; i < M; i++) {
    for (let j = i < M4 ? N4 : 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += a[i * sai + k * sak] * b[k * sbk + j * sbj];
      const o = i * ldc + j;
      c[o] = beta === 0 ? alpha * s : alpha * s + beta * c[o];
    }
  }
}

function store4(c: Float32Array, o: number, alpha: number, beta: number, s0: number, s1: number, s2: number, s3: number): void {
  if (beta === 0) {
    // beta = 0 ignores C's old contents (NaN included), as the interface promises.
    c[o] = alpha * s0;
    c[o + 1] = alpha * s1;
    c[o + 2] = alpha * s2;
    c[o + 3] = alpha * s3;
  } else {
    c[o] = alpha * s0 + beta * c[o];
    c[o + 1] = alpha * s1 + beta * c[o + 1];
    c[o + 2] = alpha * s2 + beta * c[o + 2];
    c[o + 3] = alpha * s3 + beta * c[o + 3];
  }
}

/**
 * How a GEMM's C is cut into `parts` blocks for several threads: along its rows or its
 * columns, at multiples of 4 (whole register tiles). Part q covers [bound(q), bound(q + 1)).
 */
export interface GemmSplit {
  byRows: boolean;
  parts: number;
}

/**
 * Cut along the larger side of C, so that the operand every block reads in full is the
 * smaller one (for the per-step [50,128]x[128,512], the columns: each thread reads half of
 * the weights); the other side when the larger has fewer tiles than wanted. At most one part
 * per 4-wide tile; null when C has a single tile along both sides.
 */
export function planSplit(M: number, N: number, wantParts: number): GemmSplit | null {
  const mt = Math.ceil(M / 4);
  const nt = Math.ceil(N / 4);
  let byRows = M >= N;
  if ((byRows ? mt : nt) < wantParts && (byRows ? nt : mt) > (byRows ? mt : nt)) byRows = !byRows;
  const parts = Math.min(wantParts, byRows ? mt : nt);
  return parts >= 2 ? { byRows, parts } : null;
}

/** Where part q of `parts` starts along a side of length `len` (a multiple of 4, or len). */
export function splitBound(len: number, parts: number, q: number): number {
  const tiles = Math.ceil(len / 4);
  return Math.min(len, 4 * Math.floor((q * tiles) / parts));
}

/** Compute part q of a split of C. */
export function gemmPart(p: GemmProblem, split: GemmSplit, q: number): void {
  if (split.byRows) {
    gemmBlock(p, splitBound(p.M, split.parts, q), splitBound(p.M, split.parts, q + 1), 0, p.N);
  } else {
    gemmBlock(p, 0, p.M, splitBound(p.N, split.parts, q), splitBound(p.N, split.parts, q + 1));
  }
}
