// Kernel implementations, written once and compiled once per instruction set: k_avx512.cc,
// k_avx2.cc and k_base.cc define CHARNN_ISA (a namespace name) and CHARNN_ISA_NAME and include
// this file. Every function here is `static` inside that namespace, and nothing from the C++
// standard library is instantiated, so no code compiled for one ISA can be picked by the linker
// for another (see the note in kernels.h). Only the table at the end is reachable from outside.
// The GEMM (packing, micro-kernel, driver) lives in gemm_impl.h, included below; this file holds
// the elementwise, cell, softmax and optimiser kernels and the table.
//
// Numerics: float32 throughout, except the softmax normaliser's log and sumSquares, done in
// double. No -ffast-math: NaN and Inf propagate as IEEE says (the trainer spots divergence by
// NaN losses). FMA contraction is allowed (-ffp-contract=fast): it only makes results closer.

#include <stddef.h>
#include <stdint.h>

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
#include <immintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

#include "kernels.h"

#if !defined(CHARNN_ISA) || !defined(CHARNN_ISA_NAME)
#error "define CHARNN_ISA and CHARNN_ISA_NAME before including kernels_impl.h"
#endif

namespace charnn {
namespace CHARNN_ISA {

#include "simd.h"

CHARNN_INLINE long lmin(long a, long b) { return a < b ? a : b; }
CHARNN_INLINE size_t zmin(size_t a, size_t b) { return a < b ? a : b; }

// load / store n <= W lanes (n == W: a plain full access)
CHARNN_INLINE vf ldn(const float* p, long n) { return n == W ? ld(p) : ldp(p, n); }
CHARNN_INLINE void stn(float* p, vf v, long n) {
  if (n == W)
    st(p, v);
  else
    stp(p, v, n);
}

#include "gemm_impl.h"

// =============================================================================================
// elementwise
// =============================================================================================

static void fill(float* x, size_t n, float v) {
  const vf s = splat(v);
  size_t i = 0;
  for (; i + W <= n; i += W) st(x + i, s);
  if (i < n) stp(x + i, s, (long)(n - i));
}

static void axpy(float a, const float* x, float* y, size_t n) {
  const vf va = splat(a);
  size_t i = 0;
  for (; i + W <= n; i += W) st(y + i, ld(y + i) + va * ld(x + i));
  if (i < n) {
    long r = (long)(n - i);
    stp(y + i, ldp(y + i, r) + va * ldp(x + i, r), r);
  }
}

static void scale(float* x, size_t n, float s) {
  const vf vs = splat(s);
  size_t i = 0;
  for (; i + W <= n; i += W) st(x + i, ld(x + i) * vs);
  if (i < n) {
    long r = (long)(n - i);
    stp(x + i, ldp(x + i, r) * vs, r);
  }
}

static void mul(const float* a, const float* b, float* out, size_t n) {
  for (size_t i = 0; i < n; i += W) {
    const long m = (long)zmin(W, n - i);
    stn(out + i, ldn(a + i, m) * ldn(b + i, m), m);
  }
}

static void mul_backward(const float* a, const float* b, const float* dOut, float* dA, float* dB, size_t n) {
  for (size_t i = 0; i < n; i += W) {
    const long m = (long)zmin(W, n - i);
    const vf d = ldn(dOut + i, m);
    stn(dA + i, d * ldn(b + i, m), m);
    stn(dB + i, d * ldn(a + i, m), m);
  }
}

static void add_row_vector(float* x, long rows, long cols, const float* b) {
  for (long r = 0; r < rows; ++r) axpy(1.0f, b, x + r * cols, (size_t)cols);
}

static void sum_rows(const float* x, long rows, long cols, float* out, int accumulate, long c0, long c1) {
  long j = c0;
  for (; j + 4 * W <= c1; j += 4 * W) {
    vf a0 = {}, a1 = {}, a2 = {}, a3 = {};
    for (long r = 0; r < rows; ++r) {
      const float* p = x + r * cols + j;
      a0 += ld(p);
      a1 += ld(p + W);
      a2 += ld(p + 2 * W);
      a3 += ld(p + 3 * W);
    }
    if (accumulate) {
      a0 += ld(out + j);
      a1 += ld(out + j + W);
      a2 += ld(out + j + 2 * W);
      a3 += ld(out + j + 3 * W);
    }
    st(out + j, a0);
    st(out + j + W, a1);
    st(out + j + 2 * W, a2);
    st(out + j + 3 * W, a3);
  }
  for (; j < c1; j += W) {
    const long n = lmin(W, c1 - j);
    vf a0 = {};
    for (long r = 0; r < rows; ++r) a0 += ldn(x + r * cols + j, n);
    if (accumulate) a0 += ldn(out + j, n);
    stn(out + j, a0, n);
  }
}

static void rnn_forward(const float* pre, float* h, size_t n) {
  for (size_t i = 0; i < n; i += W) {
    const long m = (long)zmin(W, n - i);
    stn(h + i, vtanh(ldn(pre + i, m)), m);
  }
}

static void rnn_backward(const float* h, const float* dh, float* dPre, size_t n) {
  const vf one = splat(1.0f);
  for (size_t i = 0; i < n; i += W) {
    const long m = (long)zmin(W, n - i);
    vf hv = ldn(h + i, m);
    stn(dPre + i, ldn(dh + i, m) * (one - hv * hv), m);
  }
}

static void lstm_forward(float* gates, const float* cPrev, float* c, float* h, long rows, long H) {
  for (long r = 0; r < rows; ++r) {
    float* gi = gates + r * 4 * H;
    float* gf = gi + H;
    float* gg = gf + H;
    float* go = gg + H;
    const float* cp = cPrev + r * H;
    float* cr = c + r * H;
    float* hr = h + r * H;
    for (long j = 0; j < H; j += W) {
      const long m = lmin(W, H - j);
      vf i = vsigmoid(ldn(gi + j, m)), f = vsigmoid(ldn(gf + j, m)), g = vtanh(ldn(gg + j, m)),
         o = vsigmoid(ldn(go + j, m));
      vf cv = f * ldn(cp + j, m) + i * g;
      stn(gi + j, i, m);
      stn(gf + j, f, m);
      stn(gg + j, g, m);
      stn(go + j, o, m);
      stn(cr + j, cv, m);
      stn(hr + j, o * vtanh(cv), m);
    }
  }
}

static void lstm_backward(const float* gates, const float* cPrev, const float* c, const float* dh, float* dc,
                          float* dGates, long rows, long H) {
  const vf one = splat(1.0f);
  for (long r = 0; r < rows; ++r) {
    const float* gi = gates + r * 4 * H;
    const float* gf = gi + H;
    const float* gg = gf + H;
    const float* go = gg + H;
    float* di = dGates + r * 4 * H;
    float* df = di + H;
    float* dg = df + H;
    float* dO = dg + H;
    const float* cp = cPrev + r * H;
    const float* cr = c + r * H;
    const float* dhr = dh + r * H;
    float* dcr = dc + r * H;
    for (long j = 0; j < H; j += W) {
      const long m = lmin(W, H - j);
      vf i = ldn(gi + j, m), f = ldn(gf + j, m), g = ldn(gg + j, m), o = ldn(go + j, m);
      vf tc = vtanh(ldn(cr + j, m));
      vf dhv = ldn(dhr + j, m);
      vf dct = ldn(dcr + j, m) + dhv * o * (one - tc * tc);
      stn(di + j, dct * g * (i * (one - i)), m);
      stn(df + j, dct * ldn(cp + j, m) * (f * (one - f)), m);
      stn(dg + j, dct * i * (one - g * g), m);
      stn(dO + j, dhv * tc * (o * (one - o)), m);
      stn(dcr + j, dct * f, m);
    }
  }
}

static void gru_forward(float* xg, const float* hg, const float* hPrev, float* h, long rows, long H) {
  const vf one = splat(1.0f);
  for (long r = 0; r < rows; ++r) {
    float* xr = xg + r * 3 * H;
    float* xz = xr + H;
    float* xn = xz + H;
    const float* hr = hg + r * 3 * H;
    const float* hz = hr + H;
    const float* hn = hz + H;
    const float* hp = hPrev + r * H;
    float* ho = h + r * H;
    for (long j = 0; j < H; j += W) {
      const long m = lmin(W, H - j);
      vf rv = vsigmoid(ldn(xr + j, m) + ldn(hr + j, m));
      vf zv = vsigmoid(ldn(xz + j, m) + ldn(hz + j, m));
      vf nv = vtanh(ldn(xn + j, m) + rv * ldn(hn + j, m));
      stn(xr + j, rv, m);
      stn(xz + j, zv, m);
      stn(xn + j, nv, m);
      stn(ho + j, (one - zv) * nv + zv * ldn(hp + j, m), m);
    }
  }
}

static void gru_backward(const float* gates, const float* hg, const float* hPrev, const float* dh, float* dXg,
                         float* dHg, float* dhPrev, long rows, long H) {
  const vf one = splat(1.0f);
  for (long r = 0; r < rows; ++r) {
    const float* gr = gates + r * 3 * H;
    const float* gz = gr + H;
    const float* gn = gz + H;
    const float* hn = hg + r * 3 * H + 2 * H;
    const float* hp = hPrev + r * H;
    const float* dhr = dh + r * H;
    float* dxr = dXg + r * 3 * H;
    float* dhgr = dHg + r * 3 * H;
    float* dhp = dhPrev + r * H;
    for (long j = 0; j < H; j += W) {
      const long m = lmin(W, H - j);
      vf rv = ldn(gr + j, m), zv = ldn(gz + j, m), nv = ldn(gn + j, m);
      vf d = ldn(dhr + j, m);
      vf dn = d * (one - zv) * (one - nv * nv);
      vf dz = d * (ldn(hp + j, m) - nv) * (zv * (one - zv));
      vf dr = dn * ldn(hn + j, m) * (rv * (one - rv));
      stn(dxr + j, dr, m);
      stn(dxr + H + j, dz, m);
      stn(dxr + 2 * H + j, dn, m);
      stn(dhgr + j, dr, m);
      stn(dhgr + H + j, dz, m);
      stn(dhgr + 2 * H + j, dn * rv, m);
      stn(dhp + j, d * zv, m);
    }
  }
}

// =============================================================================================
// softmax
// =============================================================================================

CHARNN_INLINE float row_max(const float* x, long V) {
  const vf ninf = splat(-__builtin_inff());
  vf m0 = ninf, m1 = ninf;
  long j = 0;
  for (; j + 2 * W <= V; j += 2 * W) {
    m0 = vmax(ld(x + j), m0);
    m1 = vmax(ld(x + j + W), m1);
  }
  for (; j < V; j += W) {
    const long n = lmin(W, V - j);
    m0 = vmax(sel(iota() < splati((int32_t)n), ldn(x + j, n), ninf), m0);
  }
  return hmax(vmax(m0, m1));
}

// e[j] = exp((x[j] - mx) * s) written to e when e != null; returns the sum (double of lane sums)
CHARNN_INLINE double row_exp_sum(const float* x, float* e, long V, float mx, float s) {
  const vf vm = splat(mx), vs = splat(s);
  vf a0 = {}, a1 = {};
  long j = 0;
  for (; j + 2 * W <= V; j += 2 * W) {
    vf e0 = vexp((ld(x + j) - vm) * vs), e1 = vexp((ld(x + j + W) - vm) * vs);
    if (e) {
      st(e + j, e0);
      st(e + j + W, e1);
    }
    a0 += e0;
    a1 += e1;
  }
  for (; j < V; j += W) {
    const long n = lmin(W, V - j);
    vf e0 = vexp((ldn(x + j, n) - vm) * vs);
    e0 = sel(iota() < splati((int32_t)n), e0, vf{});
    if (e) stn(e + j, e0, n);
    a0 += e0;
  }
  return (double)hsum(a0 + a1);
}

static void softmax_xent(const float* logits, const int32_t* targets, float* losses, float* dLogits, long rows,
                         long V, float gradScale) {
  for (long r = 0; r < rows; ++r) {
    const float* x = logits + r * V;
    float* d = dLogits ? dLogits + r * V : nullptr;
    const int32_t t = targets[r];
    const float mx = row_max(x, V);
    const float xt = x[t];  // read before an in-place gradient overwrites it
    const double sum = row_exp_sum(x, d, V, mx, 1.0f);
    losses[r] = (float)(__builtin_log(sum) - ((double)xt - (double)mx));
    if (d) {
      const float s = (float)((double)gradScale / sum);
      scale(d, (size_t)V, s);
      d[t] -= gradScale;
    }
  }
}

static void softmax(const float* logits, float* probs, long rows, long V, float invT) {
  for (long r = 0; r < rows; ++r) {
    const float* x = logits + r * V;
    float* p = probs + r * V;
    const float mx = row_max(x, V);
    const double sum = row_exp_sum(x, p, V, mx, invT);
    scale(p, (size_t)V, (float)(1.0 / sum));
  }
}

// =============================================================================================
// dropout, optimisers
// =============================================================================================

static void dropout(const float* x, float* out, size_t n, uint32_t index0, uint32_t seed, uint64_t thresh,
                    double scale) {
  if (thresh > 0xffffffffull) {
    fill(out, n, 0.0f);
    return;
  }
  const vu th = splatu((uint32_t)thresh);
  const vd vs = vd{} + scale;
  vu idx = (vu)iota() + index0;
  for (size_t i = 0; i < n; i += W) {
    const long m = (long)zmin(W, n - i);
    vu h = idx * 0x9e3779b1u + seed;
    h ^= h >> 16;
    h *= 0x7feb352du;
    h ^= h >> 15;
    h *= 0x846ca68bu;
    h ^= h >> 16;
    vi keep = (vi)(h >= th);
    vf v = ldn(x + i, m);
    vf sc = from_d(lo_d(v) * vs, hi_d(v) * vs);
    stn(out + i, sel(keep, sc, vf{}), m);
    idx += (uint32_t)W;
  }
}

static void clip(float* g, size_t n, float limit) {
  const vf hi = splat(limit), lo = splat(-limit);
  for (size_t i = 0; i < n; i += W) {
    const long m = (long)zmin(W, n - i);
    vf v = ldn(g + i, m);
    v = sel(v > hi, hi, v);
    v = sel(v < lo, lo, v);
    stn(g + i, v, m);
  }
}

static double sum_squares(const float* x, size_t n) {
  vd a0 = {}, a1 = {}, a2 = {}, a3 = {};
  size_t i = 0;
  for (; i + 2 * W <= n; i += 2 * W) {
    vf v = ld(x + i), u = ld(x + i + W);
    vd l0 = lo_d(v), h0 = hi_d(v), l1 = lo_d(u), h1 = hi_d(u);
    a0 += l0 * l0;
    a1 += h0 * h0;
    a2 += l1 * l1;
    a3 += h1 * h1;
  }
  for (; i < n; i += W) {
    vf v = ldn(x + i, (long)zmin(W, n - i));
    vd l0 = lo_d(v), h0 = hi_d(v);
    a0 += l0 * l0;
    a1 += h0 * h0;
  }
  vd a = (a0 + a1) + (a2 + a3);
  double s = 0;
  for (int k = 0; k < W / 2; ++k) s += a[k];
  return s;
}

// y = f32(f32(g*g) - comp); t = f32(mem + y); comp = f32(f32(t - mem) - y); mem = t (no FMA,
// no reassociation: the compensation depends on each rounding), then p -= lr * g / sqrt(t + eps)
static void adagrad(float* p, const float* g, float* mem, float* comp, size_t n, float lr, float eps) {
  const vf vlr = splat(lr), veps = splat(eps);
  for (size_t i = 0; i < n; i += W) {
    const long m = (long)zmin(W, n - i);
    vf gv = ldn(g + i, m);
    vf mv = ldn(mem + i, m);
    vf y = rounded(gv * gv) - ldn(comp + i, m);
    vf t = rounded(mv + y);
    stn(comp + i, rounded(t - mv) - y, m);
    stn(mem + i, t, m);
    stn(p + i, ldn(p + i, m) - vlr * gv / vsqrt(t + veps), m);
  }
}

static void rmsprop(float* p, const float* g, float* ms, size_t n, float lr, float alpha, float a1, float eps) {
  const vf vlr = splat(lr), va = splat(alpha), va1 = splat(a1), veps = splat(eps);
  for (size_t i = 0; i < n; i += W) {
    const long m = (long)zmin(W, n - i);
    vf gv = ldn(g + i, m);
    vf sv = va * ldn(ms + i, m) + va1 * (gv * gv);
    stn(ms + i, sv, m);
    stn(p + i, ldn(p + i, m) - vlr * gv / (vsqrt(sv) + veps), m);
  }
}

static void adam(float* p, const float* g, float* mv, float* vv, size_t n, float lr, float b1, float b1c, float b2,
                 float b2c, float eps, float c1, float c2) {
  const vf vlr = splat(lr), vb1 = splat(b1), vb1c = splat(b1c), vb2 = splat(b2), vb2c = splat(b2c),
           veps = splat(eps), vc1 = splat(c1), vc2 = splat(c2);
  for (size_t i = 0; i < n; i += W) {
    const long m = (long)zmin(W, n - i);
    vf gv = ldn(g + i, m);
    vf m1 = vb1 * ldn(mv + i, m) + vb1c * gv;
    vf v1 = vb2 * ldn(vv + i, m) + vb2c * (gv * gv);
    stn(mv + i, m1, m);
    stn(vv + i, v1, m);
    stn(p + i, ldn(p + i, m) - vlr * (m1 * vc1) / (vsqrt(v1 * vc2) + veps), m);
  }
}

static void map(int fn, const float* x, float* y, size_t n) {
  for (size_t i = 0; i < n; i += W) {
    const long m = (long)zmin(W, n - i);
    vf v = ldn(x + i, m);
    stn(y + i, fn == 0 ? vexp(v) : fn == 1 ? vtanh(v) : vsigmoid(v), m);
  }
}

static const Kernels table = {
    CHARNN_ISA_NAME, MR,          NR,           &gemm,         &fill,          &axpy,
    &scale,          &mul,         &mul_backward, &add_row_vector, &sum_rows, &rnn_forward, &rnn_backward,  &lstm_forward,
    &lstm_backward,  &gru_forward, &gru_backward, &softmax_xent, &softmax,       &dropout,
    &clip,           &sum_squares, &adagrad,      &rmsprop,      &adam,          &map,   &tune,
    CHARNN_GEMM_BF16, &pack_b,
};

}  // namespace CHARNN_ISA
}  // namespace charnn
