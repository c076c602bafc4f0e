// Run-time pieces shared by the bindings: kernel selection and the thread pool.
#pragma once

#include "kernels.h"

namespace charnn {

/** The kernel table for this CPU (AVX-512 > AVX2+FMA > baseline), chosen once. CHARNN_ISA=avx2|base|sse2
 *  in the environment forces a lower level (for testing the fallbacks on a bigger machine). */
const Kernels* kernels();

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

}  // namespace charnn
