// ctest-label: codegen
// jit::compile end to end: compiled == eager on random inputs (broadcast, non-contiguous, odd
// and zero sizes, reductions, library calls, modules), the signature cache (hits, misses, the
// recompile limit, requires_grad), the disk cache (round trip in a fresh process, corrupt
// entries), concurrent first calls, modes, and explain().
#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "runtime/executor.h"
#include "test_util.h"

namespace kiln::testing {
namespace {

namespace fs = std::filesystem;
using jit::CompileOptions;

struct TempCache {
  fs::path dir;
  TempCache() {
    dir = fs::temp_directory_path() / fmt::format("kiln-jit-test-{}-{}", ::getpid(),
                                                   reinterpret_cast<uintptr_t>(this));
    fs::remove_all(dir);
  }
  ~TempCache() { fs::remove_all(dir); }
  CompileOptions options() const {
    CompileOptions o;
    o.cache_dir = dir.string();
    return o;
  }
};

Tensor chain8(const Tensor& x) {
  Tensor a = (x * 2 + 1).relu() * x;
  return (a.sigmoid() - 0.5).tanh() + x;
}

TEST(Jit, CompiledEqualsEagerOnTheEightOpChain) {
  TempCache cache;
  auto f = jit::compile(chain8, cache.options());
  for (auto sizes : {std::vector<int64_t>{1000}, std::vector<int64_t>{7, 13}, std::vector<int64_t>{0, 3},
                     std::vector<int64_t>{}, std::vector<int64_t>{65, 33}}) {
    Tensor x = random_tensor(sizes, kFloat);
    EXPECT_TRUE(close(f(x), chain8(x), 1e-5, 1e-6)) << shape_str(sizes);
  }
  Tensor nc = non_contiguous(random_tensor({17, 9}, kFloat));
  EXPECT_TRUE(close(f(nc), chain8(nc), 1e-5, 1e-6));
  auto s = f.stats();
  EXPECT_EQ(s.entries.size(), 6u);
  EXPECT_GE(s.entries[0].fused_kernels, 1);
  EXPECT_EQ(s.entries[0].eager_ops, 0) << explain(f);
}

TEST(Jit, BroadcastReductionsAndLibraryCalls) {
  TempCache cache;
  auto mlp = [](const Tensor& x, const Tensor& w1, const Tensor& b1, const Tensor& w2) {
    Tensor h = relu(linear(x, w1, b1));
    return softmax(h.matmul(w2), 1);
  };
  auto f = jit::compile(mlp, cache.options());
  Tensor x = random_tensor({8, 16}, kFloat), w1 = random_tensor({32, 16}, kFloat),
         b1 = random_tensor({32}, kFloat), w2 = random_tensor({32, 5}, kFloat);
  EXPECT_TRUE(close(f(x, w1, b1, w2), mlp(x, w1, b1, w2), 1e-5, 1e-6));
  // The first product is computed in relu's kernel (a small product read elementwise); the
  // second, read by softmax, stays a library call.
  EXPECT_EQ(f.stats().entries[0].library_calls, 1) << explain(f);
  EXPECT_NE(explain(f).find("+ 1 product(s)"), std::string::npos) << explain(f);

  auto stats = [](const Tensor& x, const Tensor& y) {
    Tensor d = x - y;  // [4, 1, 6] - [5, 6]
    return std::make_tuple(d.square().mean({2}), d.amax({0, 1}, true), (d > 0).sum({1}));
  };
  auto g = jit::compile(stats, cache.options());
  Tensor a = random_tensor({4, 1, 6}, kFloat), b = random_tensor({5, 6}, kFloat);
  auto [m1, m2, m3] = g(a, b);
  auto [e1, e2, e3] = stats(a, b);
  EXPECT_TRUE(close(m1, e1, 1e-5, 1e-6));
  EXPECT_TRUE(close(m2, e2, 0, 0));
  EXPECT_TRUE(equal(m3, e3));
  EXPECT_EQ(m3.dtype(), kLong);
}

// Counts the storage allocations of the CPU allocator while it is installed.
struct CountingAllocator final : Allocator {
  Allocator* base = get_allocator(kCPU);
  std::atomic<int> count{0};
  CountingAllocator() { set_allocator(kCPU, this); }
  ~CountingAllocator() override { set_allocator(kCPU, base); }
  DataPtr allocate(size_t nbytes) override {
    count.fetch_add(1);
    return base->allocate(nbytes);
  }
};

// Memory planning: the intermediates of a compiled graph (kernel outputs and matrix products
// that never escape) live in workspace buffers, so a steady-state call allocates only the
// tensor it returns; and the answers stay right when the buffers are reused.
TEST(Jit, SteadyStateCallsAllocateOnlyTheirOutputs) {
  auto layer = [](const Tensor& x, const Tensor& w1, const Tensor& b1, const Tensor& w2) {
    Tensor h = tanh(addmm(b1, x, w1.t()));  // addmm -> kernel
    Tensor p = mm(h, w2) * 0.5;             // mm -> kernel
    return mm(p, w2.t()).sigmoid();         // mm -> kernel (the output)
  };
  NoGradGuard no_grad;
  CompileOptions o;
  o.disk_cache = false;
  auto f = jit::compile(layer, o);
  for (int64_t batch : {8, 3}) {
    Tensor x = random_tensor({batch, 16}), w1 = random_tensor({32, 16}), b1 = random_tensor({32}),
           w2 = random_tensor({32, 24});
    Tensor first = f(x, w1, b1, w2);
    int steady = 0;
    for (int call = 0; call < 3; ++call) {
      CountingAllocator counting;
      Tensor again = f(x, w1, b1, w2);
      steady = counting.count.load();
      EXPECT_TRUE(close(again, layer(x, w1, b1, w2), 1e-5, 1e-6));
    }
    EXPECT_EQ(steady, 1) << explain(f);
    EXPECT_TRUE(close(first, layer(x, w1, b1, w2), 1e-5, 1e-6));
  }
}

// A kernel launch remembers its inputs' layouts (views and iteration layout skipped on the next
// launch with the same strides): inputs of one signature (strided) whose strides differ from
// call to call must still be read where they are.
TEST(Jit, LaunchesFollowInputStridesThatChangeBetweenCalls) {
  auto fn = [](const Tensor& x, const Tensor& y) {
    auto parts = x.chunk(2, 1);
    return (parts[0].sigmoid() * y + parts[1]).tanh();
  };
  NoGradGuard no_grad;
  CompileOptions o;
  o.disk_cache = false;
  auto f = jit::compile(fn, o);
  const Tensor y = random_tensor({5, 3});
  for (int round = 0; round < 2; ++round) {
    for (int64_t step : {2, 3, 2, 4}) {
      Tensor wide = random_tensor({5, 6 * step});
      Tensor x = wide.slice(1, 0, 6 * step, step);  // [5, 6], column stride `step`
      EXPECT_TRUE(close(f(x, y), fn(x, y), 1e-6, 1e-6)) << "step " << step;
      Tensor xt = random_tensor({6 * step, 5}).slice(0, 0, 6 * step, step).t();
      EXPECT_TRUE(close(f(xt, y), fn(xt, y), 1e-6, 1e-6)) << "transposed, step " << step;
    }
  }
  EXPECT_EQ(f.stats().entries.size(), 1u) << explain(f);
}

TEST(Jit, SignatureCacheHitsMissesAndRecompileReasons) {
  TempCache cache;
  CompileOptions o = cache.options();
  o.recompile_limit = 3;
  o.name = "chain";
  auto f = jit::compile(chain8, o);
  Tensor x = random_tensor({64}, kFloat);
  f(x);
  f(x);
  f(random_tensor({64}, kFloat));
  auto s = f.stats();
  EXPECT_EQ(s.calls, 3u);
  EXPECT_EQ(s.misses, 1u);
  EXPECT_EQ(s.hits, 2u);
  f(random_tensor({32}, kFloat));
  f(random_tensor({64}, kDouble));
  s = f.stats();
  ASSERT_EQ(s.entries.size(), 3u);
  EXPECT_EQ(s.entries[0].reason, "first call");
  EXPECT_NE(s.entries[1].reason.find("input 0 sizes [64] -> [32]"), std::string::npos);
  EXPECT_NE(s.entries[2].reason.find("dtype float32 -> float64"), std::string::npos);
  // Over the limit: runs eagerly (correctly), counted and reported.
  Tensor y = random_tensor({5, 5}, kFloat);
  EXPECT_TRUE(close(f(y), chain8(y), 1e-5, 1e-6));
  s = f.stats();
  EXPECT_TRUE(s.limit_reached);
  EXPECT_EQ(s.eager_calls, 1u);
  const std::string e = explain(f);
  EXPECT_NE(e.find("limit reached"), std::string::npos) << e;
  EXPECT_NE(e.find("fused kernel"), std::string::npos) << e;
  EXPECT_NE(e.find("time: trace"), std::string::npos) << e;
}

// Kernels are specialised for the inputs of the first call, intermediate values included:
// those after a list (cat's) as well. An LSTM-like step whose state is a cat: the gate kernel's
// products read column slices of one weight (one k stride); a transposed input read after the
// cat takes the strided loop.
TEST(Jit, KernelsAfterAListAreSpecialisedForTheirInputs) {
  TempCache cache;
  auto step = [](const Tensor& x, const Tensor& h, const Tensor& w, const Tensor& c,
                 const Tensor& u) {
    Tensor gates = matmul(cat({x, h}, 1), w);
    std::vector<Tensor> g = gates.chunk(4, 1);
    Tensor c2 = sigmoid(g[1]) * c + sigmoid(g[0]) * tanh(g[2]);
    return std::make_tuple(sigmoid(g[3]) * tanh(c2), tanh(u.t()) + c2);
  };
  auto f = jit::compile(step, cache.options());
  Tensor x = random_tensor({5, 6}, kFloat), h = random_tensor({5, 10}, kFloat),
         w = random_tensor({16, 4 * 12}, kFloat), c = random_tensor({5, 12}, kFloat),
         u = random_tensor({12, 5}, kFloat);
  auto [h2, u2] = f(x, h, w, c, u);
  auto [eh, eu] = step(x, h, w, c, u);
  EXPECT_TRUE(close(h2, eh, 1e-5, 1e-5));
  EXPECT_TRUE(close(u2, eu, 1e-5, 1e-5));
  const std::string e = explain(f);
  EXPECT_NE(e.find("+ 4 product(s)"), std::string::npos) << e;
  EXPECT_NE(e.find("shared k strides"), std::string::npos) << e;
  EXPECT_NE(e.find("strided loop"), std::string::npos) << e;
}

TEST(Jit, InputsRequiringGradRunEagerlyWithAutograd) {
  TempCache cache;
  auto f = jit::compile(chain8, cache.options());
  Tensor x = random_tensor({10}, kDouble).requires_grad_();
  Tensor y = f(x);
  EXPECT_TRUE(y.requires_grad());
  y.sum().backward();
  Tensor x2 = x.detach().requires_grad_();
  chain8(x2).sum().backward();
  EXPECT_TRUE(close(x.grad(), x2.grad(), 1e-12, 1e-12));
  EXPECT_TRUE(f.stats().entries[0].eager);
  NoGradGuard ng;
  EXPECT_TRUE(close(f(x), chain8(x), 1e-12, 1e-12));  // grad mode off: compiled
}

// The fast path (inputs matching the last plan run) must not hide a change of layout, dtype,
// size or requires_grad: each such call goes down the full path.
TEST(Jit, CachedPlanIsReusedOnlyForTheSameSignature) {
  TempCache cache;
  auto f = jit::compile(chain8, cache.options());
  Tensor x = random_tensor({6, 5}, kFloat);
  f(x);
  f(x);  // fast path from here on
  Tensor strided = random_tensor({5, 6}, kFloat).t();
  EXPECT_TRUE(close(f(strided), chain8(strided), 1e-5, 1e-6));
  Tensor wide = random_tensor({6, 5}, kDouble);
  EXPECT_TRUE(close(f(wide), chain8(wide), 1e-12, 1e-12));
  EXPECT_TRUE(close(f(x), chain8(x), 1e-5, 1e-6));  // back to the first plan
  auto s = f.stats();
  EXPECT_EQ(s.entries.size(), 3u);
  EXPECT_EQ(s.misses, 3u);
  EXPECT_EQ(s.hits, 2u);
  EXPECT_EQ(s.entries[0].calls, 3u);
  // requires_grad with grad mode on: eager with autograd, even right after a cached call.
  Tensor g = x.detach().requires_grad_();
  Tensor y = f(g);
  EXPECT_TRUE(y.requires_grad());
  EXPECT_EQ(f.stats().eager_calls, 1u);
}

TEST(Jit, DynamicModeCompilesKernelsOnce) {
  TempCache cache;
  runtime::KernelCache::get().clear();
  CompileOptions o = cache.options();
  o.dynamic = true;
  o.recompile_limit = 1;
  auto f = jit::compile(chain8, o);
  for (int64_t n : {16, 100, 7, 1000}) {
    Tensor x = random_tensor({n, 3}, kFloat);
    EXPECT_TRUE(close(f(x), chain8(x), 1e-5, 1e-6)) << n;
  }
  auto s = f.stats();
  ASSERT_EQ(s.entries.size(), 1u);
  EXPECT_FALSE(s.limit_reached);
  EXPECT_EQ(s.eager_calls, 0u);
  EXPECT_EQ(s.entries[0].kernels_compiled + s.entries[0].kernels_from_disk, 1)
      << explain(f);  // later sizes reuse the kernel
}

TEST(Jit, ConcurrentFirstCallsCompileOnce) {
  TempCache cache;
  auto f = jit::compile(chain8, cache.options());
  Tensor x = random_tensor({4096}, kFloat);
  Tensor want = chain8(x);
  std::atomic<int> bad{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&] {
      for (int i = 0; i < 20; ++i)
        if (!close(f(x), want, 1e-5, 1e-6)) ++bad;
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(bad.load(), 0);
  auto s = f.stats();
  EXPECT_EQ(s.entries.size(), 1u);
  EXPECT_EQ(s.misses, 1u);
  EXPECT_EQ(s.hits, 79u);
}

TEST(Jit, DiskCacheServesASecondCompileWithoutLLVM) {
  TempCache cache;
  runtime::KernelCache::get().clear();
  auto f1 = jit::compile(chain8, cache.options());
  Tensor x = random_tensor({333}, kFloat);
  f1(x);
  EXPECT_GE(f1.stats().entries[0].kernels_compiled, 1);
  runtime::KernelCache::get().clear();  // as if in a new process
  auto f2 = jit::compile(chain8, cache.options());
  EXPECT_TRUE(close(f2(x), chain8(x), 1e-5, 1e-6));
  auto e = f2.stats().entries[0];
  EXPECT_EQ(e.kernels_compiled, 0) << explain(f2);
  EXPECT_GE(e.kernels_from_disk, 1);
  // Corrupt every entry: detected, rebuilt, still correct.
  for (auto& p : fs::recursive_directory_iterator(cache.dir))
    if (p.is_regular_file()) {
      std::fstream fh(p.path(), std::ios::in | std::ios::out | std::ios::binary);
      fh.seekp(60);
      fh.put('\x5a');
    }
  runtime::KernelCache::get().clear();
  auto f3 = jit::compile(chain8, cache.options());
  EXPECT_TRUE(close(f3(x), chain8(x), 1e-5, 1e-6));
  EXPECT_GE(f3.stats().entries[0].kernels_compiled, 1);
}

TEST(Jit, ModesGiveTheSameAnswers) {
  TempCache cache;
  Tensor x = random_tensor({1000}, kFloat);
  CompileOptions ro = cache.options();
  ro.mode = jit::CompileMode::ReduceOverhead;
  auto f = jit::compile(chain8, ro);
  EXPECT_TRUE(close(f(x), chain8(x), 1e-5, 1e-6));
  CompileOptions at = cache.options();
  at.mode = jit::CompileMode::MaxAutotune;
  auto g = jit::compile(chain8, at);
  EXPECT_TRUE(close(g(x), chain8(x), 1e-5, 1e-6));
  // The autotuned choice is remembered: a new function finds it without timing again.
  runtime::KernelCache::get().clear();
  auto h = jit::compile(chain8, at);
  EXPECT_TRUE(close(h(x), chain8(x), 1e-5, 1e-6));
  EXPECT_EQ(h.stats().entries[0].kernels_compiled, 0) << explain(h);
}

// An LSTM cell over a sequence (the bench_jit layer): the recurrent product of each step is
// computed in the step's gate kernel.
Tensor lstm_steps(const Tensor& x, Tensor h, Tensor c, const Tensor& w_ih, const Tensor& w_hh,
                  const Tensor& b) {
  for (int64_t t = 0; t < x.size(0); ++t) {
    Tensor gates = linear(x[t], w_ih, b) + linear(h, w_hh);
    std::vector<Tensor> g = gates.chunk(4, 1);
    c = sigmoid(g[1]) * c + sigmoid(g[0]) * tanh(g[2]);
    h = sigmoid(g[3]) * tanh(c);
  }
  return h;
}

TEST(Jit, SmallProductsRunInsideTheirKernels) {
  TempCache cache;
  NoGradGuard ng;
  for (auto mode : {jit::CompileMode::Default, jit::CompileMode::ReduceOverhead,
                    jit::CompileMode::MaxAutotune}) {
    for (auto [hidden, batch] :
         std::vector<std::pair<int64_t, int64_t>>{{16, 3}, {5, 1}, {64, 8}}) {
      SCOPED_TRACE(
          fmt::format("hidden {} batch {} mode {}", hidden, batch, static_cast<int>(mode)));
      CompileOptions o = cache.options();
      o.mode = mode;
      auto f = jit::compile(lstm_steps, o);
      Tensor x = random_tensor({4, batch, 7}, kFloat), h = random_tensor({batch, hidden}, kFloat),
             c = random_tensor({batch, hidden}, kFloat),
             w_ih = random_tensor({4 * hidden, 7}, kFloat, -0.3, 0.3),
             w_hh = random_tensor({4 * hidden, hidden}, kFloat, -0.3, 0.3),
             b = random_tensor({4 * hidden}, kFloat);
      const Tensor want = lstm_steps(x.to(kDouble), h.to(kDouble), c.to(kDouble), w_ih.to(kDouble),
                                     w_hh.to(kDouble), b.to(kDouble));
      EXPECT_TRUE(close(f(x, h, c, w_ih, w_hh, b), want, 1e-5, 1e-5)) << explain(f);
      EXPECT_TRUE(close(lstm_steps(x, h, c, w_ih, w_hh, b), want, 1e-5, 1e-5));
      // A transposed state: another signature, the products read it with other strides.
      Tensor ht = random_tensor({hidden, batch}, kFloat).t();
      EXPECT_TRUE(close(f(x, ht, c, w_ih, w_hh, b),
                        lstm_steps(x.to(kDouble), ht.to(kDouble), c.to(kDouble), w_ih.to(kDouble),
                                   w_hh.to(kDouble), b.to(kDouble)),
                        1e-5, 1e-5));
      const std::string plan = explain(f);
      // Each step: one kernel with the four gates' products; the input projections stay one
      // library call (batch_mm stacked them; too large to inline at hidden 64).
      EXPECT_NE(plan.find("+ 4 product(s)"), std::string::npos) << plan;
      EXPECT_LE(f.stats().entries[0].library_calls, 1) << plan;
      EXPECT_EQ(f.stats().entries[0].fallback_groups, 0) << plan;
    }
  }
}

TEST(Jit, CompiledModuleSeesParameterUpdates) {
  TempCache cache;
  nn::Sequential net(nn::Linear(6, 8), nn::ReLU(), nn::Linear(8, 3));
  NoGradGuard ng;
  auto f = jit::compile(net, cache.options());
  Tensor x = random_tensor({4, 6}, kFloat);
  EXPECT_TRUE(close(f(x), net->forward(x), 1e-5, 1e-6));
  for (auto& p : net->parameters()) p.mul_(0.5);
  EXPECT_TRUE(close(f(x), net->forward(x), 1e-5, 1e-6));
  EXPECT_EQ(f.stats().entries.size(), 1u);
}

TEST(Jit, ErrorsComeFromTheUsersOp) {
  TempCache cache;
  auto bad = [](const Tensor& a, const Tensor& b) { return a.matmul(b); };
  auto f = jit::compile(bad, cache.options());
  EXPECT_KILN_ERROR(f(random_tensor({2, 3}, kFloat), random_tensor({4, 5}, kFloat)),
                    {"matmul", "[2, 3]", "[4, 5]"});
  // The boxed form called with a number of tensors the function does not take.
  EXPECT_KILN_ERROR(f.core()(std::vector<IValue>{IValue(random_tensor({2}, kFloat))}),
                    {"jit.compile", "1 tensor(s)", "as many as the compiled function takes"});
  // A dtype the code generator does not take: the group runs eagerly, and explain says why.
  auto g = jit::compile(chain8, cache.options());
  Tensor h = random_tensor({9}, kFloat).to(kHalf);
  EXPECT_TRUE(close(g(h), chain8(h), 0, 0));
  auto e = g.stats().entries[0];
  EXPECT_GE(e.fallback_groups, 1);
  ASSERT_FALSE(e.fallback_reasons.empty());
  EXPECT_NE(e.fallback_reasons[0].find("float16"), std::string::npos) << explain(g);
}

}  // namespace
}  // namespace kiln::testing
