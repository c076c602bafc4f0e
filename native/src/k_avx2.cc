// AVX2 + FMA kernels (x86-64 only; compiled with -mavx2 -mfma, selected at run time).
#if !defined(__AVX2__) || !defined(__FMA__)
#error "k_avx2.cc must be compiled with -mavx2 -mfma"
#endif
#define CHARNN_ISA avx2
#define CHARNN_ISA_NAME "avx2"
#include "kernels_impl.h"

const charnn::Kernels* charnn::kernels_avx2() { return &charnn::avx2::table; }
