// Factories (empty/zeros/ones/full/arange/linspace/eye/from_blob/tensor) and the random ones
// (rand/randn/randint/randperm) with a seeded, counter-based generator: element i of a draw is a
// pure function of (seed, counter + i), so the kernels parallelise and stay reproducible.
#include <algorithm>
#include <cmath>
#include <mutex>
#include <numbers>

#include "kiln/functions.h"
#include "tensor/internal.h"
#include "tensor/loops.h"
#include "tensor/record.h"

namespace kiln {
namespace {

Tensor finish(Tensor t, const TensorOptions& options) {
  if (options.requires_grad()) t.set_requires_grad(true);
  return t;
}

// Factories are recorded (as their Creation row) only while tracing: they have no inputs.
Tensor record_creation(ops::OpKind kind, std::vector<IValue> args, const TensorOptions& options) {
  return finish(detail::record1(kind, std::move(args)), options);
}

void check_device(const TensorOptions& options, const char* op) {
  KILN_CHECK(options.device().is_cpu(),
             "[{}] got device {}, expected cpu: this build of Kiln has no {} backend", op,
             options.device().str(), options.device().str());
}

// ---- random numbers ---------------------------------------------------------------------------
struct Generator {
  std::mutex mutex;
  uint64_t seed = 67280421310721ull;
  uint64_t counter = 0;
  // Reserves n draws and returns the first counter value.
  uint64_t reserve(uint64_t n) {
    std::lock_guard<std::mutex> lk(mutex);
    uint64_t c = counter;
    counter += n;
    return c;
  }
};
Generator& generator() {
  static Generator g;
  return g;
}

inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
inline uint64_t draw(uint64_t seed, uint64_t i) { return mix64(seed + 0x9e3779b97f4a7c15ull * (i + 1)); }
// Uniform double in [0, 1) with 53 random bits.
inline double uniform01(uint64_t bits) { return static_cast<double>(bits >> 11) * 0x1.0p-53; }

// Fills a fresh contiguous tensor: value(i) is computed in double and converted.
template <typename Fn>
void fill_indexed(Tensor& t, const char* op, const Fn& value) {
  KILN_DISPATCH_ALL_TYPES(t.dtype(), op, [&] {
    auto* p = t.data_ptr<scalar_t>();
    parallel_for(0, t.numel(), detail::kElementwiseGrain / 4, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) p[i] = detail::convert<scalar_t>(value(i));
    });
  });
}

}  // namespace

void manual_seed(uint64_t seed) {
  Generator& g = generator();
  std::lock_guard<std::mutex> lk(g.mutex);
  g.seed = seed;
  g.counter = 0;
}

Tensor empty(IntArrayRef sizes, const TensorOptions& options) {
  check_device(options, "empty");
  return finish(detail::make_empty(sizes, options.dtype(), options.device()), options);
}

Tensor empty_strided(IntArrayRef sizes, IntArrayRef strides, const TensorOptions& options) {
  check_device(options, "empty_strided");
  KILN_CHECK(sizes.size() == strides.size(),
             "[empty_strided] got sizes {} and strides {}, expected the same number of dims",
             shape_str(sizes), shape_str(strides));
  int64_t extent = 1;
  for (size_t i = 0; i < sizes.size(); ++i) {
    KILN_CHECK(sizes[i] >= 0 && strides[i] >= 0,
               "[empty_strided] got sizes {} and strides {}, expected non-negative values",
               shape_str(sizes), shape_str(strides));
    if (sizes[i] == 0) extent = 0;
  }
  if (extent != 0)
    for (size_t i = 0; i < sizes.size(); ++i) extent += (sizes[i] - 1) * strides[i];
  Tensor base = detail::make_empty({extent}, options.dtype(), options.device());
  return finish(base.as_strided(sizes, strides, 0), options);
}

Tensor zeros(IntArrayRef sizes, const TensorOptions& options) {
  if (detail::should_record()) [[unlikely]]
    return full(sizes, 0, options.has_dtype() ? options : options.dtype(get_default_dtype()));
  Tensor t = empty(sizes, options.requires_grad(false));
  if (t.numel() > 0) std::memset(t.data_ptr(), 0, t.nbytes());
  return finish(t, options);
}

Tensor ones(IntArrayRef sizes, const TensorOptions& options) {
  return full(sizes, 1, options.has_dtype() ? options : options.dtype(get_default_dtype()));
}

