// Run-time pieces shared by the bindings: kernel selection and the thread pool.
#pragma once

#include "kernels.h"

namespace charnn {

/** The kernel table for this CPU (AVX-512 > AVX2+FMA > baseline), chosen once. CHARNN_ISA=avx2|base|sse2
 *  in the environment forces a lower level (for testing the fallbacks on a bigger machine). */
const Kernels* kernels();

/** The bf16 GEMM kernel (Kernels::gemm_bf16) when the chosen table has one and the CPU has
 *  AVX512-BF16 (cpuid, checked once), else null. */
void (*gemm_bf16())(const GemmArgs*, long, long, long, long);

/** Threads taking part in parallel regions, the caller included. */
int num_threads();
/** Change it (1 = serial). Clamped to [1, 64]; extra workers are started lazily. */
void set_num_threads(int n);

/**
 * Run fn(ctx, t) for t in [0, ntasks) on the caller and the pool's workers (tasks are handed out
 * dynamically, so a worker that wakes late simply takes fewer). Returns once all are done. When
 * the pool is busy with another caller (another JS thread), runs serially on the caller.
 */
void parallel_for(int ntasks, void (*fn)(void*, int), void* ctx);

template <class F>
inline void parallel(int ntasks, F& f) {
  parallel_for(ntasks, [](void* c, int t) { (*static_cast<F*>(c))(t); }, &f);
}

/** Split [0, n) into up to num_threads() ranges of at least `grain` elements (aligned to 64) and
 *  run f(lo, hi) on each. */
template <class F>
void par_range(size_t n, size_t grain, F&& f) {
  int P = num_threads();
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
  parallel((int)parts, task);
}

/** Split `rows` rows (each costing ~rowCost) into parallel row ranges of at least minWork and
 *  run f(lo, hi) on each. */
template <class F>
void par_rows(long rows, double rowCost, double minWork, F&& f) {
  int P = num_threads();
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
  parallel((int)parts, task);
}

}  // namespace charnn
