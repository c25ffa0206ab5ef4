// A small persistent pool: workers sleep on a condition variable between jobs, the
// calling thread takes part, and each thread gets a fixed contiguous run of tasks.
#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

#include "spartan/parallel.h"

namespace spartan {
namespace {

size_t default_threads() {
  if (const char* env = std::getenv("SPARTAN_NUM_THREADS")) {
    long v = std::strtol(env, nullptr, 10);
    if (v > 0) return size_t(std::min(v, 256L));
  }
  unsigned hw = std::thread::hardware_concurrency();
  return hw ? hw : 1;
}

class Pool {
 public:
  explicit Pool(size_t n) { resize(n); }
  ~Pool() { stop_workers(); }

  size_t size() const { return workers_.size() + 1; }

  void resize(size_t n) {
    std::lock_guard<std::mutex> job(job_mutex_);
    stop_workers();
    stopping_ = false;
    // New workers start at the current generation: an older job is not theirs to run.
    const size_t now = generation_;
    for (size_t t = 1; t < std::max<size_t>(n, 1); ++t) workers_.emplace_back([this, t, now] { work(t, now); });
  }

  void run(size_t ntasks, TaskFn fn, void* ctx, size_t max_threads) {
    if (ntasks == 0) return;
    std::lock_guard<std::mutex> job(job_mutex_);  // one job at a time
    size_t nthreads = std::max<size_t>(1, std::min(size(), max_threads));
    if (nthreads == 1 || ntasks == 1) {
      for (size_t i = 0; i < ntasks; ++i) fn(ctx, i, 0);
      return;
    }
    {
      std::lock_guard<std::mutex> lk(m_);
      fn_ = fn;
      ctx_ = ctx;
      ntasks_ = ntasks;
      used_ = nthreads;
      pending_ = workers_.size();
      ++generation_;
    }
    cv_.notify_all();
    run_share(0);
    std::unique_lock<std::mutex> lk(m_);
    done_cv_.wait(lk, [this] { return pending_ == 0; });
  }

 private:
  void run_share(size_t t) {
    if (t >= used_) return;  // not needed for this job
    const size_t nthreads = used_;
    size_t begin = ntasks_ * t / nthreads, end = ntasks_ * (t + 1) / nthreads;
    for (size_t i = begin; i < end; ++i) fn_(ctx_, i, t);
  }

  void work(size_t t, size_t seen) {
    for (;;) {
      {
        std::unique_lock<std::mutex> lk(m_);
        cv_.wait(lk, [&] { return stopping_ || generation_ != seen; });
        if (stopping_) return;
        seen = generation_;
      }
      run_share(t);
      std::lock_guard<std::mutex> lk(m_);
      if (--pending_ == 0) done_cv_.notify_one();
    }
  }

  void stop_workers() {
    {
      std::lock_guard<std::mutex> lk(m_);
      stopping_ = true;
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
  size_t ntasks_ = 0, used_ = 1, pending_ = 0, generation_ = 0;
  bool stopping_ = false;
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
void parallel_for(size_t ntasks, TaskFn fn, void* ctx, size_t max_threads) { pool().run(ntasks, fn, ctx, max_threads); }

}  // namespace spartan
