// GEMM of the kernel table: packing, the register-tile micro-kernel, the matrix-vector special
// cases and the blocked driver. Part of kernels_impl.h (included from it, inside the ISA's
// namespace, after simd.h and the ldn/stn helpers); not a header of its own.
#if !defined(CHARNN_ISA)
#error "gemm_impl.h is part of kernels_impl.h; include that instead"
#endif

// =============================================================================================
// GEMM
//
// Row-major C[M,N] = alpha op(A)[M,K] op(B)[K,N] + beta C, BLIS-style but transposed to suit
// row-major storage: the micro-kernel keeps an MR x NR tile of C in registers (NR = two vectors),
// broadcasts MR values of op(A) per k and multiplies them with two vectors of op(B)'s row k.
// Loop nest (outer to inner): N in NCB blocks, K in KC blocks (B block KC x NCB stays in L2),
// M in slivers of at most MR rows (the packed A sliver, KC x MR, stays in L1), N in NR slivers
// (packed B, streamed from L2). The last sliver of a ragged N uses a one-vector kernel when it
// is at most W wide; row slivers have equal heights (50 rows: 5 x 10, not 4 x 12 + 2).
//
// Both operands are packed into contiguous, zero-padded slivers: B rows are copied, B^T, A
// (rows) are transposed W x W in registers, A^T is copied. Measured on the AVX-512 Xeon, packing
// beats reading in place for every shape charnn runs, even [50,128]x[128,512] (in-place B rows
// with a 2 KB stride thrash L1 sets and TLB). The micro-kernel can still read in place (the
// `tune` flags), for experiments. matrix-vector shapes and rank-K updates with K <= 4 skip all
// this (gemv_axpy / gemv_dot).
//
// A B used for many products (the recurrent weights, once per time step) can be packed once,
// whole (pack_b, the addon's packB), and handed in as GemmArgs::Bp: the driver then reads its
// slivers instead of packing B. They are the slivers it would have packed, K blocked the same
// way (k_block), so the sums and their order, and the bits, are the same.
// =============================================================================================

#if CHARNN_W == 16
constexpr int MR = 12;  // 24 accumulators + 2 B vectors + broadcast: 27 of 32 zmm registers
#else
constexpr int MR = 6;  // 12 accumulators + 2 B vectors + broadcast: 15 of 16 registers
#endif
constexpr int NR = 2 * W;
// Blocking, adjustable through the table's `tune` entry (the addon's tune(kc, ncb, flags)):
// KC: depth of a K block; NCB: columns of a B block (KC x NCB floats should sit in L2);
// flags: which operands get packed (contiguous slivers) rather than read in place.
enum { PACK_A_N = 1, PACK_A_T = 2, PACK_B_N = 4 };
static long g_kc = 256, g_ncb = 512;
static int g_flags = PACK_A_N | PACK_A_T | PACK_B_N;

// C tile (R rows, `cols` <= NR columns at c, row stride ldc) = alpha * (c0 | c1) + beta * C
// (C not read when beta == 0): the micro-kernels' epilogue.
template <int R, int NV>
CHARNN_INLINE void store_tile(const vf (&c0)[R], const vf (&c1)[R], float* c, long ldc, float alpha, float beta,
                              long cols) {
  const vf va = splat(alpha), vb = splat(beta);
  if (NV == 2 && cols == NR) {
    if (beta == 0.0f) {
#pragma GCC unroll 16
      for (int i = 0; i < R; ++i) {
        st(c + i * ldc, va * c0[i]);
        st(c + i * ldc + W, va * c1[i]);
      }
    } else {
#pragma GCC unroll 16
      for (int i = 0; i < R; ++i) {
        float* ci = c + i * ldc;
        st(ci, va * c0[i] + vb * ld(ci));
        st(ci + W, va * c1[i] + vb * ld(ci + W));
      }
    }
  } else {
    long n0 = lmin(cols, W), n1 = cols - n0;
    for (int i = 0; i < R; ++i) {
      float* ci = c + i * ldc;
      vf r0 = va * c0[i], r1 = va * c1[i];
      if (beta != 0.0f) {
        r0 += vb * ldn(ci, n0);
        if (n1 > 0) r1 += vb * ldn(ci + W, n1);
      }
      stn(ci, r0, n0);
      if (n1 > 0) stn(ci + W, r1, n1);
    }
  }
}

