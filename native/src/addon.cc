// Node-API bindings of the native backend. Every op takes Float32Array / Int32Array views
// (byte offsets honoured: `subarray` views work) and writes results in place, zero-copy.
//
// The module is set up through node-addon-api; the op callbacks themselves are plain napi_callback
// functions, because they are called hundreds of thousands of times per second with up to ten
// arguments and node-addon-api's CallbackInfo heap-allocates beyond six. Arguments are validated
// here (lengths, ids in range): a bad call throws a JS error instead of touching foreign memory.
// Shapes are the JS side's business (src/backend/native.ts), which passes the few dimensions
// that cannot be derived from lengths.

#include <napi.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <time.h>

#include <atomic>
#include <cmath>

#include "kernels.h"
#include "runtime.h"

using charnn::GemmArgs;
using charnn::Kernels;

namespace {

const Kernels* K = nullptr;

// Subnormal floats (below 1.2e-38) flushed to zero, inputs and results (x86 MXCSR FTZ + DAZ), while
// a kernel runs: gradients that vanish through time reach that range, and every arithmetic op on
// a subnormal costs a ~150-cycle microcode assist on Intel cores: lstmBackward ran 6x slower in
// training than on random data. MXCSR is per thread and also governs V8's double arithmetic, so
// the JS thread's mode is restored on return (the pool's workers set it once, runtime.cc).
struct FlushSubnormals {
#if defined(__x86_64__) || defined(__i386__)
  unsigned saved;
  FlushSubnormals() : saved(_mm_getcsr()) { _mm_setcsr(saved | 0x8040u); }
  ~FlushSubnormals() { _mm_setcsr(saved); }
#endif
};

// ---- argument helpers -----------------------------------------------------------------------

struct Args {
  napi_env env;
  size_t argc;
  napi_value argv[12];
  bool failed = false;

  Args(napi_env e, napi_callback_info info, size_t expected) : env(e), argc(12) {
    napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
    if (argc < expected) fail_type("expected %zu arguments, got %zu", expected, argc);
  }

  template <class... T>
  void fail_type(const char* fmt, T... args) {
    if (failed) return;
    char msg[256];
    snprintf(msg, sizeof msg, fmt, args...);
    napi_throw_type_error(env, nullptr, msg);
    failed = true;
  }
  template <class... T>
  void fail_range(const char* fmt, T... args) {
    if (failed) return;
    char msg[256];
    snprintf(msg, sizeof msg, fmt, args...);
    napi_throw_range_error(env, nullptr, msg);
    failed = true;
  }

  bool is_null(size_t i) {
    napi_valuetype t;
    napi_typeof(env, argv[i], &t);
    return t == napi_null || t == napi_undefined;
  }

