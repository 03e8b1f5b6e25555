// jit::compile: per input signature, trace -> pass pipeline -> executor (generated kernels +
// library calls), cached in memory (thread-safe: concurrent first calls compile once) with the
// kernels also on disk; bounded by a recompile limit past which calls run eagerly (said once).
#include "kiln/jit/compile.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <optional>
#include <shared_mutex>

#include "kiln/autograd/grad_mode.h"
#include "kiln/ir/printer.h"
#include "kiln/passes/pipeline.h"
#include "runtime/disk_cache.h"
#include "runtime/executor.h"

namespace kiln::jit {
namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// One input's part of a signature: what a compiled graph is specialised for.
struct InputSig {
  ScalarType dtype = kFloat;
  DeviceType device = kCPU;
  int16_t index = -1;
  std::vector<int64_t> sizes;
  bool contiguous = true;
  bool requires_grad = false;
  bool operator<(const InputSig& o) const {
    return std::tie(dtype, device, index, sizes, contiguous, requires_grad) <
           std::tie(o.dtype, o.device, o.index, o.sizes, o.contiguous, o.requires_grad);
  }
  bool operator==(const InputSig& o) const = default;
  static InputSig of(const Tensor& t) {
    InputSig i;
    i.dtype = t.dtype();
    i.device = t.device().type();
    i.index = t.device().index();
    i.sizes = t.sizes().vec();
    i.contiguous = t.is_contiguous();
    i.requires_grad = t.requires_grad();
    return i;
  }
  // of(t) == *this, without building of(t) (the cached-call fast path).
  bool matches(const Tensor& t) const {
    return t.dtype() == dtype && t.device().type() == device && t.device().index() == index &&
           t.sizes().equals(sizes) && t.is_contiguous() == contiguous &&
           t.requires_grad() == requires_grad;
  }
  std::string str() const {
    return fmt::format("{}{}{}{}", dtype_name(dtype), shape_str(sizes),
                       contiguous ? "" : " strided", requires_grad ? " requires_grad" : "");
  }
};
using Signature = std::vector<InputSig>;

Signature signature_of(const std::vector<IValue>& all) {
  Signature s;
  for (const IValue& v : all) {
    KILN_CHECK(v.is_tensor() && v.toTensor().defined(),
               "[jit.compile] compiled functions take tensors: got an argument of kind {}",
               v.kind_name());
    s.push_back(InputSig::of(v.toTensor()));
  }
  return s;
}

std::string signature_str(const Signature& s) {
  std::string r;
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + s[i].str();
  return r;
}

// What changed from the closest earlier signature: the reason for a recompile.
std::string diff(const Signature& a, const Signature& b) {
  std::vector<std::string> d;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    if (a[i].dtype != b[i].dtype)
      d.push_back(fmt::format("input {} dtype {} -> {}", i, dtype_name(a[i].dtype),
                              dtype_name(b[i].dtype)));
    if (a[i].sizes != b[i].sizes)
      d.push_back(fmt::format("input {} sizes {} -> {}", i, shape_str(a[i].sizes),
                              shape_str(b[i].sizes)));
    if (a[i].contiguous != b[i].contiguous)
      d.push_back(fmt::format("input {} became {}", i, b[i].contiguous ? "contiguous" : "strided"));
    if (a[i].requires_grad != b[i].requires_grad)
      d.push_back(fmt::format("input {} requires_grad {} -> {}", i, a[i].requires_grad,
                              b[i].requires_grad));
    if (a[i].device != b[i].device) d.push_back(fmt::format("input {} moved device", i));
  }
  if (a.size() != b.size()) d.push_back(fmt::format("{} -> {} inputs", a.size(), b.size()));
  std::string r;
  for (size_t i = 0; i < d.size(); ++i) r += (i ? "; " : "") + d[i];
  return r;
}

size_t distance(const Signature& a, const Signature& b) {
  size_t n = a.size() == b.size() ? 0 : 100;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) n += !(a[i] == b[i]);
  return n;
}

// The dynamic-mode key: sizes replaced by their rank.
Signature without_sizes(Signature s) {
  for (InputSig& i : s) i.sizes.assign(i.sizes.size(), -1);
  return s;
}

struct Entry {
  Signature sig;  // the first exact signature (for dynamic entries: the first sizes seen)
  std::mutex build;  // held while compiling: concurrent first calls wait, then reuse
  bool ready = false;
  bool eager = false;
  std::map<Signature, std::shared_ptr<runtime::Executor>> plans;  // by exact signature
  CompiledEntryStats stats;
};