// A access: AMODE 0: element (i, k) at a[i * as + k] (row-major A); AMODE 1: a[k * as + i].
// NV: vectors per row of the tile (2; 1 for a last sliver at most W columns wide)
template <int R, int AMODE, int NV>
__attribute__((noinline)) static void ukr(long kc, const float* __restrict a, long as,
                                          const float* __restrict b, long bs, float* __restrict c,
                                          long ldc, float alpha, float beta, long cols) {
  vf c0[R], c1[R];
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i) c0[i] = c1[i] = vf{};
  if (AMODE == 0) {
    const float* ap[R];
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i) ap[i] = a + i * as;
    for (long k = 0; k < kc; ++k) {
      vf b0 = ld(b), b1 = NV == 2 ? ld(b + W) : vf{};
      b += bs;
#pragma GCC unroll 16
      for (int i = 0; i < R; ++i) {
        vf ai = splat(ap[i][k]);
        c0[i] += ai * b0;
        if (NV == 2) c1[i] += ai * b1;
      }
    }
  } else {
    for (long k = 0; k < kc; ++k) {
      vf b0 = ld(b), b1 = NV == 2 ? ld(b + W) : vf{};
      b += bs;
#pragma GCC unroll 16
      for (int i = 0; i < R; ++i) {
        vf ai = splat(a[i]);
        c0[i] += ai * b0;
        if (NV == 2) c1[i] += ai * b1;
      }
      a += as;
    }
  }
  store_tile<R, NV>(c0, c1, c, ldc, alpha, beta, cols);
}

template <int AMODE, int R = MR>
CHARNN_INLINE void ukr_rows(int r, long kc, const float* a, long as, const float* b, long bs, float* c, long ldc,
                            float alpha, float beta, long cols) {
  if (r == R) {
    if (cols > W)
      ukr<R, AMODE, 2>(kc, a, as, b, bs, c, ldc, alpha, beta, cols);
    else
      ukr<R, AMODE, 1>(kc, a, as, b, bs, c, ldc, alpha, beta, cols);
  } else if constexpr (R > 1) {
    ukr_rows<AMODE, R - 1>(r, kc, a, as, b, bs, c, ldc, alpha, beta, cols);
  }
}