  void* typed(size_t i, napi_typedarray_type want, size_t* len, const char* what) {
    if (failed) return nullptr;
    bool is = false;
    napi_is_typedarray(env, argv[i], &is);
    if (!is) {
      fail_type("argument %zu must be a %s", i, what);
      return nullptr;
    }
    napi_typedarray_type t;
    void* data = nullptr;
    napi_value ab;
    size_t off;
    napi_get_typedarray_info(env, argv[i], &t, len, &data, &ab, &off);
    if (t != want) {
      fail_type("argument %zu must be a %s", i, what);
      return nullptr;
    }
    return data;
  }
  float* f32(size_t i, size_t* len) {
    return static_cast<float*>(typed(i, napi_float32_array, len, "Float32Array"));
  }
  int32_t* i32(size_t i, size_t* len) {
    return static_cast<int32_t*>(typed(i, napi_int32_array, len, "Int32Array"));
  }
  double num(size_t i) {
    double v = 0;
    if (failed) return 0;
    if (napi_get_value_double(env, argv[i], &v) != napi_ok) fail_type("argument %zu must be a number", i);
    return v;
  }
  long dim(size_t i) {
    double v = num(i);
    if (failed) return 0;
    if (!(v >= 0 && v <= 9.0e15) || v != std::floor(v)) {
      fail_range("argument %zu must be a non-negative integer", i);
      return 0;
    }
    return (long)v;
  }
  bool flag(size_t i) {
    if (failed) return false;
    bool b = false;
    if (napi_get_value_bool(env, argv[i], &b) != napi_ok) {
      // accept numbers too
      return num(i) != 0;
    }
    return b;
  }
  void need(bool ok, const char* what) {
    if (!ok) fail_range("%s", what);
  }
};

// Split [0, n) into up to num_threads() ranges of at least `grain` elements (aligned to 64).
template <class F>
void par_range(size_t n, size_t grain, F&& f) {
  int P = charnn::num_threads();
  if (P <= 1 || n < 2 * grain) {
    f((size_t)0, n);
    return;
  }
  size_t parts = n / grain;
  if (parts > (size_t)P) parts = (size_t)P;
  auto task = [&](int t) {
    size_t lo = n * (size_t)t / parts, hi = n * (size_t)(t + 1) / parts;
    lo = (lo + 63) & ~(size_t)63;
    hi = t + 1 == (int)parts ? n : ((hi + 63) & ~(size_t)63);
    if (hi > n) hi = n;
    if (lo < hi) f(lo, hi);
  };
  charnn::parallel((int)parts, task);
}

// Split `rows` rows (each costing ~rowCost) into parallel row ranges.
template <class F>
void par_rows(long rows, double rowCost, double minWork, F&& f) {
  int P = charnn::num_threads();
  if (P <= 1 || rows < 2 || rows * rowCost < 2 * minWork) {
    f(0L, rows);
    return;
  }
  long parts = (long)(rows * rowCost / minWork);
  if (parts > P) parts = P;
  if (parts > rows) parts = rows;
  auto task = [&](int t) {
    long lo = rows * t / parts, hi = rows * (t + 1) / parts;
    if (lo < hi) f(lo, hi);
  };
  charnn::parallel((int)parts, task);
}

constexpr size_t kElemGrain = 1 << 15;  // memory-bound elementwise ops: 32K floats per thread at least

// ---- memory / elementwise ---------------------------------------------------------------------

napi_value Fill(napi_env env, napi_callback_info info) {
  FlushSubnormals ftz;
  Args a(env, info, 2);
  size_t n;
  float* x = a.f32(0, &n);
  float v = (float)a.num(1);
  if (a.failed) return nullptr;
  par_range(n, kElemGrain, [&](size_t lo, size_t hi) { K->fill(x + lo, hi - lo, v); });
  return nullptr;
}

napi_value Copy(napi_env env, napi_callback_info info) {
  FlushSubnormals ftz;
  Args a(env, info, 2);
  size_t n, m;
  float* s = a.f32(0, &n);
  float* d = a.f32(1, &m);
  if (a.failed) return nullptr;
  a.need(n == m, "copy: sizes differ");
  if (a.failed) return nullptr;
  if (s == d) return nullptr;
  par_range(n, kElemGrain, [&](size_t lo, size_t hi) { memmove(d + lo, s + lo, (hi - lo) * sizeof(float)); });
  return nullptr;
}

napi_value Axpy(napi_env env, napi_callback_info info) {
  FlushSubnormals ftz;
  Args a(env, info, 3);
  float alpha = (float)a.num(0);
  size_t n, m;
  float* x = a.f32(1, &n);
  float* y = a.f32(2, &m);
  if (a.failed) return nullptr;
  a.need(n == m, "axpy: sizes differ");
  if (a.failed) return nullptr;
  par_range(n, kElemGrain, [&](size_t lo, size_t hi) { K->axpy(alpha, x + lo, y + lo, hi - lo); });
  return nullptr;
}

napi_value Scale(napi_env env, napi_callback_info info) {
  FlushSubnormals ftz;
  Args a(env, info, 2);
  size_t n;
  float* x = a.f32(0, &n);
  float s = (float)a.num(1);
  if (a.failed) return nullptr;
  par_range(n, kElemGrain, [&](size_t lo, size_t hi) { K->scale(x + lo, hi - lo, s); });
  return nullptr;
}

// ---- GEMM -------------------------------------------------------------------------------------

// Below this many flops a GEMM runs on the calling thread: waking/sharing with a worker costs a
// few microseconds, more than the product itself.
double gemm_par_flops = 4.0e5;

struct GemmTask {
  const GemmArgs* g;
  bool splitM;
  long blocks, parts, unit, total;
  void operator()(int t) const {
    long b0 = blocks * t / parts, b1 = blocks * (t + 1) / parts;
    long lo = b0 * unit, hi = b1 * unit;
    if (hi > total) hi = total;
    if (lo >= hi) return;
    if (splitM)
      K->gemm(g, lo, hi, 0, g->N);
    else
      K->gemm(g, 0, g->M, lo, hi);
  }
};

void run_gemm(const GemmArgs& g) {
  const int P = charnn::num_threads();
  const double flops = 2.0 * (double)g.M * (double)g.N * (double)g.K;
  if (P <= 1 || flops < gemm_par_flops) {
    K->gemm(&g, 0, g.M, 0, g.N);
    return;
  }
  // Split the larger side, so that what both threads read in full (and, for op(B) = B^T, pack)
  // is the smaller operand; fall back to the other side when the larger has too few tiles.
  const long mb = (g.M + K->mr - 1) / K->mr, nb = (g.N + K->nr - 1) / K->nr;
  bool splitM = g.M >= g.N;
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
    K->gemm(&g, 0, g.M, 0, g.N);
    return;
  }
  GemmTask task{&g, splitM, blocks, parts, unit, splitM ? g.M : g.N};
  charnn::parallel((int)parts, task);
}

