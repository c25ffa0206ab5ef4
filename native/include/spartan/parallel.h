// The process-wide CPU thread pool used by every kernel.
#pragma once
#include <cstddef>

namespace spartan {

// Number of threads a parallel loop uses (workers plus the calling thread).
size_t num_threads();
// Resizes the pool. 0 means "hardware concurrency" (or SPARTAN_NUM_THREADS when set).
void set_num_threads(size_t n);
// Idle workers spin briefly after each job so the next kernel starts at once; this ends
// that spin now (they sleep until the next job). For callers about to hand the cores to
// other work, such as an onnxruntime run between two sparsifier steps.
void park_threads();

// Runs fn(task, thread) for task in [0, ntasks). Tasks are split into contiguous
// runs ("shares"), one per thread, in a fixed way for a given (ntasks, num_threads()), and
// `thread` is the share's index, whichever OS thread runs it (the caller takes the shares
// of workers that are still waking up): the same tasks always get the same index, and no
// two threads run one index at once, so per-thread scratch and partial results indexed by
// it merge deterministically.
// Concurrent callers (several async ops) are serialised. At most `max_threads`
// threads take part: a caller that sized per-thread scratch with num_threads()
// passes that count, so a concurrent resize can never hand it a larger index.
using TaskFn = void (*)(void* ctx, size_t task, size_t thread);
void parallel_for(size_t ntasks, TaskFn fn, void* ctx, size_t max_threads);

// Like parallel_for, for tasks of unequal sizes: ends[i] is the total size of tasks 0..i
// (non-decreasing; null: split by count, as parallel_for), and thread t runs the contiguous run of tasks whose boundaries lie
// nearest to t/T of the total size. Splitting by count would give one thread of a
// sparsifier step's segmented kernels 62 % of LeNet-300-100's entries (its layers make
// chunks of unequal sizes). The split is still fixed for given sizes and thread count.
void parallel_for_sized(size_t ntasks, const size_t* ends, TaskFn fn, void* ctx, size_t max_threads);

template <class F>
void parallel_for_sized(size_t ntasks, const size_t* ends, F& f, size_t max_threads = ~size_t(0)) {
  parallel_for_sized(
      ntasks, ends, [](void* c, size_t task, size_t thread) { (*static_cast<F*>(c))(task, thread); }, &f,
      max_threads);
}

template <class F>
void parallel_for(size_t ntasks, F& f, size_t max_threads = ~size_t(0)) {
  parallel_for_sized(ntasks, nullptr, f, max_threads);
}

}  // namespace spartan
