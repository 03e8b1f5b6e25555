// Shared by the benchmarks: the thread setting, the STREAM-style copy floors and the compiled
// 8-op chain (timed by bench_jit next to libtorch and by bench_codegen without it).
#pragma once

#include <benchmark/benchmark.h>
#include <emmintrin.h>
#include <kiln/jit/compile.h>
#include <kiln/kiln.h>

#include <algorithm>
#include <cstring>
#include <thread>

#include "layers.h"

namespace kiln::bench {

/// state.range(0) = threads (0: one per core).
inline void set_threads(const benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  kiln::set_num_threads(
      n > 0 ? n : static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
}

/// The 8-op chain on 16M float32 through kiln::jit::compile (no disk cache), timed after its
/// first call; state.range(0) = threads.
inline void compiled_chain8(benchmark::State& state) {
  constexpr int64_t n = int64_t{1} << 24;
  set_threads(state);
  kiln::NoGradGuard no_grad;
  kiln::jit::CompileOptions o;
  o.disk_cache = false;
  auto f = kiln::jit::compile([](const kiln::Tensor& t) { return chain8(t); }, o);
  kiln::Tensor x = kiln::randn({n});
  f(x);
  for (auto _ : state) benchmark::DoNotOptimize(f(x));
  state.SetBytesProcessed(state.iterations() * 2 * n * int64_t{sizeof(float)});
}

/// A copy of the float tensor x into a fresh one, chunked over the thread pool like the
/// kernels; copy_chunk(dst, src, n) copies one chunk.
template <typename CopyChunk>
kiln::Tensor chunked_copy(const kiln::Tensor& x, CopyChunk copy_chunk) {
  const int64_t n = x.numel();
  Tensor out = kiln::empty({n});
  const float* src = x.data_ptr<float>();
  float* dst = out.data_ptr<float>();
  kiln::parallel_for(0, n, 32768, [&](int64_t begin, int64_t end) {
    copy_chunk(dst + begin, src + begin, end - begin);
  });
  return out;
}

/// One read and one write of n floats into a fresh tensor: the memory-bandwidth floor of an
/// elementwise op on n floats.
inline kiln::Tensor stream_copy(const kiln::Tensor& x) {
  return chunked_copy(x, [](float* dst, const float* src, int64_t n) {
    std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
  });
}

/// The same copy with non-temporal stores (SSE2 movntps: the destination is not read for
/// ownership first): the floor for kernels that stream their output (Kiln's fused kernels do
/// for outputs of 16 MiB and more).
inline kiln::Tensor stream_copy_nt(const kiln::Tensor& x) {
  return chunked_copy(x, [](float* dst, const float* src, int64_t n) {
    int64_t i = 0;
    for (; i < n && reinterpret_cast<uintptr_t>(dst + i) % 16 != 0; ++i) dst[i] = src[i];
    for (; i + 4 <= n; i += 4) _mm_stream_ps(dst + i, _mm_loadu_ps(src + i));
    for (; i < n; ++i) dst[i] = src[i];
    _mm_sfence();
  });
}

}  // namespace kiln::bench