// gemm(transA, transB, M, N, K, alpha, A, B, beta, C)
napi_value Gemm(napi_env env, napi_callback_info info) {
  FlushSubnormals ftz;
  Args a(env, info, 10);
  GemmArgs g;
  g.ta = a.flag(0);
  g.tb = a.flag(1);
  g.M = a.dim(2);
  g.N = a.dim(3);
  g.K = a.dim(4);
  g.alpha = (float)a.num(5);
  size_t na, nb, nc;
  g.A = a.f32(6, &na);
  g.B = a.f32(7, &nb);
  g.beta = (float)a.num(8);
  g.C = a.f32(9, &nc);
  if (a.failed) return nullptr;
  a.need(na == (size_t)(g.M * g.K), "gemm: A has the wrong size");
  a.need(nb == (size_t)(g.K * g.N), "gemm: B has the wrong size");
  a.need(nc == (size_t)(g.M * g.N), "gemm: C has the wrong size");
  if (a.failed) return nullptr;
  g.lda = g.ta ? g.M : g.K;
  g.ldb = g.tb ? g.K : g.N;
  g.ldc = g.N;
  if (g.M == 0 || g.N == 0) return nullptr;
  run_gemm(g);
  return nullptr;
}

// ---- rows -------------------------------------------------------------------------------------

napi_value AddRowVector(napi_env env, napi_callback_info info) {
  FlushSubnormals ftz;
  Args a(env, info, 2);
  size_t n, m;
  float* x = a.f32(0, &n);
  float* b = a.f32(1, &m);
  if (a.failed) return nullptr;
  a.need(m > 0 ? n % m == 0 : n == 0, "addRowVector: x's size is not a multiple of b's");
  if (a.failed || m == 0) return nullptr;
  long rows = (long)(n / m), cols = (long)m;
  par_rows(rows, (double)cols, (double)kElemGrain,
           [&](long lo, long hi) { K->add_row_vector(x + lo * cols, hi - lo, cols, b); });
  return nullptr;
}

napi_value SumRows(napi_env env, napi_callback_info info) {
  FlushSubnormals ftz;
  Args a(env, info, 3);
  size_t n, m;
  float* x = a.f32(0, &n);
  float* out = a.f32(1, &m);
  int acc = a.flag(2);
  if (a.failed) return nullptr;
  a.need(m > 0 ? n % m == 0 : n == 0, "sumRows: x's size is not a multiple of out's");
  if (a.failed || m == 0) return nullptr;
  long rows = (long)(n / m), cols = (long)m;
  // split columns (each thread sums whole columns: same result as serial)
  int P = charnn::num_threads();
  if (P > 1 && n >= 2 * kElemGrain && cols >= 256) {
    long parts = P;
    auto task = [&](int t) {
      long c0 = (cols * t / parts) & ~63L, c1 = t + 1 == parts ? cols : (cols * (t + 1) / parts) & ~63L;
      if (c0 < c1) K->sum_rows(x, rows, cols, out, acc, c0, c1);
    };
    charnn::parallel((int)parts, task);
  } else {
    K->sum_rows(x, rows, cols, out, acc, 0, cols);
  }
  return nullptr;
}