Tensor full(IntArrayRef sizes, const Scalar& value, const TensorOptions& options) {
  TensorOptions o = options.has_dtype() ? options : options.dtype(value.type());
  if (detail::should_record()) [[unlikely]] {
    check_device(o, "full");
    return record_creation(ops::OpKind::Full, {sizes.vec(), value, o.dtype(), o.device()}, o);
  }
  Tensor t = empty(sizes, o.requires_grad(false));
  t.fill_(value);
  return finish(t, o);
}

namespace {
TensorOptions like(const Tensor& t, const TensorOptions& o) {
  TensorOptions r = o;
  if (!o.has_dtype()) r = r.dtype(t.dtype());
  if (!o.has_device()) r = r.device(t.device());
  return r;
}
}  // namespace

Tensor empty_like(const Tensor& t, const TensorOptions& o) { return empty(t.sizes(), like(t, o)); }
Tensor zeros_like(const Tensor& t, const TensorOptions& o) { return zeros(t.sizes(), like(t, o)); }
Tensor ones_like(const Tensor& t, const TensorOptions& o) { return ones(t.sizes(), like(t, o)); }
Tensor full_like(const Tensor& t, const Scalar& v, const TensorOptions& o) {
  return full(t.sizes(), v, like(t, o));
}
Tensor rand_like(const Tensor& t, const TensorOptions& o) { return rand(t.sizes(), like(t, o)); }
Tensor randn_like(const Tensor& t, const TensorOptions& o) { return randn(t.sizes(), like(t, o)); }

Tensor arange(const Scalar& end, const TensorOptions& options) { return arange(0, end, 1, options); }
Tensor arange(const Scalar& start, const Scalar& end, const TensorOptions& options) {
  return arange(start, end, 1, options);
}
Tensor arange(const Scalar& start, const Scalar& end, const Scalar& step,
              const TensorOptions& options) {
  bool all_int = !start.is_floating_point() && !end.is_floating_point() && !step.is_floating_point();
  TensorOptions o = options.has_dtype() ? options : options.dtype(all_int ? kLong : get_default_dtype());
  double s = start.toDouble(), e = end.toDouble(), st = step.toDouble();
  KILN_CHECK(st != 0, "[arange] got step 0, expected a non-zero step");
  KILN_CHECK(std::isfinite(s) && std::isfinite(e), "[arange] got unsupported range {} -> {}", s, e);
  KILN_CHECK((st > 0 && e >= s) || (st < 0 && e <= s),
             "[arange] upper bound and larger bound inconsistent with step sign: got start {}, "
             "end {}, step {}", s, e, st);
  if (detail::should_record()) [[unlikely]] {
    check_device(o, "arange");
    return record_creation(ops::OpKind::Arange, {start, end, step, o.dtype(), o.device()}, o);
  }
  int64_t n = all_int ? (end.toLong() - start.toLong() + step.toLong() + (st > 0 ? -1 : 1)) /
                            step.toLong()
                      : static_cast<int64_t>(std::ceil((e - s) / st));
  Tensor t = empty({std::max<int64_t>(n, 0)}, o.requires_grad(false));
  if (all_int) {
    int64_t s0 = start.toLong(), d = step.toLong();
    fill_indexed(t, "arange", [&](int64_t i) { return static_cast<double>(s0 + i * d); });
    if (t.dtype() == kLong) {  // exact for large int64 values
      auto* p = t.data_ptr<int64_t>();
      for (int64_t i = 0; i < t.numel(); ++i) p[i] = s0 + i * d;
    }
  } else {
    fill_indexed(t, "arange", [&](int64_t i) { return s + static_cast<double>(i) * st; });
  }
  return finish(t, o);
}

Tensor linspace(const Scalar& start, const Scalar& end, int64_t steps, const TensorOptions& options) {
  KILN_CHECK(steps >= 0, "[linspace] got steps {}, expected a non-negative number of steps", steps);
  if (detail::should_record()) [[unlikely]] {
    check_device(options, "linspace");
    return record_creation(ops::OpKind::Linspace,
                           {start, end, steps, options.dtype(), options.device()}, options);
  }
  Tensor t = empty({steps}, options.requires_grad(false));
  double s = start.toDouble(), e = end.toDouble();
  double step = steps > 1 ? (e - s) / static_cast<double>(steps - 1) : 0.0;
  int64_t half = std::max<int64_t>(steps / 2, 1);
  // Symmetric evaluation from both ends, like libtorch, so the last element is exactly `end`.
  fill_indexed(t, "linspace", [&](int64_t i) {
    return i < half ? s + step * static_cast<double>(i)
                    : e - step * static_cast<double>(steps - 1 - i);
  });
  return finish(t, options);
}

