// Kernel dispatch, scratch memory and the thread pool. Compiled with baseline flags.
//
// Why run-time dispatch rather than -march=native: the addon is built by `npm ci` on whatever
// machine installs charnn, but node_modules trees and Docker layers get copied between machines
// (a CI cache built on an AVX-512 runner, then run on an AVX2 laptop). A -march=native build would
// die there with SIGILL, which the TypeScript fallback cannot catch. So the kernels are compiled
// three times (AVX-512, AVX2+FMA, baseline) from one source, each in its own namespace, and the
// best one the CPU *and OS* support (__builtin_cpu_supports checks XCR0) is picked at load time.
// The cost is a larger binary and one indirect call per op, which is noise next to N-API's.

#include "runtime.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <atomic>
#include <condition_variable>
#include <mutex>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CHARNN_PAUSE() _mm_pause()
#elif defined(__aarch64__)
#define CHARNN_PAUSE() __asm__ __volatile__("yield")
#else
#define CHARNN_PAUSE() ((void)0)
#endif

namespace charnn {

// ---- scratch ---------------------------------------------------------------------------------

namespace {
struct Scratch {
  float* p[4] = {nullptr, nullptr, nullptr, nullptr};
  size_t cap[4] = {0, 0, 0, 0};
  ~Scratch() {
    for (float* q : p) free(q);
  }
};
thread_local Scratch tl_scratch;
}  // namespace

float* scratch(int slot, size_t floats) {
  Scratch& s = tl_scratch;
  if (s.cap[slot] < floats) {
    size_t want = floats + floats / 2 + 1024;
    void* q = nullptr;
    if (posix_memalign(&q, 64, want * sizeof(float)) != 0) return nullptr;
    free(s.p[slot]);
    s.p[slot] = static_cast<float*>(q);
    s.cap[slot] = want;
  }
  return s.p[slot];
}

// ---- dispatch --------------------------------------------------------------------------------

static const Kernels* choose() {
  const char* force = getenv("CHARNN_ISA");
  const bool noAvx512 = force && (strcmp(force, "avx2") == 0 || strcmp(force, "base") == 0 ||
                                  strcmp(force, "sse2") == 0 || strcmp(force, "generic") == 0);
  const bool noAvx2 = force && (strcmp(force, "base") == 0 || strcmp(force, "sse2") == 0 ||
                                strcmp(force, "generic") == 0);
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (!noAvx512 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") &&
      __builtin_cpu_supports("fma"))
    return kernels_avx512();
  if (!noAvx2 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return kernels_avx2();
#else
  (void)noAvx512;
  (void)noAvx2;
#endif
  return kernels_base();
}

const Kernels* kernels() {
  static const Kernels* k = choose();
  return k;
}

void (*gemm_bf16())(const GemmArgs*, long, long, long, long) {
  static void (*const fn)(const GemmArgs*, long, long, long, long) = [] {
    void (*f)(const GemmArgs*, long, long, long, long) = kernels()->gemm_bf16;
#if defined(__x86_64__)
    __builtin_cpu_init();
    // the AVX-512 table is only chosen where the OS saves zmm state, so this cpuid bit is the rest
    if (!__builtin_cpu_supports("avx512bf16")) f = nullptr;
#else
    f = nullptr;
#endif
    return f;
  }();
  return fn;
}

// ---- thread pool -----------------------------------------------------------------------------

namespace {

struct Job {
  void (*fn)(void*, int);
  void* ctx;
  int ntasks;
  std::atomic<int> next{0};
  std::atomic<int> done{0};
};

inline long long now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void run_tasks(Job* j) {
  for (;;) {
    int t = j->next.fetch_add(1, std::memory_order_relaxed);
    if (t >= j->ntasks) break;
    j->fn(j->ctx, t);
    j->done.fetch_add(1, std::memory_order_release);
  }
}

class Pool {
 public:
  Pool() {
    int n = 1;
#if defined(__linux__)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) n = CPU_COUNT(&set);
#else
    long c = sysconf(_SC_NPROCESSORS_ONLN);
    if (c > 0) n = (int)c;
#endif
    if (n > 8) n = 8;  // per-step GEMMs do not scale further; spinning workers would only burn cores
    if (const char* e = getenv("CHARNN_NUM_THREADS")) {
      int v = atoi(e);
      if (v > 0) n = v;
    }
    if (const char* e = getenv("CHARNN_SPIN_US")) {
      long v = atol(e);
      if (v >= 0) spin_ns_ = v * 1000;
    }
    wanted_ = n < 1 ? 1 : n > 64 ? 64 : n;
  }

  int threads() const { return wanted_.load(std::memory_order_relaxed); }
  void set_threads(int n) {
    std::lock_guard<std::mutex> lk(caller_);
    wanted_ = n < 1 ? 1 : n > 64 ? 64 : n;
  }

  void run(int ntasks, void (*fn)(void*, int), void* ctx) {
    if (ntasks <= 1 || wanted_.load(std::memory_order_relaxed) <= 1) {
      for (int t = 0; t < ntasks; ++t) fn(ctx, t);
      return;
    }
    std::unique_lock<std::mutex> lk(caller_, std::try_to_lock);
    if (!lk.owns_lock() || !start_workers()) {
      for (int t = 0; t < ntasks; ++t) fn(ctx, t);
      return;
    }
    Job job;
    job.fn = fn;
    job.ctx = ctx;
    job.ntasks = ntasks;
    current_.store(&job, std::memory_order_seq_cst);
    gen_.fetch_add(1, std::memory_order_seq_cst);
    if (sleeping_.load(std::memory_order_seq_cst) > 0) {
      std::lock_guard<std::mutex> g(m_);
      cv_.notify_all();
    }
    run_tasks(&job);
    // Wait for tasks still running on workers. Yield now and then: if the machine is busy, the
    // worker we wait for may be queued behind us on this very core.
    for (int i = 1; job.done.load(std::memory_order_acquire) < ntasks; ++i) {
      CHARNN_PAUSE();
      if ((i & 255) == 0) sched_yield();
    }
    current_.store(nullptr, std::memory_order_seq_cst);
    for (int i = 1; users_.load(std::memory_order_seq_cst) != 0; ++i) {
      CHARNN_PAUSE();
      if ((i & 255) == 0) sched_yield();
    }
  }

 private:
  // Start workers up to wanted_ - 1 (the caller is the last thread). Workers are never stopped:
  // when the thread count is lowered, a worker whose index is too high skips jobs. Called with
  // caller_ held.
  bool start_workers() {
    while (started_ < wanted_ - 1 && started_ < 63) {
      pthread_t th;
      pthread_attr_t attr;
      pthread_attr_init(&attr);
      pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
      auto* arg = new WorkerArg{this, started_};
      int rc = pthread_create(&th, &attr, &Pool::worker_main, arg);
      pthread_attr_destroy(&attr);
      if (rc != 0) {
        delete arg;
        break;
      }
      ++started_;
    }
    return started_ > 0;
  }

  struct WorkerArg {
    Pool* pool;
    int index;
  };

  static void* worker_main(void* p) {
    WorkerArg a = *static_cast<WorkerArg*>(p);
    delete static_cast<WorkerArg*>(p);
    a.pool->worker_loop(a.index);
    return nullptr;
  }

  void worker_loop(int index) {
#if defined(__x86_64__) || defined(__i386__)
    _mm_setcsr(_mm_getcsr() | 0x8040u);  // flush subnormals (FTZ + DAZ), as the caller does (addon.cc)
#endif
    uint64_t seen = gen_.load(std::memory_order_acquire);
    for (;;) {
      uint64_t g = gen_.load(std::memory_order_acquire);
      if (g == seen) {
        const long long deadline = now_ns() + spin_ns_;
        // Spin (a job usually follows within microseconds while training), yielding now and
        // then so that a busy machine's other runnable threads, ours included, are not starved.
        for (int i = 1;; ++i) {
          CHARNN_PAUSE();
          g = gen_.load(std::memory_order_acquire);
          if (g != seen) break;
          if ((i & 63) == 0) {
            if (now_ns() > deadline) break;
            if ((i & 1023) == 0) sched_yield();
          }
        }
        if (g == seen) {
          std::unique_lock<std::mutex> lk(m_);
          sleeping_.fetch_add(1, std::memory_order_seq_cst);
          while ((g = gen_.load(std::memory_order_seq_cst)) == seen) cv_.wait(lk);
          sleeping_.fetch_sub(1, std::memory_order_seq_cst);
        }
      }
      seen = g;
      if (index >= wanted_.load(std::memory_order_relaxed) - 1) continue;  // thread count lowered: this worker sits out
      users_.fetch_add(1, std::memory_order_seq_cst);
      Job* j = current_.load(std::memory_order_seq_cst);
      if (j) run_tasks(j);
      users_.fetch_sub(1, std::memory_order_seq_cst);
    }
  }

  std::mutex caller_;  // one parallel region at a time (other JS threads run serially)
  std::atomic<int> wanted_{1};
  int started_ = 0;
  // How long an idle worker spins before sleeping on a futex. Long, like OpenMP runtimes: waking
  // a sleeping thread takes 50 us to several ms on a virtual machine whose idle vCPU was halted,
  // longer than a whole per-time-step GEMM, and training calls come in a steady stream.
  long long spin_ns_ = 5000000;
  std::atomic<Job*> current_{nullptr};
  std::atomic<uint64_t> gen_{0};
  std::atomic<int> users_{0};
  std::atomic<int> sleeping_{0};
  std::mutex m_;
  std::condition_variable cv_;
};

// Never destroyed: detached workers may still be waiting on it when the process exits.
Pool& pool() {
  static Pool* p = new Pool();
  return *p;
}

}  // namespace

int num_threads() { return pool().threads(); }
void set_num_threads(int n) { pool().set_threads(n); }
void parallel_for(int ntasks, void (*fn)(void*, int), void* ctx) { pool().run(ntasks, fn, ctx); }

}  // namespace charnn