runtime::DiskCache* disk_cache_for(const CompileOptions& o) {
  if (!o.disk_cache) return nullptr;
  // One cache object per directory for the process (stats are per object).
  static std::mutex m;
  static std::map<std::string, std::unique_ptr<runtime::DiskCache>> caches;
  const std::filesystem::path dir = o.cache_dir.empty() ? runtime::DiskCache::default_dir()
                                                        : std::filesystem::path(o.cache_dir);
  if (dir.empty()) return nullptr;
  std::lock_guard<std::mutex> lk(m);
  auto& c = caches[dir.string()];
  if (!c) c = std::make_unique<runtime::DiskCache>(dir);
  return c.get();
}

std::string dump_ir_setting() {
  const char* d = std::getenv("KILN_DUMP_IR");
  return d ? d : "";
}
bool dump_has(const std::string& setting, std::string_view what) {
  size_t pos = 0;
  while (pos <= setting.size()) {
    const size_t end = std::min(setting.find(',', pos), setting.size());
    if (setting.substr(pos, end - pos) == what) return true;
    pos = end + 1;
  }
  return false;
}

}  // namespace

struct CompiledFunction::Impl {
  BoxedFn fn;
  CompileOptions options;
  std::function<std::vector<std::pair<std::string, Tensor>>()> params;
  mutable std::shared_mutex mutex;

  // The fast path of operator(): the inputs match the last plan's exact signature (compared in
  // place) and need no autograd. nullopt sends the call down the full path.
  std::optional<IValue> run_fast(const std::vector<IValue>& all) {
    std::shared_ptr<const Fast> f;
    {
      std::shared_lock<std::shared_mutex> lk(mutex);
      f = fast;
    }
    if (!f || f->exact.size() != all.size()) return std::nullopt;
    const bool grad = GradMode::is_enabled();
    for (size_t i = 0; i < all.size(); ++i) {
      if (!all[i].is_tensor()) return std::nullopt;
      const Tensor& t = all[i].toTensor();
      const InputSig& s = f->exact[i];
      if (!t.defined() || !s.matches(t) || (grad && s.requires_grad)) return std::nullopt;
    }
    ++hits;
    {
      std::lock_guard<std::mutex> b(f->entry->build);
      ++f->entry->stats.calls;
    }
    std::vector<IValue> out = f->plan->run(all);
    return std::move(out.at(0));
  }
  std::map<Signature, std::shared_ptr<Entry>> entries;
  std::vector<std::shared_ptr<Entry>> order;  // creation order, for stats
  mutable std::atomic<uint64_t> calls{0}, hits{0}, misses{0}, eager_calls{0};
  std::once_flag limit_warning, grad_warning;
  bool limit_reached = false;
  // The last entry hit, checked first (the common case: one signature over and over).
  std::shared_ptr<Entry> last;
  Signature last_key;
  // The last plan run and its exact signature: a call whose inputs match it in place (no
  // signature built, no map lookups) runs it directly.
  struct Fast {
    Signature exact;
    std::shared_ptr<Entry> entry;
    std::shared_ptr<runtime::Executor> plan;
  };
  std::shared_ptr<const Fast> fast;

  std::string name() const { return options.name.empty() ? "compiled function" : options.name; }

  void build(Entry& e, const std::vector<IValue>& inputs,
             const std::vector<std::pair<std::string, Tensor>>& params,
             const std::vector<IValue>& all, const Signature& exact) {
    const auto t0 = Clock::now();
    CompiledEntryStats& st = e.stats;
    TraceOptions to;
    to.parameters = params;
    auto t_trace = Clock::now();
    TracedFunction traced = trace(fn, inputs, to);
    st.trace_ms += ms_since(t_trace);
    st.trace_warnings = traced.warnings();
    std::unique_ptr<ir::Graph> g = traced.graph().copy();
    auto t_pass = Clock::now();
    passes::PassStats ps = passes::run_default_pipeline(*g);
    st.passes_ms += ms_since(t_pass);
    st.pass_times.clear();
    for (const auto& p : ps.passes)
      st.pass_times.push_back(fmt::format("{} {:.3f} ms", p.name, p.milliseconds));
    runtime::ExecutorOptions eo;
    eo.llvm.opt_level = options.opt_level;
    eo.disk_cache = disk_cache_for(options);
    eo.autotune = options.mode == CompileMode::MaxAutotune;
    const std::string dump = dump_ir_setting();
    eo.dump_llvm = dump_has(dump, "llvm") || dump_has(dump, "all");
    eo.dump_asm = dump_has(dump, "asm");
    auto ex = std::make_shared<runtime::Executor>(std::move(g), all, eo);
    const runtime::KernelStats& ks = ex->stats();
    st.fused_kernels = ks.fused_kernels;
    st.kernels_compiled += ks.kernels_compiled;
    st.kernels_from_memory += ks.kernels_from_memory;
    st.kernels_from_disk += ks.kernels_from_disk;
    st.library_calls = ks.library_calls;
    st.eager_ops = ks.eager_ops;
    st.fallback_groups = ks.fallback_groups;
    st.fallback_reasons = ks.fallback_reasons;
    st.codegen_ms += ks.codegen_ms;
    st.load_ms += ks.load_ms;
    st.plan = ex->describe();
    e.plans[exact] = std::move(ex);
    st.total_ms += ms_since(t0);
  }
};