// ---- W x W in-register transpose (rows r[0..W) -> columns) ---------------------------------
CHARNN_INLINE void transpose(vf (&r)[W]) {
#if CHARNN_W == 16
  __m512 t[16], u[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps((__m512)r[2 * i], (__m512)r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps((__m512)r[2 * i], (__m512)r[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {
    u[4 * i + 0] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
    u[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
    u[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
    u[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
  }
  for (int c = 0; c < 4; ++c) {
    __m512 v0 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x88);
    __m512 v1 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xDD);
    __m512 v2 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x88);
    __m512 v3 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xDD);
    r[c] = (vf)_mm512_shuffle_f32x4(v0, v2, 0x88);
    r[8 + c] = (vf)_mm512_shuffle_f32x4(v0, v2, 0xDD);
    r[4 + c] = (vf)_mm512_shuffle_f32x4(v1, v3, 0x88);
    r[12 + c] = (vf)_mm512_shuffle_f32x4(v1, v3, 0xDD);
  }
#elif CHARNN_W == 8
  __m256 t[8], u[8];
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_ps((__m256)r[2 * i], (__m256)r[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_ps((__m256)r[2 * i], (__m256)r[2 * i + 1]);
  }
  for (int i = 0; i < 2; ++i) {
    u[4 * i + 0] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
    u[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
    u[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
    u[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
  }
  for (int c = 0; c < 4; ++c) {
    r[c] = (vf)_mm256_permute2f128_ps(u[c], u[4 + c], 0x20);
    r[4 + c] = (vf)_mm256_permute2f128_ps(u[c], u[4 + c], 0x31);
  }
#elif defined(__SSE2__)
  __m128 a = (__m128)r[0], b = (__m128)r[1], c = (__m128)r[2], d = (__m128)r[3];
  _MM_TRANSPOSE4_PS(a, b, c, d);
  r[0] = (vf)a;
  r[1] = (vf)b;
  r[2] = (vf)c;
  r[3] = (vf)d;
#else
  float t[W][W];
  for (int i = 0; i < W; ++i)
    for (int j = 0; j < W; ++j) t[j][i] = r[i][j];
  for (int i = 0; i < W; ++i) r[i] = ld(t[i]);
#endif
}

// Pack op(B) = B^T for k in [pc, pc+kc), j in [jc, jc+nc) into NR-wide slivers:
// dst[s*kc*NR + k*NR + jj] = B[(jc + s*NR + jj) * ldb + pc + k], zero padded past nc.
static void pack_bt(const float* B, long ldb, long pc, long kc, long jc, long nc, float* dst) {
  for (long s = 0; s * NR < nc; ++s) {
    const long j0 = jc + s * NR, cols = lmin(NR, nc - s * NR);
    float* d = dst + s * kc * NR;
    for (long jb = 0; jb < NR; jb += W) {
      if (jb + W <= cols) {
        const float* src = B + (j0 + jb) * ldb + pc;
        long k = 0;
        for (; k + W <= kc; k += W) {
          vf r[W];
          for (int t = 0; t < W; ++t) r[t] = ld(src + t * ldb + k);
          transpose(r);
          for (int t = 0; t < W; ++t) st(d + (k + t) * NR + jb, r[t]);
        }
        for (; k < kc; ++k)
          for (int t = 0; t < W; ++t) d[k * NR + jb + t] = src[t * ldb + k];
      } else {
        for (long k = 0; k < kc; ++k)
          for (long t = 0; t < W; ++t) d[k * NR + jb + t] = jb + t < cols ? B[(j0 + jb + t) * ldb + pc + k] : 0.0f;
      }
    }
  }
}

// Pack op(B) = B (rows contiguous along N) the same way: dst[s*kc*NR + k*NR + jj] =
// B[(pc + k) * ldb + jc + s*NR + jj], zero padded past nc.
static void pack_b_rows(const float* B, long ldb, long pc, long kc, long jc, long nc, float* dst) {
  const long full = nc / NR, tail = nc - full * NR;
  const long n0 = lmin(tail, W), n1 = tail - n0;
  for (long k = 0; k < kc; ++k) {
    const float* src = B + (pc + k) * ldb + jc;
    float* d = dst + k * NR;
    for (long s = 0; s < full; ++s) {
      st(d + s * kc * NR, ld(src + s * NR));
      st(d + s * kc * NR + W, ld(src + s * NR + W));
    }
    if (tail) {
      float* dt = d + full * kc * NR;
      st(dt, ldn(src + full * NR, n0));
      st(dt + W, n1 > 0 ? ldn(src + full * NR + W, n1) : vf{});
    }
  }
}

// Pack the MR x kc sliver of op(A) at rows [ic, ic+r), depth [pc, pc+kc): dst[k*MR + i], rows
// past r zero. dst needs W floats of slack at the end (full-vector stores overlap the next k).
static void pack_a(const GemmArgs* g, long ic, int r, long pc, long kc, float* dst) {
  const long lda = g->lda;
  if (g->ta) {  // op(A)(i, k) = A[k * lda + i]: MR contiguous floats per k
    const float* src = g->A + pc * lda + ic;
    if (MR <= W) {
      for (long k = 0; k < kc; ++k) st(dst + k * MR, ldp(src + k * lda, r));
    } else {
      for (long k = 0; k < kc; ++k)
        for (int i = 0; i < MR; ++i) dst[k * MR + i] = i < r ? src[k * lda + i] : 0.0f;
    }
    return;
  }
  // op(A)(i, k) = A[(ic + i) * lda + k]: rows of A, transposed W x W at a time
  const float* src = g->A + ic * lda + pc;
  long k = 0;
  if (MR <= W) {
    for (; k + W <= kc; k += W) {
      vf t[W];
      for (int i = 0; i < W; ++i) t[i] = i < r ? ld(src + i * lda + k) : vf{};
      transpose(t);
      for (int kk = 0; kk < W; ++kk) st(dst + (k + kk) * MR, t[kk]);
    }
  }
  for (; k < kc; ++k)
    for (int i = 0; i < MR; ++i) dst[k * MR + i] = i < r ? src[i * lda + k] : 0.0f;
}

// ---- matrix-vector special cases (M == 1 or N == 1): no packing, enough accumulators --------

// y[0..n) = alpha * sum_k x[k*xs] * R[k*rs + 0..n) + beta * y   (y contiguous)
template <int NV, bool PART>
static void gemv_axpy_block(const float* R, long rs, long K, const float* x, long xs, float* y, float alpha,
                            float beta, long last) {
  vf acc[NV];
#pragma GCC unroll 8
  for (int v = 0; v < NV; ++v) acc[v] = vf{};
  for (long k = 0; k < K; ++k) {
    const vf xk = splat(x[k * xs]);
    const float* r = R + k * rs;
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) {
      vf b = (PART && v == NV - 1) ? ldp(r + v * W, last) : ld(r + v * W);
      acc[v] += xk * b;
    }
  }
  const vf va = splat(alpha), vb = splat(beta);
#pragma GCC unroll 8
  for (int v = 0; v < NV; ++v) {
    const long n = (PART && v == NV - 1) ? last : W;
    vf res = va * acc[v];
    if (beta != 0.0f) res += vb * ldn(y + v * W, n);
    stn(y + v * W, res, n);
  }
}

template <int NV = 8>
CHARNN_INLINE void gemv_axpy_rest(int nv, bool part, const float* R, long rs, long K, const float* x, long xs,
                                  float* y, float alpha, float beta, long last) {
  if (nv == NV) {
    if (part)
      gemv_axpy_block<NV, true>(R, rs, K, x, xs, y, alpha, beta, last);
    else
      gemv_axpy_block<NV, false>(R, rs, K, x, xs, y, alpha, beta, last);
  } else if constexpr (NV > 1) {
    gemv_axpy_rest<NV - 1>(nv, part, R, rs, K, x, xs, y, alpha, beta, last);
  }
}

static void gemv_axpy(const float* R, long rs, long K, const float* x, long xs, long n, float* y, float alpha,
                      float beta) {
  long j = 0;
  for (; j + 8 * W <= n; j += 8 * W) gemv_axpy_block<8, false>(R + j, rs, K, x, xs, y + j, alpha, beta, W);
  const long rem = n - j;
  if (rem > 0) {
    const long full = rem / W, last = rem % W;
    if (last)
      gemv_axpy_rest((int)full + 1, true, R + j, rs, K, x, xs, y + j, alpha, beta, last);
    else
      gemv_axpy_rest((int)full, false, R + j, rs, K, x, xs, y + j, alpha, beta, W);
  }
}

// y[i*ys] = alpha * dot(R[i*rs + 0..K), x[0..K)) + beta * y[i*ys] for i in [0, rows)
static void gemv_dot(const float* R, long rs, long K, const float* x, long rows, float* y, long ys, float alpha,
                     float beta) {
  long i = 0;
  for (; i + 4 <= rows; i += 4) {
    const float* r0 = R + i * rs;
    const float* r1 = r0 + rs;
    const float* r2 = r1 + rs;
    const float* r3 = r2 + rs;
    vf a0 = {}, a1 = {}, a2 = {}, a3 = {}, b0 = {}, b1 = {}, b2 = {}, b3 = {};
    long k = 0;
    for (; k + 2 * W <= K; k += 2 * W) {
      vf x0 = ld(x + k), x1 = ld(x + k + W);
      a0 += ld(r0 + k) * x0;
      a1 += ld(r1 + k) * x0;
      a2 += ld(r2 + k) * x0;
      a3 += ld(r3 + k) * x0;
      b0 += ld(r0 + k + W) * x1;
      b1 += ld(r1 + k + W) * x1;
      b2 += ld(r2 + k + W) * x1;
      b3 += ld(r3 + k + W) * x1;
    }
    for (; k < K; k += W) {
      const long n = lmin(W, K - k);
      vf x0 = ldn(x + k, n);
      a0 += ldn(r0 + k, n) * x0;
      a1 += ldn(r1 + k, n) * x0;
      a2 += ldn(r2 + k, n) * x0;
      a3 += ldn(r3 + k, n) * x0;
    }
    const float s[4] = {hsum(a0 + b0), hsum(a1 + b1), hsum(a2 + b2), hsum(a3 + b3)};
    for (int t = 0; t < 4; ++t) {
      float* yt = y + (i + t) * ys;
      *yt = beta == 0.0f ? alpha * s[t] : alpha * s[t] + beta * *yt;
    }
  }
  for (; i < rows; ++i) {
    const float* r0 = R + i * rs;
    vf a0 = {}, b0 = {};
    long k = 0;
    for (; k + 2 * W <= K; k += 2 * W) {
      a0 += ld(r0 + k) * ld(x + k);
      b0 += ld(r0 + k + W) * ld(x + k + W);
    }
    for (; k < K; k += W) {
      const long n = lmin(W, K - k);
      a0 += ldn(r0 + k, n) * ldn(x + k, n);
    }
    const float s = hsum(a0 + b0);
    float* yt = y + i * ys;
    *yt = beta == 0.0f ? alpha * s : alpha * s + beta * *yt;
  }
}

static void scale_block(float* C, long ldc, long m0, long m1, long n0, long n1, float beta) {
  for (long i = m0; i < m1; ++i) {
    float* c = C + i * ldc;
    for (long j = n0; j < n1; j += W) {
      const long n = lmin(W, n1 - j);
      stn(c + j, beta == 0.0f ? vf{} : splat(beta) * ldn(c + j, n), n);
    }
  }
}

// The K block depth of a product over `ncols` columns: all of K when the B block (K x
// min(NCB, ncols) floats) fits in ~768 KB of L2, else balanced blocks of at most KC. The
// blocking decides the order of the float sums, so pack_b must choose as the driver does.
static long k_block(long K, long ncols) {
  const long nkb = (K <= 2 * g_kc && K * lmin(g_ncb, ncols) * 4 <= 786432) ? 1 : (K + g_kc - 1) / g_kc;
  return (K + nkb - 1) / nkb;
}

static void gemm(const GemmArgs* g, long m0, long m1, long n0, long n1) {
  if (m0 >= m1 || n0 >= n1) return;
  const long K = g->K, lda = g->lda, ldb = g->ldb, ldc = g->ldc;
  const float alpha = g->alpha;
  if (K == 0 || alpha == 0.0f) {
    scale_block(g->C, ldc, m0, m1, n0, n1, g->beta);
    return;
  }
  // matrix-vector shapes: op(A) is one row / op(B) one column, both contiguous when ld is tight
  if (g->M == 1 && (!g->ta || lda == 1)) {
    const float* x = g->A;
    if (!g->tb)
      gemv_axpy(g->B + n0, ldb, K, x, 1, n1 - n0, g->C + n0, alpha, g->beta);
    else
      gemv_dot(g->B + n0 * ldb, ldb, K, x, n1 - n0, g->C + n0, 1, alpha, g->beta);
    return;
  }
  if (g->N == 1 && (g->tb || ldb == 1) && ldc == 1) {
    const float* x = g->B;
    if (!g->ta)
      gemv_dot(g->A + m0 * lda, lda, K, x, m1 - m0, g->C + m0, 1, alpha, g->beta);
    else
      gemv_axpy(g->A + m0, lda, K, x, 1, m1 - m0, g->C + m0, alpha, g->beta);
    return;
  }

  const long NCB = g_ncb;
  // a rank-K update with small K (outer products): row by row, nothing to pack
  if (K <= 4 && !g->tb) {
    for (long i = m0; i < m1; ++i) {
      const float* x = g->ta ? g->A + i : g->A + i * lda;
      gemv_axpy(g->B + n0, ldb, K, x, g->ta ? lda : 1, n1 - n0, g->C + i * ldc + n0, alpha, g->beta);
    }
    return;
  }

  const long kcb = k_block(K, n1 - n0);
  // a pre-packed B (pack_b) holds the same slivers this call would pack, when K is blocked alike
  const bool prepacked = g->Bp && g->bkc == kcb;
  const long npad = (g->N + NR - 1) / NR * NR;  // its sliver row: all N columns, zero padded
  const bool packA = g->ta ? (g_flags & PACK_A_T) != 0 : (g_flags & PACK_A_N) != 0;
  const bool packB = prepacked || g->tb || (g_flags & PACK_B_N) != 0;
  const long ncMax = lmin(NCB, n1 - n0);
  float* bbuf = prepacked ? nullptr : scratch(0, (size_t)kcb * (size_t)((ncMax + NR - 1) / NR * NR) + 64);
  float* abuf = packA ? scratch(1, (size_t)kcb * MR + 64) : nullptr;
  if ((!prepacked && !bbuf) || (packA && !abuf)) {
    // out of memory for packing: slow but correct
    for (long i = m0; i < m1; ++i)
      for (long j = n0; j < n1; ++j) {
        double acc = 0;
        for (long k = 0; k < K; ++k)
          acc += (double)(g->ta ? g->A[k * lda + i] : g->A[i * lda + k]) *
                 (double)(g->tb ? g->B[j * ldb + k] : g->B[k * ldb + j]);
        float* c = g->C + i * ldc + j;
        *c = g->beta == 0.0f ? alpha * (float)acc : alpha * (float)acc + g->beta * *c;
      }
    return;
  }

  for (long jc = n0; jc < n1; jc += NCB) {
    const long nc = lmin(NCB, n1 - jc);
    const long tailcols = nc % NR, tailj = nc - tailcols;
    for (long pc = 0; pc < K; pc += kcb) {
      const long kc = lmin(kcb, K - pc);
      const float beta = pc == 0 ? g->beta : 1.0f;
      const float* bblk = g->B + pc * ldb + jc;
      // jc is a multiple of NR (n0 is, as run_gemm splits by whole slivers, and NCB is)
      const float* bpre = prepacked ? g->Bp + pc * npad + jc * kc : nullptr;
      if (prepacked)
        ;  // the slivers are in bpre
      else if (g->tb)
        pack_bt(g->B, ldb, pc, kc, jc, nc, bbuf);
      else if (packB)
        pack_b_rows(g->B, ldb, pc, kc, jc, nc, bbuf);
      else if (tailcols)  // only the ragged last sliver
        pack_b_rows(g->B, ldb, pc, kc, jc + tailj, tailcols, bbuf);
      // rows in slivers of equal height (50 = 5 x 10 rather than 4 x 12 + 2: a 2-row sliver has
      // too few accumulators to hide the FMA latency and runs at a third of the speed)
      const long msl = (m1 - m0 + MR - 1) / MR;
      for (long sidx = 0, ic = m0; sidx < msl; ++sidx) {
        const int r = (int)((m1 - m0) * (sidx + 1) / msl - (m1 - m0) * sidx / msl);
        const long icur = ic;
        ic += r;
        float* crow = g->C + icur * ldc + jc;
        if (packA) pack_a(g, icur, r, pc, kc, abuf);
        for (long jr = 0; jr < nc; jr += NR) {
          const long cols = lmin(NR, nc - jr);
          const float* bp;
          long bs;
          if (prepacked) {
            bp = bpre + jr * kc;
            bs = NR;
          } else if (packB) {
            bp = bbuf + (jr / NR) * kc * NR;
            bs = NR;
          } else if (cols == NR) {
            bp = bblk + jr;
            bs = ldb;
          } else {
            bp = bbuf;
            bs = NR;
          }
          if (packA)
            ukr_rows<1>(r, kc, abuf, MR, bp, bs, crow + jr, ldc, alpha, beta, cols);
          else if (!g->ta)
            ukr_rows<0>(r, kc, g->A + icur * lda + pc, lda, bp, bs, crow + jr, ldc, alpha, beta, cols);
          else
            ukr_rows<1>(r, kc, g->A + pc * lda + icur, lda, bp, bs, crow + jr, ldc, alpha, beta, cols);
        }
      }
    }
  }
}

// Kernels::pack_b: op(B) for all N columns, K blocks of k_block(K, N) one after the other, each
// [npad / NR slivers][kc][NR] as the driver's bbuf (block at pc starts at pc * npad floats).
static long pack_b(const GemmArgs* g, float* dst) {
  const long K = g->K, N = g->N, kcb = k_block(K, N), npad = (N + NR - 1) / NR * NR;
  for (long pc = 0; pc < K; pc += kcb) {
    const long kc = lmin(kcb, K - pc);
    if (g->tb)
      pack_bt(g->B, g->ldb, pc, kc, 0, N, dst + pc * npad);
    else
      pack_b_rows(g->B, g->ldb, pc, kc, 0, N, dst + pc * npad);
  }
  return kcb;
}

static void tune(long kc, long ncb, int flags) {
  if (kc > 0) g_kc = kc;
  if (ncb > 0) g_ncb = (ncb + NR - 1) / NR * NR;
  if (flags >= 0) g_flags = flags;
}

#if CHARNN_W == 16 && (defined(__x86_64__) || defined(_M_X64))
#include "gemm_bf16_impl.h"
#define CHARNN_GEMM_BF16 &gemm_bf16
#else
#define CHARNN_GEMM_BF16 nullptr  // no bf16 GEMM below AVX-512
#endif
