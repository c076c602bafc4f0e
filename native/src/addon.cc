// Node-API bindings of the native backend. Every op takes Float32Array / Int32Array views
// (byte offsets honoured: `subarray` views work) and writes results in place, zero-copy.
//
// Each op is a plain function whose parameter types say how its arguments are read (args.h);
// kOps below turns them into napi callbacks. Argument types are checked by args.h and size
// relations by the ops themselves, which is the one place they are checked: a bad call throws a
// JS error instead of touching foreign memory. src/backend/native.ts passes the few dimensions
// that cannot be derived from lengths (a row width, H) from the tensors' shapes, unchecked.

#include <napi.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <time.h>

#include <cmath>

#include "args.h"
#include "kernels.h"
#include "runtime.h"

using charnn::Args;
using charnn::Dim;
using charnn::F32;
using charnn::GemmArgs;
using charnn::I32;
using charnn::Kernels;
using charnn::OptF32;
using charnn::par_range;
using charnn::par_rows;
using charnn::Raw;

namespace {

const Kernels* K = nullptr;

constexpr size_t kElemGrain = 1 << 15;  // memory-bound elementwise ops: 32K floats per thread at least

// ---- memory / elementwise ---------------------------------------------------------------------

void fill(Args&, F32 x, double v) {
  const float fv = (float)v;
  par_range(x.n, kElemGrain, [&](size_t lo, size_t hi) { K->fill(x.p + lo, hi - lo, fv); });
}

void copy(Args& a, F32 s, F32 d) {
  if (!a.need(s.n == d.n, "copy: sizes differ") || s.p == d.p) return;
  par_range(s.n, kElemGrain, [&](size_t lo, size_t hi) { memmove(d.p + lo, s.p + lo, (hi - lo) * sizeof(float)); });
}

void axpy(Args& a, double alpha, F32 x, F32 y) {
  if (!a.need(x.n == y.n, "axpy: sizes differ")) return;
  const float fa = (float)alpha;
  par_range(x.n, kElemGrain, [&](size_t lo, size_t hi) { K->axpy(fa, x.p + lo, y.p + lo, hi - lo); });
}

void scale(Args&, F32 x, double s) {
  const float fs = (float)s;
  par_range(x.n, kElemGrain, [&](size_t lo, size_t hi) { K->scale(x.p + lo, hi - lo, fs); });
}

void mul(Args& a, F32 x, F32 y, F32 out) {
  if (!a.need(x.n == y.n && x.n == out.n, "mul: sizes differ")) return;
  par_range(x.n, kElemGrain, [&](size_t lo, size_t hi) { K->mul(x.p + lo, y.p + lo, out.p + lo, hi - lo); });
}

void mulBackward(Args& a, F32 x, F32 y, F32 d, F32 dx, F32 dy) {
  if (!a.need(y.n == x.n && d.n == x.n && dx.n == x.n && dy.n == x.n, "mulBackward: sizes differ")) return;
  par_range(x.n, kElemGrain, [&](size_t lo, size_t hi) { K->mul_backward(x.p + lo, y.p + lo, d.p + lo, dx.p + lo, dy.p + lo, hi - lo); });
}

// ---- GEMM -------------------------------------------------------------------------------------

// Below this many flops a GEMM runs on the calling thread: waking/sharing with a worker costs a
// few microseconds, more than the product itself.
double gemm_par_flops = 4.0e5;

using GemmKernel = void (*)(const GemmArgs*, long m0, long m1, long n0, long n1);

struct GemmTask {
  GemmKernel kernel;
  const GemmArgs* g;
  bool splitM;
  long blocks, parts, unit, total;
  void operator()(int t) const {
    long b0 = blocks * t / parts, b1 = blocks * (t + 1) / parts;
    long lo = b0 * unit, hi = b1 * unit;
    if (hi > total) hi = total;
    if (lo >= hi) return;
    if (splitM)
      kernel(g, lo, hi, 0, g->N);
    else
      kernel(g, 0, g->M, lo, hi);
  }
};

// C of g with `kernel` (K->gemm or the bf16 one), split across the pool when big enough.
void run_gemm(const GemmArgs& g, GemmKernel kernel) {
  const int P = charnn::num_threads();
  const double flops = 2.0 * (double)g.M * (double)g.N * (double)g.K;
  if (P <= 1 || flops < gemm_par_flops) {
    kernel(&g, 0, g.M, 0, g.N);
    return;
  }
  // Split the larger side, so that what both threads read in full (and, for op(B) = B^T, pack)
  // is the smaller operand; fall back to the other side when the larger has too few tiles.
  const long mb = (g.M + K->mr - 1) / K->mr, nb = (g.N + K->nr - 1) / K->nr;
  bool splitM = g.M >= g.N;
  // With op(B) pre-packed (gemmPacked) there is no B to pack: split M, so that each task packs
  // only its own rows of A (split by N, every task packs all of op(A)), and the K blocking is the
  // pack's (that of a product over all N). Measured on the per-step [50,128]x[128,512] and
  // [50,512]x[512,128]^T: 1.13-1.19x the speed of the N split with the same pack.
  if (g.Bp && mb >= P) splitM = true;
  if (g.M == 1) splitM = false;
  if (g.N == 1) splitM = true;
  long unit = splitM ? K->mr : K->nr;
  long blocks = splitM ? mb : nb;
  if (g.M == 1 || g.N == 1) {  // matrix-vector: split in 64-element chunks
    unit = 64;
    blocks = ((splitM ? g.M : g.N) + 63) / 64;
  } else if (blocks < P && (splitM ? nb : mb) >= P) {
    splitM = !splitM;
    unit = splitM ? K->mr : K->nr;
    blocks = splitM ? mb : nb;
  }
  // Two tasks per thread (one for small products), handed out dynamically: when a worker is late
  // (descheduled by a V8 GC thread or another process on a 2-core machine), the caller takes
  // more of them instead of waiting. Each task packs its own operands (measured: duplicated
  // packing costs under 3% down to the per-time-step [50,128]x[128,512]).
  long parts = flops >= 3.0e6 * P ? 2L * P : P;
  if (parts > blocks) parts = blocks;
  if (parts <= 1) {
    kernel(&g, 0, g.M, 0, g.N);
    return;
  }
  GemmTask task{kernel, &g, splitM, blocks, parts, unit, splitM ? g.M : g.N};
  charnn::parallel((int)parts, task);
}

// gemm(transA, transB, M, N, K, alpha, A, B, beta, C) with `kernel`; `packed` (with its K block
// depth kc) is op(B) from packB, or null/0 to let the kernel pack B itself.
void gemm_with(GemmKernel kernel, Args& a, bool ta, bool tb, Dim M, Dim N, Dim Kd, double alpha, F32 A, F32 B,
               double beta, F32 C, const float* packed = nullptr, long kc = 0) {
  a.need(A.n == (size_t)(M.v * Kd.v), "gemm: A has the wrong size");
  a.need(B.n == (size_t)(Kd.v * N.v), "gemm: B has the wrong size");
  if (!a.need(C.n == (size_t)(M.v * N.v), "gemm: C has the wrong size")) return;
  GemmArgs g;
  g.ta = ta;
  g.tb = tb;
  g.M = M.v;
  g.N = N.v;
  g.K = Kd.v;
  g.alpha = (float)alpha;
  g.A = A.p;
  g.B = B.p;
  g.beta = (float)beta;
  g.C = C.p;
  g.lda = g.ta ? g.M : g.K;
  g.ldb = g.tb ? g.K : g.N;
  g.ldc = g.N;
  g.Bp = packed;
  g.bkc = kc;
  if (g.M == 0 || g.N == 0) return;
  run_gemm(g, kernel);
}

void gemm(Args& a, bool ta, bool tb, Dim M, Dim N, Dim Kd, double alpha, F32 A, F32 B, double beta, F32 C) {
  gemm_with(K->gemm, a, ta, tb, M, N, Kd, alpha, A, B, beta, C);
}

// gemmBf16(...): gemm's arguments; op(A), op(B) rounded to bfloat16, float32 sums (gemm_bf16_impl.h).
// A RangeError where the CPU lacks AVX512-BF16 (info().bf16 says beforehand).
void gemmBf16(Args& a, bool ta, bool tb, Dim M, Dim N, Dim Kd, double alpha, F32 A, F32 B, double beta, F32 C) {
  const GemmKernel kernel = charnn::gemm_bf16();
  if (!kernel) return a.fail_range("gemmBf16: this CPU has no AVX512-BF16 (or the addon runs below AVX-512)");
  gemm_with(kernel, a, ta, tb, M, N, Kd, alpha, A, B, beta, C);
}

// packB(transB, K, N, B, out): op(B): [K, N] (B: [N, K] when transB) packed into out, which holds
// exactly K * (N rounded up to the micro-tile's width nr) floats. Returns the K block depth that
// gemmPacked takes back. The pack is a copy: it goes stale when B is written.
double packB(Args& a, bool tb, Dim Kd, Dim N, F32 B, F32 out) {
  const long npad = (N.v + K->nr - 1) / K->nr * K->nr;
  a.need(B.n == (size_t)(Kd.v * N.v), "packB: B has the wrong size");
  if (!a.need(out.n == (size_t)(Kd.v * npad), "packB: out has the wrong size")) return 0;
  GemmArgs g{};
  g.tb = tb;
  g.K = Kd.v;
  g.N = N.v;
  g.B = B.p;
  g.ldb = tb ? Kd.v : N.v;
  return (double)K->pack_b(&g, out.p);
}

// gemmPacked(transA, M, N, K, alpha, A, transB, B, packed, kc, beta, C): gemm's product with
// op(B) also given packed (packB's out and return value, made from this B and transB, with
// this addon). The same bits as gemm; the pack saves packing B again in each call.
void gemmPacked(Args& a, bool ta, Dim M, Dim N, Dim Kd, double alpha, F32 A, bool tb, F32 B, F32 packed, Dim kc,
                double beta, F32 C) {
  const long npad = (N.v + K->nr - 1) / K->nr * K->nr;
  if (!a.need(packed.n == (size_t)(Kd.v * npad), "gemmPacked: packed has the wrong size")) return;
  gemm_with(K->gemm, a, ta, tb, M, N, Kd, alpha, A, B, beta, C, packed.p, kc.v);
}

// ---- rows -------------------------------------------------------------------------------------
// x: [rows, cols] with cols passed from the tensor's shape; the messages are the reference
// backend's (src/backend/reference.ts).

// addRowVector(cols, x, b)
void addRowVector(Args& a, Dim cols, F32 x, F32 b) {
  if (b.n != (size_t)cols.v) return a.fail_range("addRowVector: bias %zu for rows of %ld", b.n, cols.v);
  if (!a.need(cols.v > 0 ? x.n % cols.v == 0 : x.n == 0, "addRowVector: x's size is not a multiple of its row width") ||
      cols.v == 0)
    return;
  const long rows = (long)(x.n / b.n), c = cols.v;
  par_rows(rows, (double)c, (double)kElemGrain,
           [&](long lo, long hi) { K->add_row_vector(x.p + lo * c, hi - lo, c, b.p); });
}

// sumRows(cols, x, out, accumulate)
void sumRows(Args& a, Dim cols, F32 x, F32 out, bool acc) {
  if (out.n != (size_t)cols.v) return a.fail_range("sumRows: out %zu for rows of %ld", out.n, cols.v);
  if (!a.need(cols.v > 0 ? x.n % cols.v == 0 : x.n == 0, "sumRows: x's size is not a multiple of its row width") ||
      cols.v == 0)
    return;
  const long rows = (long)(x.n / out.n), c = cols.v;
  // split columns (each thread sums whole columns: same result as serial)
  const int P = charnn::num_threads();
  if (P > 1 && x.n >= 2 * kElemGrain && c >= 256) {
    const long parts = P;
    auto task = [&](int t) {
      long c0 = (c * t / parts) & ~63L, c1 = t + 1 == parts ? c : (c * (t + 1) / parts) & ~63L;
      if (c0 < c1) K->sum_rows(x.p, rows, c, out.p, acc, c0, c1);
    };
    charnn::parallel((int)parts, task);
  } else {
    K->sum_rows(x.p, rows, c, out.p, acc, 0, c);
  }
}

// Shared checks of gatherRows / scatterAddRows: rows: [N, D] for N ids into table: [V, D] with D
// passed from the table's shape. Returns V, or -1 after throwing.
long check_row_ids(Args& a, const char* op, const char* rowsName, Dim D, F32 rows, I32 ids, F32 table) {
  if (rows.n != ids.n * (size_t)D.v) {
    a.fail_range("%s: %s shape does not match ids x row size", op, rowsName);
    return -1;
  }
  if (D.v == 0) return 0;
  if (table.n % (size_t)D.v != 0) {
    a.fail_range("%s: the table's size is not a multiple of its row width", op);
    return -1;
  }
  const long V = (long)(table.n / (size_t)D.v);
  for (size_t i = 0; i < ids.n; ++i)
    if (ids.p[i] < 0 || ids.p[i] >= V) {
      a.fail_range("%s: id %d at %zu out of range [0, %ld)", op, ids.p[i], i, V);
      return -1;
    }
  return V;
}

// gatherRows(D, table, ids, out)
void gatherRows(Args& a, Dim D, F32 table, I32 ids, F32 out) {
  if (check_row_ids(a, "gatherRows", "out", D, out, ids, table) <= 0) return;
  // rows split across threads: a one-hot input's [B*T, 4H] lookup is megabytes of copying
  par_rows((long)ids.n, (double)D.v, (double)kElemGrain, [&](long lo, long hi) {
    for (long i = lo; i < hi; ++i) memcpy(out.p + i * D.v, table.p + (size_t)ids.p[i] * D.v, D.v * sizeof(float));
  });
}

// scatterAddRows(D, dOut, ids, dTable)
void scatterAddRows(Args& a, Dim D, F32 dOut, I32 ids, F32 dTable) {
  if (check_row_ids(a, "scatterAddRows", "dOut", D, dOut, ids, dTable) <= 0) return;
  // Serial: splitting it by table rows or by columns across 2 threads measured 0.67-0.9x of this
  // on [2500, 512] (each thread then streams half of dOut's lines with gaps).
  for (size_t i = 0; i < ids.n; ++i) K->axpy(1.0f, dOut.p + i * D.v, dTable.p + (size_t)ids.p[i] * D.v, D.v);
}

// ---- cells --------------------------------------------------------------------------------------

constexpr double kCellMinWork = 2048;  // elements of H per thread (several transcendentals each)

void rnnForward(Args& a, F32 pre, F32 h) {
  if (!a.need(pre.n == h.n, "rnnForward: sizes differ")) return;
  par_range(pre.n, (size_t)kCellMinWork, [&](size_t lo, size_t hi) { K->rnn_forward(pre.p + lo, h.p + lo, hi - lo); });
}

void rnnBackward(Args& a, F32 h, F32 dh, F32 dPre) {
  if (!a.need(h.n == dh.n && dh.n == dPre.n, "rnnBackward: sizes differ")) return;
  par_range(h.n, kElemGrain,
            [&](size_t lo, size_t hi) { K->rnn_backward(h.p + lo, dh.p + lo, dPre.p + lo, hi - lo); });
}

// lstmForward(H, gates, cPrev, c, h)
void lstmForward(Args& a, Dim Hd, F32 gates, F32 cPrev, F32 c, F32 h) {
  const long H = Hd.v;
  if (!a.need(H > 0 && c.n % H == 0 && gates.n == 4 * c.n && cPrev.n == c.n && h.n == c.n,
              "lstmForward: inconsistent sizes"))
    return;
  par_rows((long)c.n / H, (double)H, kCellMinWork, [&](long lo, long hi) {
    K->lstm_forward(gates.p + lo * 4 * H, cPrev.p + lo * H, c.p + lo * H, h.p + lo * H, hi - lo, H);
  });
}

// lstmBackward(H, gates, cPrev, c, dh, dc, dGates)
void lstmBackward(Args& a, Dim Hd, F32 gates, F32 cPrev, F32 c, F32 dh, F32 dc, F32 dGates) {
  const long H = Hd.v;
  if (!a.need(H > 0 && c.n % H == 0 && gates.n == 4 * c.n && dGates.n == gates.n && cPrev.n == c.n &&
                  dh.n == c.n && dc.n == c.n,
              "lstmBackward: inconsistent sizes"))
    return;
  par_rows((long)c.n / H, (double)H, kCellMinWork, [&](long lo, long hi) {
    K->lstm_backward(gates.p + lo * 4 * H, cPrev.p + lo * H, c.p + lo * H, dh.p + lo * H, dc.p + lo * H,
                     dGates.p + lo * 4 * H, hi - lo, H);
  });
}

// gruForward(H, xg, hg, hPrev, h)
void gruForward(Args& a, Dim Hd, F32 xg, F32 hg, F32 hPrev, F32 h) {
  const long H = Hd.v;
  if (!a.need(H > 0 && h.n % H == 0 && xg.n == 3 * h.n && hg.n == xg.n && hPrev.n == h.n,
              "gruForward: inconsistent sizes"))
    return;
  par_rows((long)h.n / H, (double)H, kCellMinWork, [&](long lo, long hi) {
    K->gru_forward(xg.p + lo * 3 * H, hg.p + lo * 3 * H, hPrev.p + lo * H, h.p + lo * H, hi - lo, H);
  });
}

// gruBackward(H, gates, hg, hPrev, dh, dXg, dHg, dhPrev)
void gruBackward(Args& a, Dim Hd, F32 gates, F32 hg, F32 hPrev, F32 dh, F32 dXg, F32 dHg, F32 dhPrev) {
  const long H = Hd.v;
  if (!a.need(H > 0 && hPrev.n % H == 0 && gates.n == 3 * hPrev.n && hg.n == gates.n && dXg.n == gates.n &&
                  dHg.n == gates.n && dh.n == hPrev.n && dhPrev.n == hPrev.n,
              "gruBackward: inconsistent sizes"))
    return;
  par_rows((long)hPrev.n / H, (double)H, kCellMinWork, [&](long lo, long hi) {
    K->gru_backward(gates.p + lo * 3 * H, hg.p + lo * 3 * H, hPrev.p + lo * H, dh.p + lo * H, dXg.p + lo * 3 * H,
                    dHg.p + lo * 3 * H, dhPrev.p + lo * H, hi - lo, H);
  });
}

// ---- softmax ----------------------------------------------------------------------------------

// softmaxCrossEntropy(V, logits, targets, losses, dLogits | null, gradScale)
void softmaxCrossEntropy(Args& a, Dim Vd, F32 logits, I32 targets, F32 losses, OptF32 d, double gradScale) {
  const long V = Vd.v;
  const size_t nt = targets.n;
  if (!a.need(V > 0 && logits.n == nt * (size_t)V && losses.n == nt && (!d.p || d.n == logits.n),
              "softmaxCrossEntropy: inconsistent sizes"))
    return;
  for (size_t i = 0; i < nt; ++i)
    if (targets.p[i] < 0 || targets.p[i] >= V)
      return a.fail_range("softmaxCrossEntropy: target %d at %zu out of range [0, %ld)", targets.p[i], i, V);
  const float gs = (float)gradScale;
  par_rows((long)nt, (double)V, 16384.0, [&](long lo, long hi) {
    K->softmax_xent(logits.p + lo * V, targets.p + lo, losses.p + lo, d.p ? d.p + lo * V : nullptr, hi - lo, V, gs);
  });
}

// softmax(V, logits, probs, temperature)
void softmax(Args& a, Dim Vd, F32 logits, F32 probs, double T) {
  const long V = Vd.v;
  a.need(V > 0 && logits.n % (size_t)V == 0 && probs.n == logits.n, "softmax: inconsistent sizes");
  if (!a.need(T > 0, "softmax: temperature must be > 0")) return;
  const float invT = (float)(1.0 / T);
  par_rows((long)(logits.n / V), (double)V, 16384.0,
           [&](long lo, long hi) { K->softmax(logits.p + lo * V, probs.p + lo * V, hi - lo, V, invT); });
}

// ---- dropout, optimisers ----------------------------------------------------------------------

// dropout(x, out, p, seed) — seed: an integer (taken mod 2^32, as `>>> 0` does)
void dropout(Args& a, F32 x, F32 out, double p, double seedd) {
  a.need(x.n == out.n, "dropout: sizes differ");
  if (!a.need(seedd == std::floor(seedd) && std::fabs(seedd) < 9.007199254740992e15, "dropout: seed must be an integer"))
    return;
  double sm = std::fmod(seedd, 4294967296.0);
  if (sm < 0) sm += 4294967296.0;
  const uint32_t seed = (uint32_t)sm;
  // keep when hash >= p * 2^32, i.e. hash >= ceil(p * 2^32)
  const double t = p * 4294967296.0;
  uint64_t thresh;
  if (!(t == t))
    thresh = 1ull << 32;  // NaN: nothing compares >=
  else if (t <= 0)
    thresh = 0;
  else if (t > 4294967295.0)
    thresh = 1ull << 32;
  else
    thresh = (uint64_t)std::ceil(t);
  const double scale = 1.0 / (1.0 - p);
  par_range(x.n, kElemGrain, [&](size_t lo, size_t hi) {
    K->dropout(x.p + lo, out.p + lo, hi - lo, (uint32_t)lo, seed, thresh, scale);
  });
}

void clip(Args&, F32 g, double limit) {
  const float lim = (float)limit;
  par_range(g.n, kElemGrain, [&](size_t lo, size_t hi) { K->clip(g.p + lo, hi - lo, lim); });
}

// sumSquares([Float32Array...]) -> number
double sumSquares(Args& a, Raw list) {
  bool isArr = false;
  napi_is_array(a.env, list.v, &isArr);
  if (!isArr) {
    a.fail_type("sumSquares: expected an array of Float32Array");
    return 0;
  }
  uint32_t len = 0;
  napi_get_array_length(a.env, list.v, &len);
  double total = 0;
  for (uint32_t i = 0; i < len; ++i) {
    napi_value el;
    napi_get_element(a.env, list.v, i, &el);
    bool is = false;
    napi_is_typedarray(a.env, el, &is);
    napi_typedarray_type t = napi_int8_array;
    size_t n = 0;
    void* data = nullptr;
    napi_value ab;
    size_t off;
    if (is) napi_get_typedarray_info(a.env, el, &t, &n, &data, &ab, &off);
    if (!is || t != napi_float32_array) {
      a.fail_type("sumSquares: element %u is not a Float32Array", i);
      return 0;
    }
    const float* x = static_cast<const float*>(data);
    const int P = charnn::num_threads();
    if (P > 1 && n >= 2 * kElemGrain) {
      double part[64] = {0};
      const int parts = P > 64 ? 64 : P;
      auto task = [&](int t2) {
        size_t lo = n * t2 / parts, hi = n * (t2 + 1) / parts;
        part[t2] = K->sum_squares(x + lo, hi - lo);
      };
      charnn::parallel(parts, task);
      for (int k = 0; k < parts; ++k) total += part[k];
    } else {
      total += K->sum_squares(x, n);
    }
  }
  return total;
}

// adagrad(p, g, mem, memComp, lr, eps)
void adagrad(Args& a, F32 p, F32 g, F32 mem, F32 comp, double lr, double eps) {
  if (!a.need(p.n == g.n && g.n == mem.n && mem.n == comp.n, "adagrad: sizes differ")) return;
  const float flr = (float)lr, feps = (float)eps;
  par_range(p.n, kElemGrain, [&](size_t lo, size_t hi) {
    K->adagrad(p.p + lo, g.p + lo, mem.p + lo, comp.p + lo, hi - lo, flr, feps);
  });
}

// rmsprop(p, g, ms, lr, alpha, eps)
void rmsprop(Args& a, F32 p, F32 g, F32 ms, double lr, double alpha, double eps) {
  if (!a.need(p.n == g.n && g.n == ms.n, "rmsprop: sizes differ")) return;
  par_range(p.n, kElemGrain, [&](size_t lo, size_t hi) {
    K->rmsprop(p.p + lo, g.p + lo, ms.p + lo, hi - lo, (float)lr, (float)alpha, (float)(1.0 - alpha), (float)eps);
  });
}

// adam(p, g, m, v, lr, beta1, beta2, eps, step)
void adam(Args& a, F32 p, F32 g, F32 m, F32 v, double lr, double b1, double b2, double eps, double step) {
  if (!a.need(p.n == g.n && g.n == m.n && m.n == v.n, "adam: sizes differ")) return;
  const float c1 = (float)(1.0 / (1.0 - std::pow(b1, step)));
  const float c2 = (float)(1.0 / (1.0 - std::pow(b2, step)));
  const float flr = (float)lr, fb1 = (float)b1, fb2 = (float)b2, feps = (float)eps;
  const float fb1c = (float)(1.0 - b1), fb2c = (float)(1.0 - b2);
  par_range(p.n, kElemGrain, [&](size_t lo, size_t hi) {
    K->adam(p.p + lo, g.p + lo, m.p + lo, v.p + lo, hi - lo, flr, fb1, fb1c, fb2, fb2c, feps, c1, c2);
  });
}

// map(fn, x, y): 0 exp, 1 tanh, 2 sigmoid (accuracy tests of the vector math)
void map(Args& a, Dim fn, F32 x, F32 y) {
  if (!a.need(x.n == y.n && fn.v <= 2, "map: bad arguments")) return;
  K->map((int)fn.v, x.p, y.p, x.n);
}

// The op table: JS name -> binding. src/backend/native.ts's NativeAddon lists the same names.
const struct {
  const char* name;
  napi_callback cb;
} kOps[] = {
    {"fill", charnn::bind<fill>},
    {"copy", charnn::bind<copy>},
    {"axpy", charnn::bind<axpy>},
    {"scale", charnn::bind<scale>},
    {"mul", charnn::bind<mul>},
    {"mulBackward", charnn::bind<mulBackward>},
    {"gemm", charnn::bind<gemm>},
    {"gemmBf16", charnn::bind<gemmBf16>},
    {"packB", charnn::bind<packB>},
    {"gemmPacked", charnn::bind<gemmPacked>},
    {"addRowVector", charnn::bind<addRowVector>},
    {"sumRows", charnn::bind<sumRows>},
    {"gatherRows", charnn::bind<gatherRows>},
    {"scatterAddRows", charnn::bind<scatterAddRows>},
    {"rnnForward", charnn::bind<rnnForward>},
    {"rnnBackward", charnn::bind<rnnBackward>},
    {"lstmForward", charnn::bind<lstmForward>},
    {"lstmBackward", charnn::bind<lstmBackward>},
    {"gruForward", charnn::bind<gruForward>},
    {"gruBackward", charnn::bind<gruBackward>},
    {"softmaxCrossEntropy", charnn::bind<softmaxCrossEntropy>},
    {"softmax", charnn::bind<softmax>},
    {"dropout", charnn::bind<dropout>},
    {"clip", charnn::bind<clip>},
    {"sumSquares", charnn::bind<sumSquares>},
    {"adagrad", charnn::bind<adagrad>},
    {"rmsprop", charnn::bind<rmsprop>},
    {"adam", charnn::bind<adam>},
    {"map", charnn::bind<map>},
};

// ---- module -------------------------------------------------------------------------------------

Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("abi", 6);  // keep equal to ADDON_ABI in src/backend/native.ts
  o.Set("isa", K->isa);
  o.Set("threads", charnn::num_threads());
  o.Set("mr", K->mr);
  o.Set("nr", K->nr);
  o.Set("bf16", charnn::gemm_bf16() != nullptr);
  o.Set("gemmParallelFlops", gemm_par_flops);
  return o;
}

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(info.Env(), "setThreads(n: number)").ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  charnn::set_num_threads(info[0].As<Napi::Number>().Int32Value());
  return Napi::Number::New(info.Env(), charnn::num_threads());
}

