// A thin SIMD layer over GCC/Clang vector extensions, sized by the instruction set this translation
// unit is compiled for (-mavx512f: 16 lanes, -mavx2: 8 lanes, otherwise 4: SSE2 on x86-64, NEON on
// arm64, plain scalar code elsewhere). Only included from kernels_impl.h, inside the per-ISA
// namespace, so that nothing here has external linkage shared between ISAs.
//
// Everything is `static inline`: no out-of-line copy can be shared with another ISA's unit.

#if defined(__AVX512F__)
#define CHARNN_W 16
#elif defined(__AVX__)
#define CHARNN_W 8
#else
#define CHARNN_W 4
#endif

constexpr int W = CHARNN_W;

typedef float vf __attribute__((vector_size(W * 4)));
typedef int32_t vi __attribute__((vector_size(W * 4)));
typedef uint32_t vu __attribute__((vector_size(W * 4)));
typedef float vh __attribute__((vector_size(W * 2)));   // half a vector of floats
typedef double vd __attribute__((vector_size(W * 4)));  // W/2 doubles

#define CHARNN_INLINE static inline __attribute__((always_inline))

CHARNN_INLINE vf ld(const float* p) {
  vf v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}
CHARNN_INLINE void st(float* p, vf v) { __builtin_memcpy(p, &v, sizeof v); }
// (not `vf{} + s`: 0 + s is not an identity for s = -0, so the compiler must emit the add)
CHARNN_INLINE vf splat(float s) {
#if defined(__AVX512F__)
  return (vf)_mm512_set1_ps(s);
#elif defined(__AVX__)
  return (vf)_mm256_set1_ps(s);
#elif defined(__SSE2__)
  return (vf)_mm_set1_ps(s);
#elif defined(__aarch64__)
  return (vf)vdupq_n_f32(s);
#else
  vf v;
  for (int i = 0; i < W; ++i) v[i] = s;
  return v;
#endif
}
CHARNN_INLINE vi splati(int32_t s) { return vi{} + s; }
CHARNN_INLINE vu splatu(uint32_t s) { return vu{} + s; }

CHARNN_INLINE vi iota() {
  vi v;
  for (int i = 0; i < W; ++i) v[i] = i;
  return v;
}

// m ? a : b (m lanes are all-ones or all-zeros)
CHARNN_INLINE vf sel(vi m, vf a, vf b) { return (vf)(((vi)a & m) | ((vi)b & ~m)); }

// a > b ? a : b; a NaN in a is dropped, a NaN in b kept (callers rely on NaN reaching exp anyway)
CHARNN_INLINE vf vmax(vf a, vf b) { return sel(a > b, a, b); }
CHARNN_INLINE vf vabs(vf a) { return (vf)((vi)a & splati(0x7fffffff)); }
CHARNN_INLINE vf copysign_of(vf mag, vf sgn) {
  return (vf)(((vi)mag & splati(0x7fffffff)) | ((vi)sgn & splati((int32_t)0x80000000u)));
}

// n < W elements: partial load (zero-filled) and store
CHARNN_INLINE vf ldp(const float* p, long n) {
#if defined(__AVX512F__)
  return (vf)_mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1u), p);
#elif defined(__AVX2__)
  __m256i m = (__m256i)(iota() < splati((int32_t)n));
  return (vf)_mm256_maskload_ps(p, m);
#else
  float t[W] = {};
  __builtin_memcpy(t, p, (size_t)n * 4);
  return ld(t);
#endif
}
CHARNN_INLINE void stp(float* p, vf v, long n) {
#if defined(__AVX512F__)
  _mm512_mask_storeu_ps(p, (__mmask16)((1u << n) - 1u), (__m512)v);
#elif defined(__AVX2__)
  __m256i m = (__m256i)(iota() < splati((int32_t)n));
  _mm256_maskstore_ps(p, m, (__m256)v);
#else
  float t[W];
  st(t, v);
  __builtin_memcpy(p, t, (size_t)n * 4);
#endif
}

// The value as rounded to float32, hidden from the optimiser: an FMA cannot be contracted
// across it (-ffp-contract=fast would otherwise fuse g * g - c, which must round g * g first).
CHARNN_INLINE vf rounded(vf x) {
#if defined(__x86_64__) || defined(__i386__)
  __asm__("" : "+v"(x));
#elif defined(__aarch64__)
  __asm__("" : "+w"(x));
#else
  volatile vf t = x;
  x = t;
#endif
  return x;
}