Tensor eye(int64_t n, const TensorOptions& options) { return eye(n, n, options); }
Tensor eye(int64_t n, int64_t m, const TensorOptions& options) {
  KILN_CHECK(n >= 0 && m >= 0, "[eye] got n = {}, m = {}, expected non-negative sizes", n, m);
  if (detail::should_record()) [[unlikely]] {
    check_device(options, "eye");
    return record_creation(ops::OpKind::Eye, {n, m, options.dtype(), options.device()}, options);
  }
  Tensor t = zeros({n, m}, options.requires_grad(false));
  int64_t k = std::min(n, m);
  if (k > 0) t.as_strided({k}, {m + 1}, 0).fill_(1);
  return finish(t, options);
}

Tensor rand(IntArrayRef sizes, const TensorOptions& options) {
  Tensor t = empty(sizes, options.requires_grad(false));
  detail::check_floating(t, "rand");
  if (detail::should_record()) [[unlikely]]
    return record_creation(ops::OpKind::Rand, {sizes.vec(), options.dtype(), options.device()},
                           options);
  uint64_t seed = generator().seed, c = generator().reserve(t.numel());
  // Draw on the dtype's own grid (mantissa digits) so rounding can never produce 1.0.
  int digits = t.dtype() == kDouble ? 53 : t.dtype() == kFloat ? 24 : t.dtype() == kHalf ? 11 : 8;
  double scale = std::ldexp(1.0, -digits);
  fill_indexed(t, "rand", [&](int64_t i) {
    return static_cast<double>(draw(seed, c + i) >> (64 - digits)) * scale;
  });
  return finish(t, options);
}

Tensor randn(IntArrayRef sizes, const TensorOptions& options) {
  Tensor t = empty(sizes, options.requires_grad(false));
  detail::check_floating(t, "randn");
  if (detail::should_record()) [[unlikely]]
    return record_creation(ops::OpKind::Randn, {sizes.vec(), options.dtype(), options.device()},
                           options);
  uint64_t seed = generator().seed, c = generator().reserve(2 * t.numel());
  // Box-Muller on two independent draws per element.
  fill_indexed(t, "randn", [&](int64_t i) {
    double u1 = 1.0 - uniform01(draw(seed, c + 2 * i)), u2 = uniform01(draw(seed, c + 2 * i + 1));
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
  });
  return finish(t, options);
}

Tensor randint(int64_t high, IntArrayRef sizes, const TensorOptions& options) {
  return randint(0, high, sizes, options);
}
Tensor randint(int64_t low, int64_t high, IntArrayRef sizes, const TensorOptions& options) {
  KILN_CHECK(low < high, "[randint] got range [{}, {}), expected low < high", low, high);
  TensorOptions o = options.has_dtype() ? options : options.dtype(kLong);
  if (detail::should_record()) [[unlikely]] {
    check_device(o, "randint");
    return record_creation(ops::OpKind::Randint, {low, high, sizes.vec(), o.dtype(), o.device()},
                           o);
  }
  Tensor t = empty(sizes, o.requires_grad(false));
  uint64_t range = static_cast<uint64_t>(high - low);
  uint64_t seed = generator().seed, c = generator().reserve(t.numel());
  if (t.dtype() == kLong) {
    auto* p = t.data_ptr<int64_t>();
    parallel_for(0, t.numel(), 8192, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) p[i] = low + static_cast<int64_t>(draw(seed, c + i) % range);
    });
  } else {
    fill_indexed(t, "randint", [&](int64_t i) {
      return static_cast<double>(low + static_cast<int64_t>(draw(seed, c + i) % range));
    });
  }
  return finish(t, o);
}

Tensor randperm(int64_t n, const TensorOptions& options) {
  KILN_CHECK(n >= 0, "[randperm] got n = {}, expected n >= 0", n);
  TensorOptions o = options.has_dtype() ? options : options.dtype(kLong);
  std::vector<int64_t> perm(n);
  for (int64_t i = 0; i < n; ++i) perm[i] = i;
  uint64_t seed = generator().seed, c = generator().reserve(n);
  for (int64_t i = n - 1; i > 0; --i)  // Fisher-Yates
    std::swap(perm[i], perm[draw(seed, c + i) % static_cast<uint64_t>(i + 1)]);
  Tensor t = empty({n}, o.requires_grad(false));
  fill_indexed(t, "randperm", [&](int64_t i) { return static_cast<double>(perm[i]); });
  return finish(t, o);
}