Napi::Value SetGemmParallelFlops(const Napi::CallbackInfo& info) {
  if (info.Length() >= 1 && info[0].IsNumber()) gemm_par_flops = info[0].As<Napi::Number>().DoubleValue();
  return Napi::Number::New(info.Env(), gemm_par_flops);
}

// poolRoundTrip(n, taskNs): average nanoseconds of a parallel region with one task per thread,
// each busy for taskNs (what splitting an op costs: compare with taskNs), for bench-kernels.mjs
Napi::Value PoolRoundTrip(const Napi::CallbackInfo& info) {
  int n = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : 1000;
  double taskNs = info.Length() > 1 && info[1].IsNumber() ? info[1].As<Napi::Number>().DoubleValue() : 0;
  if (n < 1) n = 1;
  auto task = [&](int) {
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    do clock_gettime(CLOCK_MONOTONIC, &b);
    while ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec) < taskNs);
  };
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (int i = 0; i < n; ++i) charnn::parallel(charnn::num_threads(), task);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double ns = (double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec);
  return Napi::Number::New(info.Env(), ns / n);
}

// tune(kc, ncb, packFlags): GEMM blocking knobs for scripts/bench-kernels.mjs
Napi::Value Tune(const Napi::CallbackInfo& info) {
  auto arg = [&](size_t i) { return info.Length() > i && info[i].IsNumber() ? info[i].As<Napi::Number>().DoubleValue() : -1.0; };
  K->tune((long)arg(0), (long)arg(1), (int)arg(2));
  return info.Env().Undefined();
}