CHARNN_INLINE vf vsqrt(vf a) {
#if defined(__AVX512F__)
  return (vf)_mm512_sqrt_ps((__m512)a);
#elif defined(__AVX__)
  return (vf)_mm256_sqrt_ps((__m256)a);
#elif defined(__SSE2__)
  return (vf)_mm_sqrt_ps((__m128)a);
#elif defined(__aarch64__)
  return (vf)vsqrtq_f32((float32x4_t)a);
#else
  vf r;
  for (int i = 0; i < W; ++i) r[i] = __builtin_sqrtf(a[i]);
  return r;
#endif
}

// horizontal reductions as shuffle trees (a scalar loop over lanes is a 16-deep dependency chain)
CHARNN_INLINE float hsum(vf v) {
#if defined(__AVX512F__)
  __m256 h = _mm256_add_ps(_mm512_castps512_ps256((__m512)v),
                           _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd((__m512)v), 1)));
  __m128 q = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
#elif defined(__AVX__)
  __m128 q = _mm_add_ps(_mm256_castps256_ps128((__m256)v), _mm256_extractf128_ps((__m256)v, 1));
#elif defined(__SSE2__)
  __m128 q = (__m128)v;
#endif
#if defined(__SSE2__)
  q = _mm_add_ps(q, _mm_movehl_ps(q, q));
  q = _mm_add_ss(q, _mm_shuffle_ps(q, q, 1));
  return _mm_cvtss_f32(q);
#else
  float t[W];
  st(t, v);
  for (int w = W / 2; w > 0; w /= 2)
    for (int i = 0; i < w; ++i) t[i] += t[i + w];
  return t[0];
#endif
}

// maximum of the lanes (a NaN lane may or may not win; callers only need NaN to reach exp)
CHARNN_INLINE float hmax(vf v) {
#if defined(__AVX512F__)
  __m256 h = _mm256_max_ps(_mm512_castps512_ps256((__m512)v),
                           _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd((__m512)v), 1)));
  __m128 q = _mm_max_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
#elif defined(__AVX__)
  __m128 q = _mm_max_ps(_mm256_castps256_ps128((__m256)v), _mm256_extractf128_ps((__m256)v, 1));
#elif defined(__SSE2__)
  __m128 q = (__m128)v;
#endif
#if defined(__SSE2__)
  q = _mm_max_ps(q, _mm_movehl_ps(q, q));
  q = _mm_max_ss(q, _mm_shuffle_ps(q, q, 1));
  return _mm_cvtss_f32(q);
#else
  float t[W];
  st(t, v);
  for (int w = W / 2; w > 0; w /= 2)
    for (int i = 0; i < w; ++i) t[i] = t[i + w] > t[i] ? t[i + w] : t[i];
  return t[0];
#endif
}

// low / high halves of a float vector widened to doubles
CHARNN_INLINE vd lo_d(vf v) {
  vh h;
  __builtin_memcpy(&h, &v, sizeof h);
  return __builtin_convertvector(h, vd);
}
CHARNN_INLINE vd hi_d(vf v) {
  vh h;
  __builtin_memcpy(&h, (const char*)&v + sizeof h, sizeof h);
  return __builtin_convertvector(h, vd);
}
CHARNN_INLINE vf from_d(vd lo, vd hi) {
  vh a = __builtin_convertvector(lo, vh), b = __builtin_convertvector(hi, vh);
  vf r;
  __builtin_memcpy(&r, &a, sizeof a);
  __builtin_memcpy((char*)&r + sizeof a, &b, sizeof b);
  return r;
}

// ---- transcendental functions, ~1-2 ulp, NaN in -> NaN out, +-Inf handled ----------------------

// 1 / x for x >= 1 or +Inf (the sigmoid and tanh denominators). AVX-512: rcp14 plus one
// Newton step (about 1 ulp; a zmm division costs ~16 cycles of throughput), elsewhere a division.
CHARNN_INLINE vf recip(vf x) {
#if defined(__AVX512F__)
  vf r = (vf)_mm512_rcp14_ps((__m512)x);
  vf e = splat(1.0f) - x * r;  // exact with FMA
  vf y = r + r * e;
  return sel(x == splat(__builtin_inff()), vf{}, y);  // rcp14(Inf) = 0, but 0 * (1 - Inf * 0) is NaN
#else
  return splat(1.0f) / x;
#endif
}

