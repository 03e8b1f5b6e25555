// The oneDNN boundary: engine, per-thread streams, the primitive cache and error conversion.
// Debian's libdnnl 2.6 is built with the OpenMP runtime (libgomp), so oneDNN's thread count is
// OpenMP's: we set it per calling thread to kiln's count through omp_set_num_threads.
#include "tensor/onednn.h"

#include <dlfcn.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <chrono>
#include <limits>
#include <list>
#include <mutex>

#include "kiln/core/error.h"
#include "kiln/core/thread_pool.h"

namespace kiln::onednn {
namespace {

// Distinct signatures kept before the least recently used primitive is dropped.
constexpr size_t kCacheCapacity = 1024;

const char* status_name(dnnl_status_t s) {
  switch (s) {
    case dnnl_success:
      return "success";
    case dnnl_out_of_memory:
      return "out_of_memory";
    case dnnl_invalid_arguments:
      return "invalid_arguments";
    case dnnl_unimplemented:
      return "unimplemented";
    case dnnl_iterator_ends:
      return "iterator_ends";
    case dnnl_runtime_error:
      return "runtime_error";
    case dnnl_not_required:
      return "not_required";
  }
  return "unknown";
}

class PrimitiveCache {
 public:
  std::shared_ptr<const Primitive> find(const std::string& key, bool& found) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = map_.find(key);
    found = it != map_.end();
    if (!found) return nullptr;
    lru_.splice(lru_.begin(), lru_, it->second.lru);
    return it->second.value;
  }
  void insert(const std::string& key, std::shared_ptr<const Primitive> value) {
    std::lock_guard<std::mutex> lock(mu_);
    if (map_.count(key)) return;  // another thread created it first
    lru_.push_front(key);
    map_.emplace(key, Entry{std::move(value), lru_.begin()});
    if (map_.size() > kCacheCapacity) {
      map_.erase(lru_.back());
      lru_.pop_back();
    }
  }
  size_t size() {
    std::lock_guard<std::mutex> lock(mu_);
    return map_.size();
  }

 private:
  struct Entry {
    std::shared_ptr<const Primitive> value;  // null: oneDNN has no implementation
    std::list<std::string>::iterator lru;
  };
  std::mutex mu_;
  std::list<std::string> lru_;
  std::unordered_map<std::string, Entry> map_;
};

PrimitiveCache& cache() {
  static PrimitiveCache c;
  return c;
}

dnnl::stream& stream() {
  thread_local dnnl::stream s(engine());
  return s;
}

// OpenMP's per-thread team size. Looked up at run time: kiln does not link OpenMP itself, the
// symbol comes from the libgomp that libdnnl pulls in (absent with a TBB or sequential build).
// Note [OpenMP teams beside kiln's pool]: libgomp's idle team threads spin for a while after
// each region (OMP_WAIT_POLICY, read once at load), competing with kiln's pool for cores; on
// an oversubscribed machine a two-thread team waited ~15 ms per call where PASSIVE took 0.6 ms.
// Hence small calls run single-threaded (threads_for) and no team is ever opened from inside a
// kiln parallel region.
using SetFn = void (*)(int);
SetFn omp_set_num_threads_fn() {
  static const SetFn fn = reinterpret_cast<SetFn>(dlsym(RTLD_DEFAULT, "omp_set_num_threads"));
  return fn;
}

void set_dnnl_threads(int want) {
  const SetFn set_fn = omp_set_num_threads_fn();
  if (set_fn == nullptr) return;
  thread_local int current = -1;
  if (want != current) {
    set_fn(want);
    current = want;
  }
}

// Grow-only scratchpad per thread: primitives run with a user scratchpad (see attr()).
void* scratchpad(size_t bytes) {
  thread_local std::vector<std::byte> buf;
  if (buf.size() < bytes) buf.resize(bytes);
  return buf.data();
}

}  // namespace

void set_threads(int n) { set_dnnl_threads(n); }

namespace {
// When the last multi-threaded oneDNN call ended (steady clock, ns).
std::atomic<int64_t> g_last_team_ns{std::numeric_limits<int64_t>::min() / 2};

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
// Records the end of a oneDNN primitive on `threads` OpenMP threads (the team's spinning
// starts then); execute() calls it. Products handed to the team because of it do not.
void note_team_used(int threads) {
  if (threads > 1) g_last_team_ns.store(now_ns(), std::memory_order_relaxed);
}

}  // namespace

bool team_recently_used() {
  return omp_set_num_threads_fn() != nullptr &&
         now_ns() - g_last_team_ns.load(std::memory_order_relaxed) < kTeamSpinNs;
}

