// Baseline kernels, compiled with the target's default flags: SSE2 on x86-64, NEON on arm64,
// portable vector-extension code elsewhere. Always present; the fallback of the run-time dispatch.
#if defined(__AVX__)
#error "k_base.cc must be compiled without -mavx/-march=native: it is the fallback for every CPU"
#endif
#define CHARNN_ISA base
#if defined(__SSE2__)
#define CHARNN_ISA_NAME "sse2"
#elif defined(__aarch64__)
#define CHARNN_ISA_NAME "neon"
#else
#define CHARNN_ISA_NAME "generic"
#endif
#include "kernels_impl.h"

const charnn::Kernels* charnn::kernels_base() { return &charnn::base::table; }
