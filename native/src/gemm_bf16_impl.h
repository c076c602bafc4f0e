// bf16 GEMM (AVX-512 BF16): C = alpha op(A) op(B) + beta C with op(A) and op(B) rounded to
// bfloat16 (round to nearest even, as vcvtneps2bf16 does) while they are packed, products summed
// in float32 by vdpbf16ps, and C, alpha and beta in float32. Part of gemm_impl.h, compiled only
// into the AVX-512 unit; its functions carry target("avx512bf16") so that nothing else in that
// unit can use BF16 instructions, and runtime.cc calls it only on CPUs that have them (cpuid).
//
// Layout: vdpbf16ps multiplies pairs: lane j of the result gains a[2j] b[2j] + a[2j+1] b[2j+1].
// K is therefore walked in pairs (k, k+1), each pair one 32-bit word (k in the low half), a
// zero pad past an odd K. The packed B sliver holds, per pair p, NR words (two vectors: the NR
// columns); the packed A sliver holds, per pair p, MR words (its rows), broadcast one by one. The
// blocking and the micro-tile are the float32 GEMM's, with K blocks twice as deep (half the bytes).
#if !defined(CHARNN_ISA) || CHARNN_W != 16
#error "gemm_bf16_impl.h is part of gemm_impl.h's AVX-512 build"
#endif

#define CHARNN_BF16 __attribute__((target("avx512bf16")))

// Two rows of 16 floats -> 16 words (lo[j] | hi[j] << 16), each rounded to bf16.
CHARNN_BF16 CHARNN_INLINE __m512i bf16_interleave(vf lo, vf hi) {
  const __m512i l = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh((__m512)lo));
  const __m512i h = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh((__m512)hi));
  return _mm512_or_si512(l, _mm512_slli_epi32(h, 16));
}

// 32 consecutive floats (n of them valid, the rest read as 0) -> 16 words, pair q in word q.
CHARNN_BF16 CHARNN_INLINE vf bf16_pairs(const float* p, long n) {
  const vf a = n >= W ? ld(p) : n > 0 ? ldp(p, n) : vf{};
  const vf b = n >= 2 * W ? ld(p + W) : n > W ? ldp(p + W, n - W) : vf{};
  return (vf)_mm512_cvtne2ps_pbh((__m512)b, (__m512)a);  // the second operand fills the low half
}

// Pack op(B) at depth [pc, pc+kc), columns [jc, jc+nc) into NR-wide slivers of kp = ceil(kc/2)
// pairs: dst[s*kp*NR + p*NR + jj] = pair p of column jc + s*NR + jj; zero past nc and past kc.
CHARNN_BF16 static void pack_b_bf16(const GemmArgs* g, long pc, long kc, long jc, long nc, uint32_t* dst) {
  const long kp = (kc + 1) / 2, ldb = g->ldb;
  for (long s = 0; s * NR < nc; ++s) {
    uint32_t* d = dst + s * kp * NR;
    for (long v = 0; v < NR; v += W) {
      const long j0 = jc + s * NR + v, cols = lmin(W, nc - s * NR - v);  // may be <= 0: zero columns
      if (!g->tb) {  // op(B)(k, j) = B[k * ldb + j]: two rows per pair, interleaved
        for (long p = 0; p < kp; ++p) {
          const float* r0 = g->B + (pc + 2 * p) * ldb + j0;
          const vf lo = cols <= 0 ? vf{} : ldn(r0, cols);
          const vf hi = cols <= 0 || 2 * p + 1 >= kc ? vf{} : ldn(r0 + ldb, cols);
          _mm512_storeu_si512(d + p * NR + v, bf16_interleave(lo, hi));
        }
      } else {  // op(B)(k, j) = B[j * ldb + k]: pairs are adjacent; 16 columns x 16 pairs transposed
        for (long p0 = 0; p0 < kp; p0 += W) {
          vf r[W];
          for (int t = 0; t < W; ++t)
            r[t] = t < cols ? bf16_pairs(g->B + (j0 + t) * ldb + pc + 2 * p0, kc - 2 * p0) : vf{};
          transpose(r);
          for (long q = 0; q < W && p0 + q < kp; ++q) st((float*)(d + (p0 + q) * NR + v), r[q]);
        }
      }
    }
  }
}

// Pack op(A) rows [ic, ic+r) at depth [pc, pc+kc): dst[p*MR + i] = pair p of row i, rows past r
// zero. dst needs W words of slack at the end (full-vector stores overlap the next pair).
CHARNN_BF16 static void pack_a_bf16(const GemmArgs* g, long ic, int r, long pc, long kc, uint32_t* dst) {
  const long kp = (kc + 1) / 2, lda = g->lda;
  if (g->ta) {  // op(A)(i, k) = A[k * lda + i]: two rows of A per pair, interleaved
    for (long p = 0; p < kp; ++p) {
      const float* r0 = g->A + (pc + 2 * p) * lda + ic;
      const vf lo = ldp(r0, r);
      const vf hi = 2 * p + 1 < kc ? ldp(r0 + lda, r) : vf{};
      _mm512_storeu_si512(dst + p * MR, bf16_interleave(lo, hi));
    }
    return;
  }
  // op(A)(i, k) = A[(ic + i) * lda + k]: pairs are adjacent along a row; 16 rows x 16 pairs transposed
  for (long p0 = 0; p0 < kp; p0 += W) {
    vf t[W];
    for (int i = 0; i < W; ++i) t[i] = i < r ? bf16_pairs(g->A + (ic + i) * lda + pc + 2 * p0, kc - 2 * p0) : vf{};
    transpose(t);
    for (long q = 0; q < W && p0 + q < kp; ++q) st((float*)(dst + (p0 + q) * MR), t[q]);
  }
}