// ---- from_blob and tensor({...}) --------------------------------------------------------------
namespace {
Tensor make_blob(void* data, IntArrayRef sizes, IntArrayRef strides,
                 std::function<void(void*)> deleter, const TensorOptions& options) {
  check_device(options, "from_blob");
  KILN_CHECK(sizes.size() == strides.size(),
             "[from_blob] got sizes {} and strides {}, expected the same number of dims",
             shape_str(sizes), shape_str(strides));
  int64_t extent = 1;  // elements the view can reach
  for (size_t i = 0; i < sizes.size(); ++i) {
    KILN_CHECK(sizes[i] >= 0 && strides[i] >= 0,
               "[from_blob] got sizes {} and strides {}, expected non-negative values",
               shape_str(sizes), shape_str(strides));
    if (sizes[i] == 0) extent = 0;
  }
  if (extent != 0)
    for (size_t i = 0; i < sizes.size(); ++i) extent += (sizes[i] - 1) * strides[i];
  KILN_CHECK(data != nullptr || extent == 0, "[from_blob] got a null data pointer for sizes {}",
             shape_str(sizes));
  auto storage = std::make_shared<StorageImpl>(
      DataPtr{data, std::move(deleter)},
      static_cast<size_t>(extent) * element_size(options.dtype()), options.device());
  Tensor t(std::make_shared<TensorImpl>(std::move(storage), options.dtype(), sizes.vec(),
                                        strides.vec(), 0));
  return finish(t, options);
}
}  // namespace

Tensor from_blob(void* data, IntArrayRef sizes, IntArrayRef strides, const TensorOptions& options) {
  return make_blob(data, sizes, strides, [](void*) {}, options);
}

Tensor from_blob(void* data, IntArrayRef sizes, std::function<void(void*)> deleter,
                 const TensorOptions& options) {
  return make_blob(data, sizes, detail::contiguous_strides(sizes), std::move(deleter), options);
}

Tensor from_blob(void* data, IntArrayRef sizes, const TensorOptions& options) {
  return make_blob(data, sizes, detail::contiguous_strides(sizes), [](void*) {}, options);
}

TensorDataContainer::TensorDataContainer(std::initializer_list<TensorDataContainer> list)
    : children_(list) {
  sizes_ = {static_cast<int64_t>(children_.size())};
  if (children_.empty()) {
    dtype_ = get_default_dtype();
    return;
  }
  const TensorDataContainer& first = children_.front();
  for (const auto& c : children_) {
    KILN_CHECK(c.sizes_ == first.sizes_,
               "[tensor] expected all sub-lists to have sizes {}, but got a sub-list of sizes {}",
               shape_str(first.sizes_), shape_str(c.sizes_));
  }
  sizes_.insert(sizes_.end(), first.sizes_.begin(), first.sizes_.end());
  // Mixed integer/float literals promote like libtorch's wrapped numbers ({1, 2.5} is float).
  ScalarType t = first.scalar_type();
  for (const auto& c : children_) t = promote_types(t, c.scalar_type());
  dtype_ = t;
}

void TensorDataContainer::flatten_into(std::vector<Scalar>& out) const {
  if (is_scalar_) {
    out.push_back(scalar_);
    return;
  }
  for (const auto& c : children_) c.flatten_into(out);
}

Tensor tensor(const TensorDataContainer& data, const TensorOptions& options) {
  ScalarType dt = options.has_dtype() ? options.dtype()
                  : data.is_scalar_   ? data.scalar_.type()
                                      : data.dtype_;
  std::vector<Scalar> values;
  data.flatten_into(values);
  std::vector<int64_t> sizes = data.is_scalar_ ? std::vector<int64_t>{} : data.sizes_;
  Tensor t = empty(sizes, options.dtype(dt).requires_grad(false));
  fill_indexed(t, "tensor", [&](int64_t i) { return values[i].toDouble(); });
  if (dt == kLong) {
    auto* p = t.data_ptr<int64_t>();
    for (size_t i = 0; i < values.size(); ++i) p[i] = values[i].toLong();
  }
  return finish(t, options.dtype(dt));
}

}  // namespace kiln
