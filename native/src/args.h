// Argument parsing for the addon's op bindings (addon.cc), and the template that turns a plain
// C++ op function into a napi_callback.
//
// An op is written as `R op(Args& a, P1 p1, P2 p2, ...)`, with each parameter type saying how its
// JS argument is read: F32 / I32 (a Float32Array / Int32Array view: pointer and element count),
// OptF32 (the same, or null/undefined), Raw (the napi_value, for the op to read), Dim (a
// non-negative integer), double (any number), bool (a boolean or a number). bind<op> reads the arguments in order, throws a TypeError/RangeError
// naming the first bad one, and calls op only when all are good; op checks the relations between
// sizes with a.need / a.fail_range (a bad call throws instead of touching foreign memory). R is
// void (the op returns undefined) or double (a JS number).
//
// Plain napi callbacks rather than node-addon-api's CallbackInfo: ops are called hundreds of
// thousands of times per second with up to ten arguments, and CallbackInfo heap-allocates beyond six.
#pragma once

#include <node_api.h>
#include <stdint.h>
#include <stdio.h>

#include <cmath>
#include <tuple>
#include <type_traits>
#include <utility>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace charnn {

/** A typed-array view: data pointer and length in elements. */
template <class T>
struct View {
  T* p = nullptr;
  size_t n = 0;
};
using F32 = View<float>;
using I32 = View<int32_t>;
/** A Float32Array or null/undefined (p == nullptr, n == 0). */
struct OptF32 : View<float> {};
/** A non-negative integer below 2^53 (a dimension). */
struct Dim {
  long v = 0;
};
/** Any JS value, left for the op to read. */
struct Raw {
  napi_value v = nullptr;
};

struct Args {
  napi_env env;
  size_t argc;
  napi_value argv[12];
  bool failed = false;

  Args(napi_env e, napi_callback_info info, size_t expected) : env(e), argc(12) {
    napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
    if (argc < expected) fail_type("expected %zu arguments, got %zu", expected, argc);
  }

  // Throw a TypeError / RangeError with a printf-formatted message; only the first failure throws.
  template <class... T>
  void fail_type(const char* fmt, T... args) {
    fail(napi_throw_type_error, fmt, args...);
  }
  template <class... T>
  void fail_range(const char* fmt, T... args) {
    fail(napi_throw_range_error, fmt, args...);
  }
  template <class... T>
  void fail(napi_status (*thrower)(napi_env, const char*, const char*), const char* fmt, T... args) {
    if (failed) return;
    char msg[256];
    snprintf(msg, sizeof msg, fmt, args...);
    thrower(env, nullptr, msg);
    failed = true;
  }
  /** Throws a RangeError with `msg` unless ok; returns ok (false also once an earlier check failed). */
  bool need(bool ok, const char* msg) {
    if (!ok) fail_range("%s", msg);
    return !failed;
  }

  bool is_null(size_t i) {
    napi_valuetype t;
    napi_typeof(env, argv[i], &t);
    return t == napi_null || t == napi_undefined;
  }

  void* typed(size_t i, napi_typedarray_type want, size_t* len, const char* what) {
    *len = 0;
    if (failed) return nullptr;
    bool is = false;
    napi_is_typedarray(env, argv[i], &is);
    napi_typedarray_type t = napi_int8_array;
    void* data = nullptr;
    if (is) {
      napi_value ab;
      size_t off;
      napi_get_typedarray_info(env, argv[i], &t, len, &data, &ab, &off);
    }
    if (!is || t != want) {
      fail_type("argument %zu must be a %s", i, what);
      *len = 0;
      return nullptr;
    }
    return data;
  }
  double num(size_t i) {
    double v = 0;
    if (failed) return 0;
    if (napi_get_value_double(env, argv[i], &v) != napi_ok) fail_type("argument %zu must be a number", i);
    return v;
  }

  // get<T>(i): argument i read as T (see the header comment)
  template <class T>
  T get(size_t i);
};

template <>
inline F32 Args::get<F32>(size_t i) {
  F32 v;
  v.p = static_cast<float*>(typed(i, napi_float32_array, &v.n, "Float32Array"));
  return v;
}
template <>
inline I32 Args::get<I32>(size_t i) {
  I32 v;
  v.p = static_cast<int32_t*>(typed(i, napi_int32_array, &v.n, "Int32Array"));
  return v;
}
template <>
inline OptF32 Args::get<OptF32>(size_t i) {
  OptF32 v;
  if (failed || is_null(i)) return v;
  v.p = static_cast<float*>(typed(i, napi_float32_array, &v.n, "Float32Array or null"));
  return v;
}
template <>
inline double Args::get<double>(size_t i) {
  return num(i);
}
template <>
inline Dim Args::get<Dim>(size_t i) {
  double v = num(i);
  if (failed) return Dim{};
  if (!(v >= 0 && v <= 9.0e15) || v != std::floor(v)) {
    fail_range("argument %zu must be a non-negative integer", i);
    return Dim{};
  }
  return Dim{(long)v};
}
template <>
inline Raw Args::get<Raw>(size_t i) {
  return Raw{argv[i]};
}
template <>
inline bool Args::get<bool>(size_t i) {
  if (failed) return false;
  bool b = false;
  if (napi_get_value_bool(env, argv[i], &b) != napi_ok) return num(i) != 0;  // numbers accepted too
  return b;
}

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

namespace detail {
template <class R, class... P, size_t... I>
napi_value invoke(R (*fn)(Args&, P...), Args& a, std::index_sequence<I...>) {
  // braced initialisation evaluates left to right: arguments are read (and rejected) in order
  std::tuple<P...> vals{a.template get<P>(I)...};
  if (a.failed) return nullptr;
  FlushSubnormals ftz;
  if constexpr (std::is_void_v<R>) {
    fn(a, std::get<I>(vals)...);
    return nullptr;
  } else {
    static_assert(std::is_same_v<R, double>, "ops return void or double");
    double r = fn(a, std::get<I>(vals)...);
    if (a.failed) return nullptr;
    napi_value out;
    napi_create_double(a.env, r, &out);
    return out;
  }
}
template <class R, class... P>
constexpr size_t arity(R (*)(Args&, P...)) {
  return sizeof...(P);
}
}  // namespace detail

/** The napi_callback of op `Fn` (see the header comment). */
template <auto Fn>
napi_value bind(napi_env env, napi_callback_info info) {
  constexpr size_t n = detail::arity(Fn);
  static_assert(n <= 12, "at most 12 arguments");
  Args a(env, info, n);
  if (a.failed) return nullptr;
  return detail::invoke(Fn, a, std::make_index_sequence<n>{});
}

}  // namespace charnn