napi_value GatherRows(napi_env env, napi_callback_info info) {
  FlushSubnormals ftz;
  Args a(env, info, 3);
  size_t nt, ni, no;
  float* table = a.f32(0, &nt);
  int32_t* ids = a.i32(1, &ni);
  float* out = a.f32(2, &no);
  if (a.failed) return nullptr;
  if (ni == 0) {
    a.need(no == 0, "gatherRows: out must be empty for no ids");
    return nullptr;
  }
  a.need(no % ni == 0, "gatherRows: out's size is not a multiple of the number of ids");
  if (a.failed) return nullptr;
  size_t D = no / ni;
  if (D == 0) return nullptr;
  a.need(nt % D == 0, "gatherRows: table's size is not a multiple of the row width");
  if (a.failed) return nullptr;
  long V = (long)(nt / D);
  for (size_t i = 0; i < ni; ++i)
    if (ids[i] < 0 || ids[i] >= V) {
      a.fail_range("gatherRows: id %d at %zu out of range [0, %ld)", ids[i], i, V);
      return nullptr;
    }
  for (size_t i = 0; i < ni; ++i) memcpy(out + i * D, table + (size_t)ids[i] * D, D * sizeof(float));
  return nullptr;
}

napi_value ScatterAddRows(napi_env env, napi_callback_info info) {
  FlushSubnormals ftz;
  Args a(env, info, 3);
  size_t no, ni, nt;
  float* dOut = a.f32(0, &no);
  int32_t* ids = a.i32(1, &ni);
  float* dTable = a.f32(2, &nt);
  if (a.failed) return nullptr;
  if (ni == 0) {
    a.need(no == 0, "scatterAddRows: dOut must be empty for no ids");
    return nullptr;
  }
  a.need(no % ni == 0, "scatterAddRows: dOut's size is not a multiple of the number of ids");
  if (a.failed) return nullptr;
  size_t D = no / ni;
  if (D == 0) return nullptr;
  a.need(nt % D == 0, "scatterAddRows: dTable's size is not a multiple of the row width");
  if (a.failed) return nullptr;
  long V = (long)(nt / D);
  for (size_t i = 0; i < ni; ++i)
    if (ids[i] < 0 || ids[i] >= V) {
      a.fail_range("scatterAddRows: id %d at %zu out of range [0, %ld)", ids[i], i, V);
      return nullptr;
    }
  for (size_t i = 0; i < ni; ++i) K->axpy(1.0f, dOut + i * D, dTable + (size_t)ids[i] * D, D);
  return nullptr;
}

// ---- cells --------------------------------------------------------------------------------------

constexpr double kCellMinWork = 2048;  // elements of H per thread (several transcendentals each)

napi_value RnnForward(napi_env env, napi_callback_info info) {
  FlushSubnormals ftz;
  Args a(env, info, 2);
  size_t n, m;
  float* pre = a.f32(0, &n);
  float* h = a.f32(1, &m);
  if (a.failed) return nullptr;
  a.need(n == m, "rnnForward: sizes differ");
  if (a.failed) return nullptr;
  par_range(n, (size_t)kCellMinWork, [&](size_t lo, size_t hi) { K->rnn_forward(pre + lo, h + lo, hi - lo); });
  return nullptr;
}

napi_value RnnBackward(napi_env env, napi_callback_info info) {
  FlushSubnormals ftz;
  Args a(env, info, 3);
  size_t n1, n2, n3;
  float* h = a.f32(0, &n1);
  float* dh = a.f32(1, &n2);
  float* dPre = a.f32(2, &n3);
  if (a.failed) return nullptr;
  a.need(n1 == n2 && n2 == n3, "rnnBackward: sizes differ");
  if (a.failed) return nullptr;
  par_range(n1, kElemGrain, [&](size_t lo, size_t hi) { K->rnn_backward(h + lo, dh + lo, dPre + lo, hi - lo); });
  return nullptr;
}