// 1 / x for finite x >= 0.004 (no Inf handling): the tanh denominator.
CHARNN_INLINE vf recip_finite(vf x) {
#if defined(__AVX512F__)
  vf r = (vf)_mm512_rcp14_ps((__m512)x);
  return r + r * (splat(1.0f) - x * r);
#else
  return splat(1.0f) / x;
#endif
}

// exp: Cephes expf (range reduction by ln 2 in two parts, degree-5 polynomial), within 1 ulp.
// AVX-512 scales by 2^n with vscalefps, which also gets overflow to +Inf and subnormal results
// right; elsewhere the scaling is done in two steps for the same reason.
CHARNN_INLINE vf vexp(vf x) {
#if defined(__AVX512F__)
  // vmaxps/vminps return their second operand when either is NaN: x second keeps a NaN
  __m512 v = _mm512_min_ps(_mm512_set1_ps(89.0f), _mm512_max_ps(_mm512_set1_ps(-104.0f), (__m512)x));
  __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(v, _mm512_set1_ps(1.44269504088896341f)),
                                  _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  vf nf = (vf)n;
  vf r = (vf)v - nf * splat(0.693359375f);
  r = r - nf * splat(-2.12194440e-4f);
#else
  x = sel(x > splat(89.0f), splat(89.0f), x);  // NaN compares false and passes through
  x = sel(x < splat(-104.0f), splat(-104.0f), x);
  const vf magic = splat(12582912.0f);  // 1.5 * 2^23: adding it rounds to an integer
  vf t = x * splat(1.44269504088896341f) + magic;
  vf nf = t - magic;
  vi ni = (vi)((vu)t - (vu)magic);
  vf r = x - nf * splat(0.693359375f);
  r = r - nf * splat(-2.12194440e-4f);
#endif
  vf p = splat(1.9875691500e-4f);
  p = p * r + splat(1.3981999507e-3f);
  p = p * r + splat(8.3334519073e-3f);
  p = p * r + splat(4.1665795894e-2f);
  p = p * r + splat(1.6666665459e-1f);
  p = p * r + splat(5.0000001201e-1f);
  vf y = p * (r * r) + r + splat(1.0f);
#if defined(__AVX512F__)
  return (vf)_mm512_scalef_ps((__m512)y, n);
#else
  vi n1 = ni >> 1;
  vu n2 = (vu)ni - (vu)n1;
  vf s1 = (vf)(((vu)n1 + 127u) << 23);
  vf s2 = (vf)((n2 + 127u) << 23);
  return (y * s1) * s2;
#endif
}

// tanh: Eigen's rational approximation (odd degree-13 over even degree-6 polynomial), within
// 3e-7 relative (4e-7 with AVX-512's reciprocal); x itself below 4e-4, +-1 beyond 7.9053.
CHARNN_INLINE vf vtanh(vf x) {
  vf ax = vabs(x);
  vf x2 = x * x;
  vf p = splat(-2.76076847742355e-16f);
  p = p * x2 + splat(2.00018790482477e-13f);
  p = p * x2 + splat(-8.60467152213735e-11f);
  p = p * x2 + splat(5.12229709037114e-08f);
  p = p * x2 + splat(1.48572235717979e-05f);
  p = p * x2 + splat(6.37261928875436e-04f);
  p = p * x2 + splat(4.89352455891786e-03f);
  p = p * x;
  vf q = splat(1.19825839466702e-06f);
  q = q * x2 + splat(1.18534705686654e-04f);
  q = q * x2 + splat(2.26843463243900e-03f);
  q = q * x2 + splat(4.89352518554385e-03f);
  vf r = p * recip_finite(q);
  r = sel(ax > splat(7.90531110763549805f), copysign_of(splat(1.0f), x), r);  // also where p, q overflow
  return sel(ax < splat(0.0004f), x, r);  // NaN compares false throughout and stays NaN in r
}

CHARNN_INLINE vf vsigmoid(vf x) { return recip(splat(1.0f) + vexp(-x)); }