CompiledFunction::CompiledFunction(BoxedFn fn, CompileOptions options,
                                   std::function<std::vector<std::pair<std::string, Tensor>>()> params)
    : impl_(std::make_shared<Impl>()) {
  KILN_CHECK(options.recompile_limit >= 1,
             "[jit.compile] recompile_limit must be at least 1, got {}", options.recompile_limit);
  KILN_CHECK(options.opt_level >= 0 && options.opt_level <= 3,
             "[jit.compile] opt_level must be 0..3, got {}", options.opt_level);
  impl_->fn = std::move(fn);
  impl_->options = std::move(options);
  impl_->params = std::move(params);
}

const CompileOptions& CompiledFunction::options() const { return impl_->options; }

IValue CompiledFunction::operator()(const std::vector<IValue>& inputs) const {
  Impl& m = *impl_;
  ++m.calls;
  std::vector<std::pair<std::string, Tensor>> params;
  if (m.params) params = m.params();
  std::vector<IValue> all = inputs;
  for (const auto& [name, t] : params) all.emplace_back(t);
  if (auto out = m.run_fast(all)) return std::move(*out);
  const Signature exact = signature_of(all);
  const Signature key = m.options.dynamic ? without_sizes(exact) : exact;

  std::shared_ptr<Entry> e;
  {
    std::shared_lock<std::shared_mutex> lk(m.mutex);
    if (m.last && m.last_key == key) {
      e = m.last;
    } else {
      auto it = m.entries.find(key);
      if (it != m.entries.end()) e = it->second;
    }
  }
  if (!e) {
    std::unique_lock<std::shared_mutex> lk(m.mutex);
    auto it = m.entries.find(key);
    if (it != m.entries.end()) {
      e = it->second;
    } else if (static_cast<int>(m.entries.size()) >= m.options.recompile_limit) {
      m.limit_reached = true;
      lk.unlock();
      ++m.eager_calls;
      std::call_once(m.limit_warning, [&] {
        std::fprintf(stderr,
                     "[kiln.jit] %s: recompile limit (%d) reached: the new signature (%s) runs "
                     "eagerly, as will later new ones (see jit::explain; this is said once)\n",
                     m.name().c_str(), m.options.recompile_limit, signature_str(exact).c_str());
      });
      return m.fn(inputs);
    } else {
      e = std::make_shared<Entry>();
      e->sig = exact;
      e->stats.signature = signature_str(exact);
      if (m.order.empty()) {
        e->stats.reason = "first call";
      } else {
        const Entry* best = m.order.front().get();
        for (const auto& o : m.order)
          if (distance(o->sig, exact) < distance(best->sig, exact)) best = o.get();
        e->stats.reason = "new signature: " + diff(best->sig, exact);
      }
      m.entries[key] = e;
      m.order.push_back(e);
    }
  }
  // Gradients through compiled graphs are not recorded yet: such signatures run eagerly.
  const bool wants_grad = [&] {
    if (!GradMode::is_enabled()) return false;
    for (const InputSig& s : exact)
      if (s.requires_grad) return true;
    return false;
  }();
  if (wants_grad) {
    {
      std::lock_guard<std::mutex> b(e->build);
      e->eager = true;
      e->ready = true;
      e->stats.eager = true;
      ++e->stats.calls;
    }
    ++m.eager_calls;
    std::call_once(m.grad_warning, [&] {
      std::fprintf(stderr,
                   "[kiln.jit] %s: inputs or parameters require grad and grad mode is on; "
                   "compiled graphs do not record autograd yet, so this runs eagerly (use "
                   "kiln::NoGradGuard for compiled inference; this is said once)\n",
                   m.name().c_str());
    });
    return m.fn(inputs);
  }
  std::shared_ptr<runtime::Executor> ex;
  {
    std::lock_guard<std::mutex> b(e->build);
    auto it = e->plans.find(exact);
    if (it == e->plans.end()) {
      // A new entry, or (dynamic) new sizes for an entry: trace and plan; kernels come from the
      // kernel cache when their programs were seen before.
      // The entry's first plan is its miss, whichever thread builds it: a caller that found
      // the entry another thread had just created can take the build lock first.
      const bool first_plan = e->plans.empty();
      if (!first_plan) e->stats.reason += fmt::format("; re-planned for {}", signature_str(exact));
      m.build(*e, inputs, params, all, exact);
      ++(first_plan ? m.misses : m.hits);
      ex = e->plans[exact];
    } else {
      ++m.hits;
      ex = it->second;
    }
    e->ready = true;
    ++e->stats.calls;
  }
  {
    auto fast = std::make_shared<Impl::Fast>(Impl::Fast{exact, e, ex});
    std::unique_lock<std::shared_mutex> lk(m.mutex);
    m.last = e;
    m.last_key = key;
    m.fast = std::move(fast);
  }
  std::vector<IValue> out = ex->run(all);
  return out.at(0);
}