// lstmForward(H, gates, cPrev, c, h)
napi_value LstmForward(napi_env env, napi_callback_info info) {
  FlushSubnormals ftz;
  Args a(env, info, 5);
  long H = a.dim(0);
  size_t ng, ncp, nc, nh;
  float* gates = a.f32(1, &ng);
  float* cPrev = a.f32(2, &ncp);
  float* c = a.f32(3, &nc);
  float* h = a.f32(4, &nh);
  if (a.failed) return nullptr;
  a.need(H > 0 && nc % H == 0 && ng == 4 * nc && ncp == nc && nh == nc, "lstmForward: inconsistent sizes");
  if (a.failed) return nullptr;
  long rows = (long)nc / H;
  par_rows(rows, (double)H, kCellMinWork, [&](long lo, long hi) {
    K->lstm_forward(gates + lo * 4 * H, cPrev + lo * H, c + lo * H, h + lo * H, hi - lo, H);
  });
  return nullptr;
}

// lstmBackward(H, gates, cPrev, c, dh, dc, dGates)
napi_value LstmBackward(napi_env env, napi_callback_info info) {
  FlushSubnormals ftz;
  Args a(env, info, 7);
  long H = a.dim(0);
  size_t ng, ncp, nc, ndh, ndc, ndg;
  float* gates = a.f32(1, &ng);
  float* cPrev = a.f32(2, &ncp);
  float* c = a.f32(3, &nc);
  float* dh = a.f32(4, &ndh);
  float* dc = a.f32(5, &ndc);
  float* dGates = a.f32(6, &ndg);
  if (a.failed) return nullptr;
  a.need(H > 0 && nc % H == 0 && ng == 4 * nc && ndg == ng && ncp == nc && ndh == nc && ndc == nc,
         "lstmBackward: inconsistent sizes");
  if (a.failed) return nullptr;
  long rows = (long)nc / H;
  par_rows(rows, (double)H, kCellMinWork, [&](long lo, long hi) {
    K->lstm_backward(gates + lo * 4 * H, cPrev + lo * H, c + lo * H, dh + lo * H, dc + lo * H, dGates + lo * 4 * H,
                     hi - lo, H);
  });
  return nullptr;
}

// gruForward(H, xg, hg, hPrev, h)
napi_value GruForward(napi_env env, napi_callback_info info) {
  FlushSubnormals ftz;
  Args a(env, info, 5);
  long H = a.dim(0);
  size_t nx, nhg, nhp, nh;
  float* xg = a.f32(1, &nx);
  float* hg = a.f32(2, &nhg);
  float* hPrev = a.f32(3, &nhp);
  float* h = a.f32(4, &nh);
  if (a.failed) return nullptr;
  a.need(H > 0 && nh % H == 0 && nx == 3 * nh && nhg == nx && nhp == nh, "gruForward: inconsistent sizes");
  if (a.failed) return nullptr;
  long rows = (long)nh / H;
  par_rows(rows, (double)H, kCellMinWork, [&](long lo, long hi) {
    K->gru_forward(xg + lo * 3 * H, hg + lo * 3 * H, hPrev + lo * H, h + lo * H, hi - lo, H);
  });
  return nullptr;
}

// gruBackward(H, gates, hg, hPrev, dh, dXg, dHg, dhPrev)
napi_value GruBackward(napi_env env, napi_callback_info info) {
  FlushSubnormals ftz;
  Args a(env, info, 8);
  long H = a.dim(0);
  size_t ng, nhg, nhp, ndh, ndx, ndhg, ndhp;
  float* gates = a.f32(1, &ng);
  float* hg = a.f32(2, &nhg);
  float* hPrev = a.f32(3, &nhp);
  float* dh = a.f32(4, &ndh);
  float* dXg = a.f32(5, &ndx);
  float* dHg = a.f32(6, &ndhg);
  float* dhPrev = a.f32(7, &ndhp);
  if (a.failed) return nullptr;
  a.need(H > 0 && nhp % H == 0 && ng == 3 * nhp && nhg == ng && ndx == ng && ndhg == ng && ndh == nhp &&
             ndhp == nhp,
         "gruBackward: inconsistent sizes");
  if (a.failed) return nullptr;
  long rows = (long)nhp / H;
  par_rows(rows, (double)H, kCellMinWork, [&](long lo, long hi) {
    K->gru_backward(gates + lo * 3 * H, hg + lo * 3 * H, hPrev + lo * H, dh + lo * H, dXg + lo * 3 * H,
                    dHg + lo * 3 * H, dhPrev + lo * H, hi - lo, H);
  });
  return nullptr;
}

