// The strided loop engine under every elementwise kernel (a small TensorIterator): operands of
// one common shape are coalesced to as few dims as their strides allow, then each innermost row
// is handed to a typed row function, rows split across the thread pool.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "kiln/core/thread_pool.h"
#include "kiln/tensor.h"

// On the row lambda of an elementwise kernel: inline every call in it (the op's functor and the
// simd_math.h function inside), so the compiler vectorises the row loop. Without it GCC 12
// keeps larger functors such as Sigmoid out of line, and the loop runs one scalar call with
// data-dependent branches per element (bench_eager: exp of 16M floats 12.6 ms with it, 48.8 ms
// in the issue-2 record; docs/design.md).
#if defined(__GNUC__)
#define KILN_KERNEL_ROW __attribute__((flatten))
#else
#define KILN_KERNEL_ROW
#endif

namespace kiln::detail {

inline constexpr int64_t kElementwiseGrain = 32768;

/// Operand byte strides of t viewed at `shape` (t must already broadcast to it: expanded dims
/// get stride 0).
std::vector<int64_t> broadcast_byte_strides(const Tensor& t, IntArrayRef shape);

/// Calls row(ptrs, byte_strides, n) for every innermost row of the N operands (operand 0 is
/// usually the output). strides[k] are byte strides of operand k, aligned with sizes.
template <size_t N, typename Row>
void for_each_row(IntArrayRef sizes, std::array<char*, N> data,
                  std::array<std::vector<int64_t>, N> strides, const Row& row,
                  int64_t grain = kElementwiseGrain) {
  // Drop size-1 dims, then merge adjacent dims whose strides chain for every operand.
  std::vector<int64_t> sh;
  std::array<std::vector<int64_t>, N> st;
  for (size_t d = 0; d < sizes.size(); ++d) {
    if (sizes[d] == 0) return;
    if (sizes[d] == 1) continue;
    sh.push_back(sizes[d]);
    for (size_t k = 0; k < N; ++k) st[k].push_back(strides[k][d]);
  }
  for (int64_t d = static_cast<int64_t>(sh.size()) - 1; d > 0; --d) {
    bool mergeable = true;
    for (size_t k = 0; k < N; ++k) mergeable &= st[k][d - 1] == st[k][d] * sh[d];
    if (!mergeable) continue;
    sh[d - 1] *= sh[d];
    sh.erase(sh.begin() + d);
    for (size_t k = 0; k < N; ++k) {
      st[k][d - 1] = st[k][d];
      st[k].erase(st[k].begin() + d);
    }
  }
  std::array<int64_t, N> inner{};
  if (sh.empty()) {
    row(data.data(), inner.data(), int64_t{1});
    return;
  }
  const int64_t ndim = static_cast<int64_t>(sh.size());
  const int64_t n = sh.back();
  for (size_t k = 0; k < N; ++k) inner[k] = st[k].back();
  if (ndim == 1) {
    parallel_for(0, n, grain, [&](int64_t lo, int64_t hi) {
      std::array<char*, N> p;
      for (size_t k = 0; k < N; ++k) p[k] = data[k] + lo * inner[k];
      row(p.data(), inner.data(), hi - lo);
    });
    return;
  }
  int64_t rows = 1;
  for (int64_t d = 0; d < ndim - 1; ++d) rows *= sh[d];
  parallel_for(0, rows, std::max<int64_t>(1, grain / n), [&](int64_t r0, int64_t r1) {
    std::vector<int64_t> idx(ndim - 1);
    std::array<char*, N> p = data;
    int64_t rem = r0;
    for (int64_t d = ndim - 2; d >= 0; --d) {
      idx[d] = rem % sh[d];
      rem /= sh[d];
      for (size_t k = 0; k < N; ++k) p[k] += idx[d] * st[k][d];
    }
    for (int64_t r = r0; r < r1; ++r) {
      row(p.data(), inner.data(), n);
      for (int64_t d = ndim - 2; d >= 0; --d) {
        for (size_t k = 0; k < N; ++k) p[k] += st[k][d];
        if (++idx[d] < sh[d]) break;
        for (size_t k = 0; k < N; ++k) p[k] -= st[k][d] * sh[d];
        idx[d] = 0;
      }
    }
  });
}

}  // namespace kiln::detail