template <int R, int NV>
CHARNN_BF16 __attribute__((noinline)) static void ukr_bf16(long kp, const uint32_t* __restrict a,
                                                           const uint32_t* __restrict b, float* __restrict c,
                                                           long ldc, float alpha, float beta, long cols) {
  vf c0[R], c1[R];
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i) c0[i] = c1[i] = vf{};
  for (long p = 0; p < kp; ++p) {
    const __m512bh b0 = (__m512bh)_mm512_loadu_si512(b);
    const __m512bh b1 = NV == 2 ? (__m512bh)_mm512_loadu_si512(b + W) : (__m512bh)_mm512_setzero_si512();
    b += NR;
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i) {
      const __m512bh ai = (__m512bh)_mm512_set1_epi32((int)a[i]);
      c0[i] = (vf)_mm512_dpbf16_ps((__m512)c0[i], ai, b0);
      if (NV == 2) c1[i] = (vf)_mm512_dpbf16_ps((__m512)c1[i], ai, b1);
    }
    a += MR;
  }
  store_tile<R, NV>(c0, c1, c, ldc, alpha, beta, cols);
}

template <int R = MR>
CHARNN_BF16 CHARNN_INLINE void ukr_rows_bf16(int r, long kp, const uint32_t* a, const uint32_t* b, float* c, long ldc,
                                             float alpha, float beta, long cols) {
  if (r == R) {
    if (cols > W)
      ukr_bf16<R, 2>(kp, a, b, c, ldc, alpha, beta, cols);
    else
      ukr_bf16<R, 1>(kp, a, b, c, ldc, alpha, beta, cols);
  } else if constexpr (R > 1) {
    ukr_rows_bf16<R - 1>(r, kp, a, b, c, ldc, alpha, beta, cols);
  }
}

// C[m0:m1, n0:n1] of the bf16 product; the loop nest of gemm() without its matrix-vector and
// in-place special cases (both operands are always packed: that is where they are rounded).
CHARNN_BF16 static void gemm_bf16(const GemmArgs* g, long m0, long m1, long n0, long n1) {
  if (m0 >= m1 || n0 >= n1) return;
  const long K = g->K, ldc = g->ldc;
  const float alpha = g->alpha;
  if (K == 0 || alpha == 0.0f) {
    scale_block(g->C, ldc, m0, m1, n0, n1, g->beta);
    return;
  }
  // K blocks as in gemm(), counted in bytes: a bf16 block is twice as deep for the same L2 share
  const long KC = 2 * g_kc, NCB = g_ncb;
  const long nkb = (K <= 2 * KC && K * lmin(NCB, n1 - n0) * 2 <= 786432) ? 1 : (K + KC - 1) / KC;
  long kcb = (K + nkb - 1) / nkb;
  kcb += kcb & 1;  // whole pairs in every block but the last
  const long ncMax = lmin(NCB, n1 - n0);
  uint32_t* bbuf = (uint32_t*)scratch(2, (size_t)(kcb / 2) * (size_t)((ncMax + NR - 1) / NR * NR) + 64);
  uint32_t* abuf = (uint32_t*)scratch(3, (size_t)(kcb / 2) * MR + 64);
  if (!bbuf || !abuf) {  // out of memory for packing: the float32 product (more exact, slower)
    gemm(g, m0, m1, n0, n1);
    return;
  }
  for (long jc = n0; jc < n1; jc += NCB) {
    const long nc = lmin(NCB, n1 - jc);
    for (long pc = 0; pc < K; pc += kcb) {
      const long kc = lmin(kcb, K - pc), kp = (kc + 1) / 2;
      const float beta = pc == 0 ? g->beta : 1.0f;
      pack_b_bf16(g, pc, kc, jc, nc, bbuf);
      const long msl = (m1 - m0 + MR - 1) / MR;  // row slivers of equal height, as in gemm()
      for (long sidx = 0, ic = m0; sidx < msl; ++sidx) {
        const int r = (int)((m1 - m0) * (sidx + 1) / msl - (m1 - m0) * sidx / msl);
        const long icur = ic;
        ic += r;
        pack_a_bf16(g, icur, r, pc, kc, abuf);
        float* crow = g->C + icur * ldc + jc;
        for (long jr = 0; jr < nc; jr += NR)
          ukr_rows_bf16(r, kp, abuf, bbuf + (jr / NR) * kp * NR, crow + jr, ldc, alpha, beta, lmin(NR, nc - jr));
      }
    }
  }
}

#undef CHARNN_BF16
