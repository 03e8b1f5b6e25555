// The oneDNN boundary of the eager CPU kernels (matmul, convolution, pooling): one CPU engine,
// a stream per thread, a thread-safe cache of primitives keyed by op signature, and the
// conversion of dnnl::error into kiln::Error. Internal: only src/tensor/*.cpp include it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <oneapi/dnnl/dnnl.hpp>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "kiln/core/array_ref.h"
#include "kiln/core/dtype.h"

namespace kiln::onednn {

/// The CPU engine every primitive is created on (created once, shared by all threads).
const dnnl::engine& engine();

/// The oneDNN data type of a kiln dtype, or nullopt where oneDNN has none (float64, int64, bool).
std::optional<dnnl::memory::data_type> to_dnnl(ScalarType t);

/// Builds a cache key: the op name, then integers (dims, strides, dtypes, attributes).
class KeyBuilder {
 public:
  explicit KeyBuilder(const char* op) : key_(op) { key_.push_back('\0'); }
  KeyBuilder& add(int64_t v);
  KeyBuilder& add(IntArrayRef v);
  KeyBuilder& add(const dnnl::memory::dims& v);
  /// Adds the exact bit pattern of a double (for alpha/beta attributes).
  KeyBuilder& add_double(double v);
  const std::string& str() const { return key_; }

 private:
  std::string key_;
};

/// A created primitive with what running it needs. `mds` holds op-specific descriptors queried
/// from the primitive descriptor (for example the weights layout a convolution chose), and
/// `reorders` matching reorder primitives from the user's layout (null where none is needed).
/// `threads` is the OpenMP team size it was created for and runs with.
struct Primitive {
  dnnl::primitive primitive;
  dnnl::memory::desc scratchpad;
  std::vector<dnnl::memory::desc> mds;
  std::vector<std::shared_ptr<const Primitive>> reorders;
  int threads = 1;
  uint64_t id = 0;  ///< unique per primitive get_or_create made (keys bound_memory)
};

/// Threads for a call doing `work` units: one per `grain` units, at most kiln's thread count,
/// and 1 inside a kiln parallel region. Small calls stay on the caller: waking an OpenMP team
/// costs more than they do.
int threads_for(int64_t work, int64_t grain);

/// Sets the OpenMP team size of this thread's next oneDNN calls that take no primitive
/// (dnnl_sgemm); primitives set their own in execute().
void set_threads(int n);

/// How long after a multi-threaded oneDNN call its OpenMP team is taken to be still spinning
/// (libgomp's default wait policy spins some 300k iterations, milliseconds, before sleeping).
inline constexpr int64_t kTeamSpinNs = 10'000'000;
/// True when a oneDNN primitive on an OpenMP team of more than one thread ended within
/// kTeamSpinNs: the team's idle threads are spinning on the cores (Note [OpenMP teams beside
/// kiln's pool]), so work that could run on either is better handed to them than to kiln's
/// pool, which would compete. Work handed over does not extend the window. False without
/// OpenMP.
bool team_recently_used();

/// The cached primitive for (key, threads), created by `create` on first use. Returns null when
/// oneDNN has no implementation for the signature (dnnl_unimplemented; also cached), so callers
/// can fall back to their own kernel. Any other oneDNN error becomes a kiln::Error naming op.
/// `create` must build primitive attributes with scratchpad_mode::user (see attr()).
std::shared_ptr<const Primitive> get_or_create(const char* op, const KeyBuilder& key, int threads,
                                               const std::function<Primitive()>& create);

/// Default attributes for every cached primitive: a user-provided scratchpad, so one primitive
/// may run on several threads at once.
dnnl::primitive_attr attr();

/// Wraps a pointer as oneDNN memory (no copy); errors name op.
dnnl::memory memory(const char* op, const dnnl::memory::desc& md, const void* data);

/// memory(op, md, data) for argument `slot` (0-7) of primitive p, reused from this thread's
/// previous call of p with only the data handle changed (creating oneDNN memory objects is a
/// measurable part of a small product). Valid until this thread's next call for (p, slot).
dnnl::memory bound_memory(const char* op, const Primitive& p, int slot,
                          const dnnl::memory::desc& md, const void* data);

/// Runs p with args (plus a scratchpad sized for it) on this thread's stream and waits, with
/// an OpenMP team of p.threads.
void execute(const char* op, const Primitive& p, std::unordered_map<int, dnnl::memory> args);

/// A reorder primitive (with a user scratchpad) from src to dst layout; throws on failure.
std::shared_ptr<const Primitive> make_reorder(const dnnl::memory::desc& src,
                                              const dnnl::memory::desc& dst, int threads);

/// Rethrows a dnnl::error as kiln::Error "[op] oneDNN error (status): text".
[[noreturn]] void rethrow(const char* op, const dnnl::error& e);

/// Number of primitives in the cache (for tests).
size_t cache_size();

}  // namespace kiln::onednn
