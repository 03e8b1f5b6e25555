// The process-wide thread pool behind parallel_for: N-1 workers plus the calling thread. One
// parallel region runs at a time (nested calls run inline), which keeps scheduling trivial.
#include "kiln/core/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "kiln/core/error.h"

namespace kiln {
namespace {

thread_local bool t_in_parallel = false;
constexpr int kChunksPerThread = 4;

// One parallel region: its own chunk counter and pending count, shared by the caller and the
// workers through a shared_ptr, so a worker that wakes late can only ever see an exhausted job,
// never claim a chunk of the next region.
struct Job {
  const std::function<void(int64_t, int64_t)>* fn;
  int64_t begin, end, num_chunks;
  std::atomic<int64_t> next{0};
  std::atomic<int64_t> pending{0};  // chunks not finished
  std::exception_ptr error;  // guarded by ThreadPool::mutex_
};

// Spin-then-block: a worker that finished a region, and a caller waiting for its region's
// last chunk, poll for this many pauses (tens of microseconds) before sleeping on the
// condition variable. Waking a sleeping thread costs a futex call and the scheduler's latency
// (5-10 us on the 2-vCPU development VM), more than a fused LSTM step's whole kernel.
constexpr int kSpinPauses = 2000;

inline void cpu_pause() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

class ThreadPool {
 public:
  explicit ThreadPool(int n) { resize(n); }
  ~ThreadPool() { stop_workers(); }

  int size() const { return num_threads_; }

  void resize(int n) {
    std::lock_guard<std::mutex> region(region_mutex_);
    stop_workers();
    num_threads_ = std::max(1, n);
    stopping_ = false;
    for (int i = 1; i < num_threads_; ++i) workers_.emplace_back([this] { worker_loop(); });
  }

  void run(int64_t begin, int64_t end, int64_t grain,
           const std::function<void(int64_t, int64_t)>& fn) {
    std::lock_guard<std::mutex> region(region_mutex_);
    int64_t n = end - begin;
    int64_t max_chunks = std::max<int64_t>(1, n / std::max<int64_t>(grain, 1));
    auto job = std::make_shared<Job>();
    job->fn = &fn;
    job->begin = begin;
    job->end = end;
    // Up to four chunks per thread, claimed dynamically: a thread slowed by the host (shared
    // or SMT vCPUs) hands its share to the others instead of holding up the region (the 8-op
    // chain of bench_jit: 13.8 -> 11.1 ms on the 2-vCPU development VM, ad-hoc timing).
    job->num_chunks = std::min<int64_t>(int64_t{num_threads_} * kChunksPerThread, max_chunks);
    job->pending.store(job->num_chunks);
    {
      std::lock_guard<std::mutex> lk(mutex_);
      job_ = job;
      generation_.fetch_add(1, std::memory_order_release);
    }
    cv_.notify_all();
    work(*job);
    for (int i = 0; i < kSpinPauses && job->pending.load(std::memory_order_acquire) != 0; ++i)
      cpu_pause();
    std::unique_lock<std::mutex> lk(mutex_);
    done_cv_.wait(lk, [&] { return job->pending.load() == 0; });
    job_.reset();
    if (job->error) std::rethrow_exception(job->error);
  }

 private:
  void work(Job& job) {
    t_in_parallel = true;
    for (;;) {
      int64_t c = job.next.fetch_add(1);
      if (c >= job.num_chunks) break;
      int64_t n = job.end - job.begin;
      int64_t lo = job.begin + n * c / job.num_chunks;
      int64_t hi = job.begin + n * (c + 1) / job.num_chunks;
      std::exception_ptr err;
      try {
        (*job.fn)(lo, hi);
      } catch (...) {
        err = std::current_exception();
      }
      if (err) {
        std::lock_guard<std::mutex> lk(mutex_);
        if (!job.error) job.error = err;
      }
      if (job.pending.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        // The caller may be asleep: notify under the mutex its predicate is checked under.
        std::lock_guard<std::mutex> lk(mutex_);
        done_cv_.notify_all();
      }
    }
    t_in_parallel = false;
  }

  void worker_loop() {
    uint64_t seen = 0;
    for (;;) {
      for (int i = 0; i < kSpinPauses && generation_.load(std::memory_order_acquire) == seen &&
                      !stopping_.load(std::memory_order_relaxed);
           ++i)
        cpu_pause();
      std::shared_ptr<Job> job;
      {
        std::unique_lock<std::mutex> lk(mutex_);
        cv_.wait(lk, [&] { return stopping_.load() || generation_.load() != seen; });
        if (stopping_) return;
        seen = generation_.load();
        job = job_;
      }
      if (job) work(*job);
    }
  }

  void stop_workers() {
    {
      std::lock_guard<std::mutex> lk(mutex_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (auto& w : workers_) w.join();
    workers_.clear();
  }

  std::mutex region_mutex_;  // one parallel region at a time
  std::mutex mutex_;
  std::condition_variable cv_, done_cv_;
  std::vector<std::thread> workers_;
  int num_threads_ = 1;
  std::atomic<bool> stopping_{false};    // written under mutex_
  std::atomic<uint64_t> generation_{0};  // written under mutex_; spinning workers poll it
  std::shared_ptr<Job> job_;
};

int default_threads() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

std::atomic<int> g_num_threads{default_threads()};

ThreadPool& pool() {
  static ThreadPool p(g_num_threads.load());
  return p;
}

}  // namespace

void set_num_threads(int n) {
  KILN_CHECK(n >= 1, "[set_num_threads] got {}, expected a positive number of threads", n);
  g_num_threads.store(n);
  if (pool().size() != n) pool().resize(n);
}

int get_num_threads() { return g_num_threads.load(std::memory_order_relaxed); }

namespace detail {

bool in_parallel_region() { return t_in_parallel; }

void parallel_for_impl(int64_t begin, int64_t end, int64_t grain,
                       const std::function<void(int64_t, int64_t)>& fn) {
  pool().run(begin, end, grain, fn);
}

}  // namespace detail
}  // namespace kiln
