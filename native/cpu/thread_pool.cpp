// A small persistent pool. A job is split into one share per thread, each a fixed
// contiguous run of tasks; the calling thread and the workers claim shares, so a caller
// whose workers are slow to wake does their shares itself. Kernels come in quick
// succession (a sparsifier step is a few dozen of them on arrays that fit in cache), so
// waking a sleeping worker (100-200 microseconds on a VM) would cost more than the work:
// after each job, workers spin for a short while on the job counter before they sleep on
// a condition variable, and the caller spins the same way for the shares to finish.
// park_threads() ends the spin at once, for callers about to hand the cores to other work
// (an onnxruntime run).
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>
#if defined(__linux__)
#include <sched.h>
#endif

#include "spartan/parallel.h"

namespace spartan {
namespace {

size_t default_threads() {
  if (const char* env = std::getenv("SPARTAN_NUM_THREADS")) {
    long v = std::strtol(env, nullptr, 10);
    if (v > 0) return size_t(std::min(v, 256L));
  }
#if defined(__linux__)
  // The CPUs this process may run on (a container's cpuset), not every CPU of the machine:
  // a worker beyond them would only steal time from the others, spinning.
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return size_t(CPU_COUNT(&set));
#endif
  unsigned hw = std::thread::hardware_concurrency();
  return hw ? hw : 1;
}

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#else
  std::this_thread::yield();
#endif
}

// About 50-200 microseconds of pause instructions, depending on the CPU.
constexpr int kSpinIterations = 4000;

class Pool {
 public:
  explicit Pool(size_t n) { resize(n); }
  ~Pool() { stop_workers(); }

  // Read without the job lock (num_threads() from any thread), so kept in an atomic.
  size_t size() const { return size_.load(); }

  // Ends the spin of every worker that finished the current generation: they sleep until
  // the next job. Tied to the generation, not a counter, so a worker that is still on its
  // way from its last task into the spin when park() runs sees it too.
  void park() { park_.store(generation_.load(std::memory_order_acquire), std::memory_order_release); }

  void resize(size_t n) {
    std::lock_guard<std::mutex> job(job_mutex_);
    stop_workers();
    stopping_.store(false);
    // New workers start at the current generation: an older job is not theirs to run.
    const size_t now = generation_.load();
    for (size_t t = 1; t < std::max<size_t>(n, 1); ++t) workers_.emplace_back([this, now] { work(now); });
    size_.store(workers_.size() + 1);
  }

  void run(size_t ntasks, const size_t* ends, TaskFn fn, void* ctx, size_t max_threads) {
    if (ntasks == 0) return;
    std::lock_guard<std::mutex> job(job_mutex_);  // one job at a time
    size_t nthreads = std::max<size_t>(1, std::min(size(), max_threads));
    if (nthreads == 1 || ntasks == 1) {
      for (size_t i = 0; i < ntasks; ++i) fn(ctx, i, 0);
      return;
    }
    // The job's fields are published by the release store of claim_ below.
    fn_ = fn;
    ctx_ = ctx;
    ntasks_ = ntasks;
    ends_ = ends;
    used_ = nthreads;
    done_.store(0, std::memory_order_relaxed);
    const size_t gen = generation_.load(std::memory_order_relaxed) + 1;
    claim_.store(claim_word(gen, nthreads, 0), std::memory_order_release);
    {
      std::lock_guard<std::mutex> lk(m_);  // a worker deciding to sleep holds m_: no lost wake-up
      generation_.store(gen, std::memory_order_release);
      if (sleepers_ > 0) cv_.notify_all();
    }
    // The caller takes shares too, and every share nobody has started: a worker still waking
    // (100-200 us on a VM after it slept through an onnxruntime run) then costs nothing.
    run_shares(gen);
    for (int i = 0; i < kSpinIterations; ++i) {
      if (done_.load(std::memory_order_acquire) == nthreads) return;
      cpu_relax();
    }
    std::unique_lock<std::mutex> lk(m_);
    caller_waiting_ = true;
    done_cv_.wait(lk, [&] { return done_.load(std::memory_order_acquire) == nthreads; });
    caller_waiting_ = false;
  }

 private:
  // A job is split into used_ shares (share_start); whichever thread claims share t runs it
  // and passes t as the thread index, so per-thread scratch and merges do not depend on
  // which thread ran what. The claim word holds (generation, shares, next share): a claim
  // succeeds only for the current job, and only then are its fields read, which stay valid
  // until the caller has seen every share done.
  static uint64_t claim_word(size_t gen, size_t shares, size_t next) {
    return (uint64_t(uint32_t(gen)) << 32) | (uint64_t(shares) << 16) | uint64_t(next);
  }