CompileStats CompiledFunction::stats() const {
  const Impl& m = *impl_;
  std::shared_lock<std::shared_mutex> lk(m.mutex);
  CompileStats s;
  s.calls = m.calls;
  s.hits = m.hits;
  s.misses = m.misses;
  s.eager_calls = m.eager_calls;
  s.limit_reached = m.limit_reached;
  for (const auto& e : m.order) {
    std::lock_guard<std::mutex> b(e->build);
    s.entries.push_back(e->stats);
  }
  return s;
}

std::string explain(const CompiledFunction& f) {
  const CompileStats s = f.stats();
  const CompileOptions& o = f.options();
  std::string r = fmt::format(
      "{}: {} call(s), {} hit(s), {} miss(es), {} eager call(s); {} entr{} (limit {}){}{}\n",
      o.name.empty() ? "compiled function" : o.name, s.calls, s.hits, s.misses, s.eager_calls,
      s.entries.size(), s.entries.size() == 1 ? "y" : "ies", o.recompile_limit,
      o.dynamic ? ", dynamic" : "",
      s.limit_reached ? "; limit reached: new signatures run eagerly" : "");
  for (size_t i = 0; i < s.entries.size(); ++i) {
    const CompiledEntryStats& e = s.entries[i];
    r += fmt::format("entry {}: {}\n  why: {}\n  calls: {}\n", i, e.signature, e.reason, e.calls);
    if (e.eager) {
      r += "  runs eagerly: inputs require grad (compiled autograd is not there yet)\n";
      continue;
    }
    r += fmt::format(
        "  split: {} fused kernel(s), {} library call(s), {} eager op(s), {} group(s) run "
        "eagerly\n",
        e.fused_kernels, e.library_calls, e.eager_ops, e.fallback_groups);
    for (const std::string& why : e.fallback_reasons) r += fmt::format("    eager group: {}\n", why);
    r += fmt::format("  kernels: {} compiled, {} from memory, {} from disk\n", e.kernels_compiled,
                     e.kernels_from_memory, e.kernels_from_disk);
    r += fmt::format(
        "  time: trace {:.2f} ms, passes {:.2f} ms, codegen {:.2f} ms, load {:.2f} ms, total "
        "{:.2f} ms\n",
        e.trace_ms, e.passes_ms, e.codegen_ms, e.load_ms, e.total_ms);
    if (!e.pass_times.empty()) {
      r += "  passes:";
      for (const std::string& p : e.pass_times) r += " " + p + ";";
      r += "\n";
    }
    for (const std::string& w : e.trace_warnings) r += fmt::format("  trace warning: {}\n", w);
    r += "  plan:\n" + e.plan;
  }
  return r;
}

namespace compile_detail {
void bad_arity(size_t got) {
  KILN_CHECK(false,
             "[jit.compile] got a call with {} tensor(s), expected as many as the compiled "
             "function takes (a compiled function takes 0 to 8 Tensors).",
             got);
  std::abort();  // unreachable: KILN_CHECK(false) throws
}
}  // namespace compile_detail

void clear_kernel_cache() { runtime::KernelCache::get().clear(); }

}  // namespace kiln::jit
