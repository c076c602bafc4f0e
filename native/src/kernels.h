// The kernel table: every numeric routine of the native backend, compiled once per instruction
// set (k_base.cc, k_avx2.cc, k_avx512.cc, each including kernels_impl.h; see binding.gyp) and
// chosen at load time by runtime.cc. Kernels are serial and work on the range they are given;
// splitting work across threads is the caller's business (addon.cc, its run_gemm included).
//
// This header is included by translation units compiled with different -m flags, so it must
// declare nothing but plain data types and functions with external C++ linkage defined in exactly
// one translation unit: an inline function here would be emitted once per ISA and the linker
// could keep the AVX-512 copy for everyone (an illegal instruction on an AVX2 machine).
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace charnn {

/** C = alpha * op(A) op(B) + beta * C, row-major; op(A): [M, K], op(B): [K, N]. */
struct GemmArgs {
  int ta, tb;
  long M, N, K;
  float alpha;
  const float* A;
  long lda;
  const float* B;
  long ldb;
  float beta;
  float* C;
  long ldc;
  // op(B) pre-packed by pack_b (null: the driver packs it itself), and the K block depth it was
  // packed with. The driver uses it only where it would have blocked K the same way, so that a
  // product gives the same bits with and without it; elsewhere it reads B. The bf16 kernel ignores it.
  const float* Bp;
  long bkc;
};

struct Kernels {
  const char* isa;
  int mr, nr;  // GEMM micro-tile (rows of C, columns of C)

  // C[m0:m1, n0:n1] of the product (packs into this thread's scratch buffers).
  void (*gemm)(const GemmArgs* g, long m0, long m1, long n0, long n1);

  void (*fill)(float* x, size_t n, float v);
  void (*axpy)(float a, const float* x, float* y, size_t n);
  void (*scale)(float* x, size_t n, float s);
  // out = a * b elementwise, and its gradient dA = dOut * b, dB = dOut * a (the mLSTM's m)
  void (*mul)(const float* a, const float* b, float* out, size_t n);
  void (*mul_backward)(const float* a, const float* b, const float* dOut, float* dA, float* dB, size_t n);
  void (*add_row_vector)(float* x, long rows, long cols, const float* b);
  // out[c0:c1] (+)= column sums of x[:, c0:c1]
  void (*sum_rows)(const float* x, long rows, long cols, float* out, int accumulate, long c0, long c1);

  void (*rnn_forward)(const float* pre, float* h, size_t n);
  void (*rnn_backward)(const float* h, const float* dh, float* dPre, size_t n);
  // rows are B streams; pointers already offset to the first row to process
  void (*lstm_forward)(float* gates, const float* cPrev, float* c, float* h, long rows, long H);
  void (*lstm_backward)(const float* gates, const float* cPrev, const float* c, const float* dh, float* dc,
                        float* dGates, long rows, long H);
  void (*gru_forward)(float* xg, const float* hg, const float* hPrev, float* h, long rows, long H);
  void (*gru_backward)(const float* gates, const float* hg, const float* hPrev, const float* dh, float* dXg,
                       float* dHg, float* dhPrev, long rows, long H);

  // targets already validated to lie in [0, V); dLogits may be null or equal logits
  void (*softmax_xent)(const float* logits, const int32_t* targets, float* losses, float* dLogits, long rows,
                       long V, float gradScale);
  void (*softmax)(const float* logits, float* probs, long rows, long V, float invTemperature);

  // keep element i (global index index0 + i) when hash(seed, index) >= thresh (thresh <= 2^32)
  void (*dropout)(const float* x, float* out, size_t n, uint32_t index0, uint32_t seed, uint64_t thresh,
                  double scale);

  void (*clip)(float* g, size_t n, float limit);
  double (*sum_squares)(const float* x, size_t n);
  // mem accumulated with Kahan compensation in memComp, in float32 exactly as backend.ts says
  void (*adagrad)(float* p, const float* g, float* mem, float* memComp, size_t n, float lr, float eps);
  // a1 = 1 - alpha, b1c = 1 - b1, b2c = 1 - b2 are passed in, computed in double: 1 - (float)0.999
  // is 1.3e-5 off 0.001. c1, c2: the bias corrections 1 / (1 - b^step).
  void (*rmsprop)(float* p, const float* g, float* ms, size_t n, float lr, float alpha, float a1, float eps);
  void (*adam)(float* p, const float* g, float* m, float* v, size_t n, float lr, float b1, float b1c, float b2,
               float b2c, float eps, float c1, float c2);

  // elementwise maps exposed for accuracy tests: 0 exp, 1 tanh, 2 sigmoid
  void (*map)(int fn, const float* x, float* y, size_t n);

  // GEMM blocking (for benchmarking): K block depth, B block width, packing flags; <= 0 / < 0 keep
  void (*tune)(long kc, long ncb, int flags);

  // The gemm entry with op(A), op(B) rounded to bfloat16 and float32 sums (gemm_bf16_impl.h);
  // null below AVX-512, and callable only where the CPU has AVX512-BF16 (runtime.h: gemm_bf16()).
  void (*gemm_bf16)(const GemmArgs* g, long m0, long m1, long n0, long n1);

  // Packs op(B) of g (g->B, g->tb, g->K, g->N, g->ldb; the rest unused) for every column into
  // dst, in the driver's sliver layout, K blocked as the driver blocks a product over all N
  // columns: dst needs pack_b_size(K, N) floats. Returns that K block depth (GemmArgs::bkc).
  long (*pack_b)(const GemmArgs* g, float* dst);
};

const Kernels* kernels_base();
#if defined(__x86_64__) || defined(_M_X64)
const Kernels* kernels_avx2();
const Kernels* kernels_avx512();
#endif

/** Thread-local, 64-byte aligned scratch memory (slot 0..3), grown on demand; never freed while
 *  the thread lives. Defined in the baseline translation unit. Returns null on allocation failure. */
float* scratch(int slot, size_t floats);

}  // namespace charnn