  void run_shares(size_t gen) {
    uint64_t c = claim_.load(std::memory_order_acquire);
    for (;;) {
      if ((c >> 32) != uint32_t(gen)) return;  // another job's word: nothing left of ours
      const size_t shares = (c >> 16) & 0xffff, next = c & 0xffff;
      if (next >= shares) return;
      if (!claim_.compare_exchange_weak(c, c + 1, std::memory_order_acq_rel, std::memory_order_acquire)) continue;
      run_share(next);
      if (done_.fetch_add(1, std::memory_order_acq_rel) + 1 == shares) {
        std::lock_guard<std::mutex> lk(m_);  // the caller checks done_ under m_ before it sleeps
        if (caller_waiting_) done_cv_.notify_one();
      }
      c = claim_.load(std::memory_order_acquire);
    }
  }

  void run_share(size_t t) {
    const size_t begin = share_start(t), end = share_start(t + 1);
    for (size_t i = begin; i < end; ++i) fn_(ctx_, i, t);
  }

  // The first task of thread t's run (t = used_: ntasks_). By count, or with sizes the
  // task boundary nearest to t/used_ of the total size.
  size_t share_start(size_t t) const {
    if (t >= used_) return ntasks_;
    if (t == 0) return 0;
    if (!ends_) return ntasks_ * t / used_;
    const size_t total = ends_[ntasks_ - 1];
    const double target = double(total) * double(t) / double(used_);
    // The boundary after task i sits at ends_[i]; boundary b (tasks before it: b) at
    // ends_[b - 1], boundary 0 at 0.
    size_t b = size_t(std::lower_bound(ends_, ends_ + ntasks_, target,
                                       [](size_t e, double x) { return double(e) < x; }) -
                      ends_) + 1;  // first boundary at or past the target
    if (b > ntasks_) b = ntasks_;
    const double after = double(ends_[b - 1]), before = b >= 2 ? double(ends_[b - 2]) : 0.0;
    return target - before < after - target ? b - 1 : b;
  }

  // Waits for a generation other than `seen` (spinning first, unless parked); false when stopping.
  bool next_job(size_t& seen) {
    for (int i = 0; i < kSpinIterations; ++i) {
      if (stopping_.load(std::memory_order_acquire)) return false;
      if (park_.load(std::memory_order_acquire) == seen) break;  // parked after the job we just ran
      size_t g = generation_.load(std::memory_order_acquire);
      if (g != seen) {
        seen = g;
        return true;
      }
      cpu_relax();
    }
    std::unique_lock<std::mutex> lk(m_);
    ++sleepers_;
    cv_.wait(lk, [&] { return stopping_.load() || generation_.load(std::memory_order_acquire) != seen; });
    --sleepers_;
    if (stopping_.load()) return false;
    seen = generation_.load(std::memory_order_acquire);
    return true;
  }

  void work(size_t seen) {
    while (next_job(seen)) run_shares(seen);
  }

  void stop_workers() {
    {
      std::lock_guard<std::mutex> lk(m_);
      stopping_.store(true);
    }
    cv_.notify_all();
    for (auto& w : workers_) w.join();
    workers_.clear();
  }

  std::mutex job_mutex_;
  std::mutex m_;
  std::condition_variable cv_, done_cv_;
  std::vector<std::thread> workers_;
  TaskFn fn_ = nullptr;
  void* ctx_ = nullptr;
  size_t ntasks_ = 0, used_ = 1;
  const size_t* ends_ = nullptr;  // task sizes, as running totals (null: split by count)
  std::atomic<size_t> generation_{0}, done_{0}, size_{1};
  std::atomic<uint64_t> claim_{0};
  std::atomic<size_t> park_{~size_t(0)};  // the generation after which workers were parked
  std::atomic<bool> stopping_{false};
  int sleepers_ = 0;             // guarded by m_
  bool caller_waiting_ = false;  // guarded by m_
};

Pool& pool() {
  // Leaked on purpose: joining threads from a static destructor at process exit
  // can deadlock with the runtime's own shutdown.
  static Pool* p = new Pool(default_threads());
  return *p;
}

}  // namespace

size_t num_threads() { return pool().size(); }
void set_num_threads(size_t n) { pool().resize(n ? n : default_threads()); }
void parallel_for(size_t ntasks, TaskFn fn, void* ctx, size_t max_threads) {
  pool().run(ntasks, nullptr, fn, ctx, max_threads);
}
void parallel_for_sized(size_t ntasks, const size_t* ends, TaskFn fn, void* ctx, size_t max_threads) {
  pool().run(ntasks, ends, fn, ctx, max_threads);
}
void park_threads() { pool().park(); }

}  // namespace spartan