const dnnl::engine& engine() {
  static const dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

std::optional<dnnl::memory::data_type> to_dnnl(ScalarType t) {
  using dt = dnnl::memory::data_type;
  switch (t) {
    case kFloat:
      return dt::f32;
    case kBFloat16:
      return dt::bf16;
    case kHalf:
      return dt::f16;
    case kInt:
      return dt::s32;
    case kChar:
      return dt::s8;
    case kByte:
      return dt::u8;
    default:
      return std::nullopt;
  }
}

int threads_for(int64_t work, int64_t grain) {
  if (detail::in_parallel_region()) return 1;
  const int64_t n = std::clamp<int64_t>(work / std::max<int64_t>(1, grain), 1, get_num_threads());
  return static_cast<int>(n);
}

KeyBuilder& KeyBuilder::add(int64_t v) {
  key_.append(reinterpret_cast<const char*>(&v), sizeof(v));
  return *this;
}

KeyBuilder& KeyBuilder::add(IntArrayRef v) {
  add(static_cast<int64_t>(v.size()));
  for (int64_t x : v) add(x);
  return *this;
}

KeyBuilder& KeyBuilder::add(const dnnl::memory::dims& v) {
  return add(IntArrayRef(v.data(), v.size()));
}

KeyBuilder& KeyBuilder::add_double(double v) { return add(std::bit_cast<int64_t>(v)); }

dnnl::primitive_attr attr() {
  dnnl::primitive_attr a;
  a.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return a;
}

std::shared_ptr<const Primitive> get_or_create(const char* op, const KeyBuilder& key, int threads,
                                               const std::function<Primitive()>& create) {
  // The thread count is part of the signature: some implementations fix their work split when
  // the primitive is created.
  KeyBuilder full = key;
  full.add(threads);
  bool found = false;
  std::shared_ptr<const Primitive> p = cache().find(full.str(), found);
  if (found) return p;
  try {
    set_dnnl_threads(threads);
    static std::atomic<uint64_t> next_id{1};
    auto created = std::make_shared<Primitive>(create());
    created->threads = threads;
    created->id = next_id.fetch_add(1);
    p = std::move(created);
  } catch (const dnnl::error& e) {
    if (e.status != dnnl_unimplemented) rethrow(op, e);
    p = nullptr;
  }
  cache().insert(full.str(), p);
  return p;
}

dnnl::memory memory(const char* op, const dnnl::memory::desc& md, const void* data) {
  try {
    return dnnl::memory(md, engine(), const_cast<void*>(data));
  } catch (const dnnl::error& e) {
    rethrow(op, e);
  }
}

dnnl::memory bound_memory(const char* op, const Primitive& p, int slot,
                          const dnnl::memory::desc& md, const void* data) {
  // Per thread, the memory objects of the primitives it ran last (bounded: cleared when full).
  thread_local std::unordered_map<uint64_t, std::array<dnnl::memory, 8>> bound;
  KILN_ASSERT(slot >= 0 && slot < 8 && p.id != 0, "[{}] bound_memory: bad slot {} or primitive",
              op, slot);
  if (bound.size() > 256 && !bound.count(p.id)) bound.clear();
  dnnl::memory& m = bound[p.id][slot];
  try {
    if (!m) {
      m = memory(op, md, data);
    } else {
      m.set_data_handle(const_cast<void*>(data));
    }
  } catch (const dnnl::error& e) {
    rethrow(op, e);
  }
  return m;
}

void execute(const char* op, const Primitive& p, std::unordered_map<int, dnnl::memory> args) {
  try {
    set_dnnl_threads(p.threads);
    const size_t bytes = p.scratchpad.get_size();
    if (bytes > 0) {
      args.emplace(DNNL_ARG_SCRATCHPAD,
                   p.id != 0 ? bound_memory(op, p, 7, p.scratchpad, scratchpad(bytes))
                             : memory(op, p.scratchpad, scratchpad(bytes)));
    }
    p.primitive.execute(stream(), args);
    stream().wait();
    note_team_used(p.threads);  // its threads spin from now on
  } catch (const dnnl::error& e) {
    rethrow(op, e);
  }
}

std::shared_ptr<const Primitive> make_reorder(const dnnl::memory::desc& src,
                                              const dnnl::memory::desc& dst, int threads) {
  dnnl::reorder::primitive_desc pd(engine(), src, engine(), dst, attr());
  auto p = std::make_shared<Primitive>();
  p->primitive = dnnl::reorder(pd);
  p->scratchpad = pd.scratchpad_desc();
  p->threads = threads;
  return p;
}

void rethrow(const char* op, const dnnl::error& e) {
  KILN_FAIL("[{}] oneDNN error ({}): {}", op, status_name(e.status), e.what());
}

size_t cache_size() { return cache().size(); }

}  // namespace kiln::onednn
