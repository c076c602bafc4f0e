// AVX-512 kernels (x86-64 only; compiled with -mavx512f -mavx2 -mfma, selected at run time).
#if !defined(__AVX512F__) || !defined(__FMA__)
#error "k_avx512.cc must be compiled with -mavx512f -mavx2 -mfma"
#endif
#define CHARNN_ISA avx512
#define CHARNN_ISA_NAME "avx512"
#include "kernels_impl.h"

const charnn::Kernels* charnn::kernels_avx512() { return &charnn::avx512::table; }