// ---- stderr -----------------------------------------------------------------------------------
// Dawn (the webgpu package) writes warnings straight to file descriptor 2 while charnn asks it for
// an adapter; charnn's stderr carries only its own lines, so that call runs with fd 2 pointed at
// /dev/null. silenceStderr() returns the saved descriptor (-1 when it could not redirect);
// restoreStderr(fd) puts it back.

Napi::Value SilenceStderr(const Napi::CallbackInfo& info) {
  fflush(stderr);
  int saved = dup(2);
  int null_fd = open("/dev/null", O_WRONLY);
  if (saved < 0 || null_fd < 0 || dup2(null_fd, 2) < 0) {
    if (saved >= 0) close(saved);
    if (null_fd >= 0) close(null_fd);
    return Napi::Number::New(info.Env(), -1);
  }
  close(null_fd);
  return Napi::Number::New(info.Env(), saved);
}

Napi::Value RestoreStderr(const Napi::CallbackInfo& info) {
  int saved = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : -1;
  if (saved >= 0) {
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
  }
  return info.Env().Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  K = charnn::kernels();
  const struct {
    const char* name;
    Napi::Value (*fn)(const Napi::CallbackInfo&);
  } control[] = {
      {"info", Info},
      {"setThreads", SetThreads},
      {"setGemmParallelFlops", SetGemmParallelFlops},
      {"tune", Tune},
      {"poolRoundTrip", PoolRoundTrip},
      {"silenceStderr", SilenceStderr},
      {"restoreStderr", RestoreStderr},
  };
  for (const auto& c : control) exports.Set(c.name, Napi::Function::New(env, c.fn, c.name));
  for (const auto& op : kOps) {
    napi_value fn;
    napi_create_function(env, op.name, NAPI_AUTO_LENGTH, op.cb, nullptr, &fn);
    exports.Set(op.name, Napi::Value(env, fn));
  }
  return exports;
}

}  // namespace

NODE_API_MODULE(charnn_native, Init)
