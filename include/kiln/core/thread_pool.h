// The one thread pool every CPU kernel shares. parallel_for splits [begin, end) into chunks of
// at least `grain` items; ranges smaller than grain run inline on the caller with no overhead.
#pragma once

#include <cstdint>
#include <functional>

namespace kiln {

/// Sets the number of threads used by CPU kernels (default: the number of cores).
void set_num_threads(int n);
int get_num_threads();

namespace detail {
void parallel_for_impl(int64_t begin, int64_t end, int64_t grain,
                       const std::function<void(int64_t, int64_t)>& fn);
bool in_parallel_region();
}  // namespace detail

/// Calls fn(chunk_begin, chunk_end) over disjoint chunks covering [begin, end), possibly in
/// parallel. Exceptions thrown by fn are rethrown on the caller (the first one wins).
template <typename F>
inline void parallel_for(int64_t begin, int64_t end, int64_t grain, const F& fn) {
  if (end <= begin) return;
  if (end - begin <= grain || get_num_threads() == 1 || detail::in_parallel_region()) {
    fn(begin, end);
    return;
  }
  detail::parallel_for_impl(begin, end, grain, std::function<void(int64_t, int64_t)>(fn));
}

}  // namespace kiln