// ---- softmax ----------------------------------------------------------------------------------

// softmaxCrossEntropy(V, logits, targets, losses, dLogits | null, gradScale)
napi_value SoftmaxXent(napi_env env, napi_callback_info info) {
  FlushSubnormals ftz;
  Args a(env, info, 6);
  long V = a.dim(0);
  size_t nl, nt, nloss, nd = 0;
  float* logits = a.f32(1, &nl);
  int32_t* targets = a.i32(2, &nt);
  float* losses = a.f32(3, &nloss);
  float* d = nullptr;
  if (!a.failed && !a.is_null(4)) d = a.f32(4, &nd);
  float gs = (float)a.num(5);
  if (a.failed) return nullptr;
  a.need(V > 0 && nl == nt * (size_t)V && nloss == nt && (!d || nd == nl), "softmaxCrossEntropy: inconsistent sizes");
  if (a.failed) return nullptr;
  for (size_t i = 0; i < nt; ++i)
    if (targets[i] < 0 || targets[i] >= V) {
      a.fail_range("softmaxCrossEntropy: target %d at %zu out of range [0, %ld)", targets[i], i, V);
      return nullptr;
    }
  par_rows((long)nt, (double)V, 16384.0, [&](long lo, long hi) {
    K->softmax_xent(logits + lo * V, targets + lo, losses + lo, d ? d + lo * V : nullptr, hi - lo, V, gs);
  });
  return nullptr;
}

// softmax(V, logits, probs, temperature)
napi_value Softmax(napi_env env, napi_callback_info info) {
  FlushSubnormals ftz;
  Args a(env, info, 4);
  long V = a.dim(0);
  size_t nl, np;
  float* logits = a.f32(1, &nl);
  float* probs = a.f32(2, &np);
  double T = a.num(3);
  if (a.failed) return nullptr;
  a.need(V > 0 && nl % (size_t)V == 0 && np == nl, "softmax: inconsistent sizes");
  a.need(T > 0, "softmax: temperature must be > 0");
  if (a.failed) return nullptr;
  float invT = (float)(1.0 / T);
  par_rows((long)(nl / V), (double)V, 16384.0,
           [&](long lo, long hi) { K->softmax(logits + lo * V, probs + lo * V, hi - lo, V, invT); });
  return nullptr;
}

// ---- dropout, optimisers ----------------------------------------------------------------------

// dropout(x, out, p, seed) — seed: an integer (taken mod 2^32, as `>>> 0` does)
napi_value Dropout(napi_env env, napi_callback_info info) {
  FlushSubnormals ftz;
  Args a(env, info, 4);
  size_t n, m;
  float* x = a.f32(0, &n);
  float* out = a.f32(1, &m);
  double p = a.num(2);
  double seedd = a.num(3);
  if (a.failed) return nullptr;
  a.need(n == m, "dropout: sizes differ");
  a.need(seedd == std::floor(seedd) && std::fabs(seedd) < 9.007199254740992e15, "dropout: seed must be an integer");
  if (a.failed) return nullptr;
  double sm = std::fmod(seedd, 4294967296.0);
  if (sm < 0) sm += 4294967296.0;
  uint32_t seed = (uint32_t)sm;
  // keep when hash >= p * 2^32, i.e. hash >= ceil(p * 2^32)
  double t = p * 4294967296.0;
  uint64_t thresh;
  if (!(t == t))
    thresh = 1ull << 32;  // NaN: nothing compares >=
  else if (t <= 0)
    thresh = 0;
  else if (t > 4294967295.0)
    thresh = 1ull << 32;
  else
    thresh = (uint64_t)std::ceil(t);
  double scale = 1.0 / (1.0 - p);
  par_range(n, kElemGrain, [&](size_t lo, size_t hi) {
    K->dropout(x + lo, out + lo, hi - lo, (uint32_t)lo, seed, thresh, scale);
  });
  return nullptr;
}

napi_value Clip(napi_env env, napi_callback_info info) {
  FlushSubnormals ftz;
  Args a(env, info, 2);
  size_t n;
  float* g = a.f32(0, &n);
  float lim = (float)a.num(1);
  if (a.failed) return nullptr;
  par_range(n, kElemGrain, [&](size_t lo, size_t hi) { K->clip(g + lo, hi - lo, lim); });
  return nullptr;
}

// sumSquares([Float32Array...]) -> number
napi_value SumSquares(napi_env env, napi_callback_info info) {
  FlushSubnormals ftz;
  Args a(env, info, 1);
  if (a.failed) return nullptr;
  bool isArr = false;
  napi_is_array(env, a.argv[0], &isArr);
  if (!isArr) {
    a.fail_type("sumSquares: expected an array of Float32Array");
    return nullptr;
  }
  uint32_t len = 0;
  napi_get_array_length(env, a.argv[0], &len);
  double total = 0;
  for (uint32_t i = 0; i < len; ++i) {
    napi_value el;
    napi_get_element(env, a.argv[0], i, &el);
    bool is = false;
    napi_is_typedarray(env, el, &is);
    napi_typedarray_type t = napi_int8_array;
    size_t n = 0;
    void* data = nullptr;
    napi_value ab;
    size_t off;
    if (is) napi_get_typedarray_info(env, el, &t, &n, &data, &ab, &off);
    if (!is || t != napi_float32_array) {
      a.fail_type("sumSquares: element %u is not a Float32Array", i);
      return nullptr;
    }
    const float* x = static_cast<const float*>(data);
    int P = charnn::num_threads();
    if (P > 1 && n >= 2 * kElemGrain) {
      double part[64] = {0};
      int parts = P > 64 ? 64 : P;
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
  napi_value r;
  napi_create_double(env, total, &r);
  return r;
}

// adagrad(p, g, mem, memComp, lr, eps)
napi_value Adagrad(napi_env env, napi_callback_info info) {
  FlushSubnormals ftz;
  Args a(env, info, 6);
  size_t n1, n2, n3, n4;
  float* p = a.f32(0, &n1);
  float* g = a.f32(1, &n2);
  float* mem = a.f32(2, &n3);
  float* comp = a.f32(3, &n4);
  float lr = (float)a.num(4), eps = (float)a.num(5);
  if (a.failed) return nullptr;
  a.need(n1 == n2 && n2 == n3 && n3 == n4, "adagrad: sizes differ");
  if (a.failed) return nullptr;
  par_range(n1, kElemGrain,
            [&](size_t lo, size_t hi) { K->adagrad(p + lo, g + lo, mem + lo, comp + lo, hi - lo, lr, eps); });
  return nullptr;
}

// rmsprop(p, g, ms, lr, alpha, eps)
napi_value Rmsprop(napi_env env, napi_callback_info info) {
  FlushSubnormals ftz;
  Args a(env, info, 6);
  size_t n1, n2, n3;
  float* p = a.f32(0, &n1);
  float* g = a.f32(1, &n2);
  float* ms = a.f32(2, &n3);
  double lr = a.num(3), alpha = a.num(4), eps = a.num(5);
  if (a.failed) return nullptr;
  a.need(n1 == n2 && n2 == n3, "rmsprop: sizes differ");
  if (a.failed) return nullptr;
  par_range(n1, kElemGrain, [&](size_t lo, size_t hi) {
    K->rmsprop(p + lo, g + lo, ms + lo, hi - lo, (float)lr, (float)alpha, (float)(1.0 - alpha), (float)eps);
  });
  return nullptr;
}

// adam(p, g, m, v, lr, beta1, beta2, eps, step)
napi_value Adam(napi_env env, napi_callback_info info) {
  FlushSubnormals ftz;
  Args a(env, info, 9);
  size_t n1, n2, n3, n4;
  float* p = a.f32(0, &n1);
  float* g = a.f32(1, &n2);
  float* m = a.f32(2, &n3);
  float* v = a.f32(3, &n4);
  double lr = a.num(4), b1 = a.num(5), b2 = a.num(6), eps = a.num(7), step = a.num(8);
  if (a.failed) return nullptr;
  a.need(n1 == n2 && n2 == n3 && n3 == n4, "adam: sizes differ");
  if (a.failed) return nullptr;
  float c1 = (float)(1.0 / (1.0 - std::pow(b1, step)));
  float c2 = (float)(1.0 / (1.0 - std::pow(b2, step)));
  float flr = (float)lr, fb1 = (float)b1, fb2 = (float)b2, feps = (float)eps;
  float fb1c = (float)(1.0 - b1), fb2c = (float)(1.0 - b2);
  par_range(n1, kElemGrain, [&](size_t lo, size_t hi) {
    K->adam(p + lo, g + lo, m + lo, v + lo, hi - lo, flr, fb1, fb1c, fb2, fb2c, feps, c1, c2);
  });
  return nullptr;
}

// map(fn, x, y): 0 exp, 1 tanh, 2 sigmoid (accuracy tests of the vector math)
napi_value Map(napi_env env, napi_callback_info info) {
  FlushSubnormals ftz;
  Args a(env, info, 3);
  long fn = a.dim(0);
  size_t n, m;
  float* x = a.f32(1, &n);
  float* y = a.f32(2, &m);
  if (a.failed) return nullptr;
  a.need(n == m && fn <= 2, "map: bad arguments");
  if (a.failed) return nullptr;
  K->map((int)fn, x, y, n);
  return nullptr;
}

// ---- module -------------------------------------------------------------------------------------

Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("abi", 2);  // keep equal to ADDON_ABI in src/backend/native.ts
  o.Set("isa", K->isa);
  o.Set("threads", charnn::num_threads());
  o.Set("mr", K->mr);
  o.Set("nr", K->nr);
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

void add(Napi::Env env, Napi::Object exports, const char* name, napi_callback cb) {
  napi_value fn;
  napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, nullptr, &fn);
  exports.Set(name, Napi::Value(env, fn));
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
  exports.Set("info", Napi::Function::New(env, Info, "info"));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads, "setThreads"));
  exports.Set("setGemmParallelFlops", Napi::Function::New(env, SetGemmParallelFlops, "setGemmParallelFlops"));
  exports.Set("tune", Napi::Function::New(env, Tune, "tune"));
  exports.Set("poolRoundTrip", Napi::Function::New(env, PoolRoundTrip, "poolRoundTrip"));
  exports.Set("silenceStderr", Napi::Function::New(env, SilenceStderr, "silenceStderr"));
  exports.Set("restoreStderr", Napi::Function::New(env, RestoreStderr, "restoreStderr"));
  add(env, exports, "fill", Fill);
  add(env, exports, "copy", Copy);
  add(env, exports, "axpy", Axpy);
  add(env, exports, "scale", Scale);
  add(env, exports, "gemm", Gemm);
  add(env, exports, "addRowVector", AddRowVector);
  add(env, exports, "sumRows", SumRows);
  add(env, exports, "gatherRows", GatherRows);
  add(env, exports, "scatterAddRows", ScatterAddRows);
  add(env, exports, "rnnForward", RnnForward);
  add(env, exports, "rnnBackward", RnnBackward);
  add(env, exports, "lstmForward", LstmForward);
  add(env, exports, "lstmBackward", LstmBackward);
  add(env, exports, "gruForward", GruForward);
  add(env, exports, "gruBackward", GruBackward);
  add(env, exports, "softmaxCrossEntropy", SoftmaxXent);
  add(env, exports, "softmax", Softmax);
  add(env, exports, "dropout", Dropout);
  add(env, exports, "clip", Clip);
  add(env, exports, "sumSquares", SumSquares);
  add(env, exports, "adagrad", Adagrad);
  add(env, exports, "rmsprop", Rmsprop);
  add(env, exports, "adam", Adam);
  add(env, exports, "map", Map);
  return exports;
}

}  // namespace

NODE_API_MODULE(charnn_native, Init)
