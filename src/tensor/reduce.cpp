// Reductions of the eager CPU core (sum, mean, prod, max/min, amax/amin, argmax/argmin, var/std,
// norm, logsumexp, all/any), the cumsum scan and softmax/log_softmax. Every reduction is planned
// onto a dense [A, R, B] view of its input (see Note [reduction layout]) and run by one engine.
#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <memory>
#include <type_traits>
#include <vector>

#include "kiln/functions.h"
#include "ops/simd_math.h"
#include "tensor/internal.h"
#include "tensor/record.h"

namespace kiln {
namespace {

using detail::convert;

constexpr int64_t kGrain = 32768;   // elements of work below which a task is not split further
constexpr int64_t kBlockB = 4096;   // output columns one task owns when reducing an outer dim
constexpr int64_t kChunkR = 65536;  // elements of one long reduction per task when R is split
constexpr int kLanes = 16;          // independent accumulators of the row kernel (vectorisable)

// Note [reduction layout]
// A reduction reads its input as a dense [A, R, B] array: A outer outputs, R reduced elements,
// B inner outputs, output o = a * B + b, element (a, r, b) at x[(a * R + r) * B + b]. Three
// layouts reach the engine without a copy: a contiguous input whose reduced dims are one run
// (B == 1 when the run is innermost, so rows are reduced; B > 1 when it is an outer run, so
// rows of the input are accumulated into output vectors), and any input that is dense in the
// order [kept..., reduced...] or [reduced..., kept...] (e.g. transposes). Anything else is
// permuted to [kept..., reduced...] and copied once. The output is contiguous in the kept dims'
// original order, which is exactly [A, B] in every case.
struct Plan {
  Tensor input;  // dense as [A, R, B] from data_ptr(); undefined when numel() == 0
  int64_t A = 1, R = 1, B = 1;
  std::vector<int64_t> out_sizes;
};

// True when t's elements are dense and row-major in the dim order perm (size-1 dims ignored).
bool dense_in_order(const Tensor& t, const std::vector<int64_t>& perm) {
  int64_t expected = 1;
  for (auto it = perm.rbegin(); it != perm.rend(); ++it) {
    if (t.size(*it) == 1) continue;
    if (t.stride(*it) != expected) return false;
    expected *= t.size(*it);
  }
  return true;
}

// dims: wrapped, unique dims to reduce (empty reduces nothing).
Plan plan_reduction(const Tensor& self, const std::vector<int64_t>& dims, bool keepdim) {
  const int64_t nd = self.dim();
  std::vector<bool> reduced(nd, false);
  for (int64_t d : dims) reduced[d] = true;
  Plan p;
  int64_t kept_numel = 1;
  std::vector<int64_t> kept, red;
  for (int64_t d = 0; d < nd; ++d) {
    if (reduced[d]) {
      p.R *= self.size(d);
      red.push_back(d);
      if (keepdim) p.out_sizes.push_back(1);
    } else {
      kept_numel *= self.size(d);
      kept.push_back(d);
      p.out_sizes.push_back(self.size(d));
    }
  }
  if (self.numel() == 0) {
    p.A = kept_numel;
    return p;
  }
  if (self.is_contiguous()) {
    // Among dims of size > 1, the reduced ones must be one consecutive run.
    int64_t before = 1, after = 1;
    int state = 0;  // 0: before the run, 1: inside it, 2: after it
    bool one_run = true;
    for (int64_t d = 0; d < nd; ++d) {
      if (self.size(d) == 1) continue;
      if (reduced[d]) {
        if (state == 2) one_run = false;
        state = 1;
      } else {
        if (state == 1) state = 2;
        (state == 0 ? before : after) *= self.size(d);
      }
    }
    if (one_run) {
      p.input = self;
      p.A = state == 0 ? kept_numel : before;
      p.B = state == 0 ? 1 : after;
      return p;
    }
  }
  std::vector<int64_t> kept_first = kept, red_first = red;
  kept_first.insert(kept_first.end(), red.begin(), red.end());
  red_first.insert(red_first.end(), kept.begin(), kept.end());
  if (dense_in_order(self, kept_first)) {
    p.input = self;
    p.A = kept_numel;
  } else if (dense_in_order(self, red_first)) {
    p.input = self;
    p.B = kept_numel;
  } else {
    p.input = self.permute(kept_first).contiguous();
    p.A = kept_numel;
  }
  return p;
}

struct Plus;

// Reduces x[r0, r1) of one row with kLanes interleaved accumulators, so the loop vectorises
// without reassociating a single accumulator.
template <typename In, typename Acc, typename Map, typename Comb>
inline Acc reduce_row(const In* x, int64_t r0, int64_t r1, int64_t o, Acc ident, const Map& map,
                      const Comb& comb) {
  using MapT = decltype(map(x[0], int64_t{0}, int64_t{0}));
  if (r1 - r0 < kLanes) {  // short rows: a plain fold beats setting up the lanes
    Acc acc = ident;
    for (int64_t r = r0; r < r1; ++r) acc = comb(acc, static_cast<Acc>(map(x[r], r, o)));
    return acc;
  }
  Acc lanes[kLanes];
  for (int j = 0; j < kLanes; ++j) lanes[j] = ident;
  int64_t r = r0;
  if constexpr (std::is_same_v<MapT, float> && std::is_same_v<Acc, double> &&
                std::is_same_v<Comb, Plus>) {
    // Float terms (exp) are summed in float lanes over short blocks, then in double: all 16
    // float lanes vectorise, and each float partial holds only kBlock terms.
    constexpr int64_t kBlock = 64;
    for (; r + kLanes * kBlock <= r1; r += kLanes * kBlock) {
      float part[kLanes] = {};
      for (int64_t k = 0; k < kBlock; ++k) {
        const int64_t rk = r + k * kLanes;
#pragma GCC unroll 1
        for (int j = 0; j < kLanes; ++j) part[j] += map(x[rk + j], rk + j, o);
      }
      for (int j = 0; j < kLanes; ++j) lanes[j] += part[j];
    }
  }
  for (; r + kLanes <= r1; r += kLanes) {
    // Kept as a loop so the loop vectoriser if-converts selects (max, argmax); fully unrolled,
    // only sums would vectorise.
#pragma GCC unroll 1
    for (int j = 0; j < kLanes; ++j)
      lanes[j] = comb(lanes[j], static_cast<Acc>(map(x[r + j], r + j, o)));
  }
  for (; r < r1; ++r) lanes[0] = comb(lanes[0], static_cast<Acc>(map(x[r], r, o)));
  for (int w = kLanes / 2; w > 0; w /= 2)
    for (int j = 0; j < w; ++j) lanes[j] = comb(lanes[j], lanes[j + w]);
  return lanes[0];
}

// The engine: for every output o, store(o, fold of comb over map(x, r, o) for r in [0, R)),
// starting from ident (so R == 0 stores ident). comb must be associative and commutative up to
// rounding. Tasks own whole rows (B == 1) or blocks of up to kBlockB output columns, reading
// long contiguous runs; when that leaves too few tasks for the threads, R is split into chunks
// whose partial results are combined in chunk order at the end (so float results may differ in
// the last bit between thread counts, never between runs).
template <typename In, typename Acc, typename Map, typename Comb, typename Store>
void run_reduction(const Plan& p, Acc ident, const Map& map, const Comb& comb, const Store& store) {
  const int64_t A = p.A, R = p.R, B = p.B, M = A * B;
  if (M == 0) return;
  const In* x = p.input.defined() ? static_cast<const In*>(p.input.data_ptr()) : nullptr;
  using MapT = decltype(map(In{}, int64_t{0}, int64_t{0}));
  const int64_t blen = std::min(B, kBlockB);
  const int64_t nb = (B + blen - 1) / blen;
  const int64_t outer = A * nb;
  const int64_t min_tasks = 4 * static_cast<int64_t>(get_num_threads());
  int64_t nr = 1;
  if (outer < min_tasks) {
    const int64_t max_chunks = R * blen / kChunkR;  // every chunk keeps >= kChunkR elements
    nr = std::max<int64_t>(1, std::min((min_tasks + outer - 1) / outer, max_chunks));
  }
  const int64_t rlen = nr == 1 ? R : (R + nr - 1) / nr;
  if (nr > 1) nr = (R + rlen - 1) / rlen;
  // Not std::vector: vector<bool> packs bits, and tasks write neighbouring entries concurrently.
  std::unique_ptr<Acc[]> partial(nr > 1 ? new Acc[static_cast<size_t>(M * nr)] : nullptr);
  auto emit = [&](int64_t o, int64_t rc, const Acc& acc) {
    if (nr == 1)
      store(o, acc);
    else
      partial[rc * M + o] = acc;
  };
  const int64_t work = std::max<int64_t>(std::min(R, rlen) * blen, 1);
  parallel_for(0, outer * nr, std::max<int64_t>(1, kGrain / work), [&](int64_t t0, int64_t t1) {
    std::unique_ptr<Acc[]> buf(B == 1 ? nullptr : new Acc[static_cast<size_t>(blen)]);
    std::unique_ptr<MapT[]> terms(
        B == 1 || std::is_same_v<MapT, Acc> ? nullptr : new MapT[static_cast<size_t>(blen)]);
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t rc = t % nr, ab = t / nr;
      const int64_t a = ab / nb, bb = ab % nb;
      const int64_t r0 = rc * rlen, r1 = std::min(R, r0 + rlen);
      if (B == 1) {
        emit(a, rc, reduce_row(x + a * R, r0, r1, a, ident, map, comb));
        continue;
      }
      const int64_t b0 = bb * blen, bl = std::min(blen, B - b0), o0 = a * B + b0;
      Acc* acc = buf.get();
      for (int64_t j = 0; j < bl; ++j) acc[j] = ident;
      int64_t r = r0;
      if constexpr (std::is_same_v<MapT, Acc> && std::is_same_v<Comb, Plus>) {
        // Sums take four rows per pass over the accumulators: a quarter of the load/store
        // traffic on acc. (Selects nested this way no longer vectorise, so max stays 1-row.)
        for (; r + 4 <= r1; r += 4) {
          const In* p0 = x + (a * R + r) * B + b0;
          const In *p1 = p0 + B, *p2 = p1 + B, *p3 = p2 + B;
          for (int64_t j = 0; j < bl; ++j) {
            const int64_t o = o0 + j;
            const Acc s01 = comb(map(p0[j], r, o), map(p1[j], r + 1, o));
            const Acc s23 = comb(map(p2[j], r + 2, o), map(p3[j], r + 3, o));
            acc[j] = comb(acc[j], comb(s01, s23));
          }
        }
      }
      for (; r < r1; ++r) {
        const In* row = x + (a * R + r) * B + b0;
        if constexpr (std::is_same_v<MapT, Acc>) {
          for (int64_t j = 0; j < bl; ++j) acc[j] = comb(acc[j], map(row[j], r, o0 + j));
        } else {
          // Map and combine in separate loops: each vectorises on its own element width.
          MapT* term = terms.get();
          for (int64_t j = 0; j < bl; ++j) term[j] = map(row[j], r, o0 + j);
          for (int64_t j = 0; j < bl; ++j) acc[j] = comb(acc[j], static_cast<Acc>(term[j]));
        }
      }
      for (int64_t j = 0; j < bl; ++j) emit(o0 + j, rc, acc[j]);
    }
  });
  if (nr == 1) return;
  parallel_for(0, M, std::max<int64_t>(1, kGrain / nr), [&](int64_t o0, int64_t o1) {
    for (int64_t o = o0; o < o1; ++o) {
      Acc acc = partial[o];
      for (int64_t rc = 1; rc < nr; ++rc) acc = comb(acc, partial[rc * M + o]);
      store(o, acc);
    }
  });
}

// ---- accumulators and combiners ------------------------------------------------------------

// Sums accumulate integers and bools in int64 and every floating type in double.
template <typename T>
using sum_acc_t = std::conditional_t<std::is_integral_v<T>, int64_t, double>;

template <typename T>
inline bool is_nan(T v) {
  if constexpr (std::is_floating_point_v<T>)
    return v != v;
  else
    return false;
}

// Integer sums and products wrap like two's complement instead of overflowing (UB).
struct Plus {
  template <typename T>
  T operator()(T a, T b) const {
    if constexpr (std::is_integral_v<T>)
      return static_cast<T>(static_cast<std::make_unsigned_t<T>>(a) +
                            static_cast<std::make_unsigned_t<T>>(b));
    else
      return a + b;
  }
};
struct Times {
  template <typename T>
  T operator()(T a, T b) const {
    if constexpr (std::is_integral_v<T>)
      return static_cast<T>(static_cast<std::make_unsigned_t<T>>(a) *
                            static_cast<std::make_unsigned_t<T>>(b));
    else
      return a * b;
  }
};

// exp as straight-line code the compiler vectorises (ops/simd_math.h, ~1 ulp).
template <typename M>
inline M exp_of(M x) {
  return ops::math::exp(x);
}

// The larger (kMax) or smaller of a and b; NaN wins, like torch.max.
template <bool kMax>
struct Extreme {
  template <typename V>
  V operator()(V a, V b) const {
    // Bitwise, not short-circuit, so the select vectorises.
    if constexpr (std::is_same_v<V, bool>)
      return kMax ? (a | b) : (a & b);
    else
      return ((kMax ? a > b : a < b) | is_nan(a)) ? a : b;
  }
};

// The identity of Extreme<kMax> for V.
template <bool kMax, typename V>
constexpr V extreme_identity() {
  if constexpr (std::is_same_v<V, bool>)
    return !kMax;
  else if constexpr (std::is_floating_point_v<V>)
    return kMax ? -std::numeric_limits<V>::infinity() : std::numeric_limits<V>::infinity();
  else
    return kMax ? std::numeric_limits<V>::lowest() : std::numeric_limits<V>::max();
}

// Whether v is the extreme m found by Extreme (a NaN extreme matches any NaN).
template <typename V>
inline bool matches(V v, V m) {
  if constexpr (std::is_floating_point_v<V>)
    return (v == m) | ((v != v) & (m != m));
  else
    return v == m;
}

// ---- argument handling ---------------------------------------------------------------------

std::vector<int64_t> one_dim(const Tensor& self, int64_t dim, const char* op) {
  const int64_t d = detail::wrap_dim(dim, self.dim(), op);
  if (self.dim() == 0) return {};
  return {d};
}

// Ops without an identity (max, argmax, ...) reject reducing over a zero-size dim.
void check_no_empty_reduction(const Tensor& self, const std::vector<int64_t>& dims,
                              const char* op) {
  if (self.numel() != 0) return;
  for (int64_t d : dims)
    KILN_CHECK(self.size(d) != 0,
               "[{}] cannot reduce over dim {} of size 0 because the op has no identity: got "
               "input {}, expected a non-zero size in every reduced dim",
               op, d, shape_str(self.sizes()));
}

// Whole-tensor forms (max(), argmax() without dim) of ops without an identity.
void check_nonempty(const Tensor& self, const char* op) {
  KILN_CHECK(self.numel() != 0,
             "[{}] cannot reduce an empty tensor because the op has no identity: got input {}, "
             "expected a non-empty input or a reduction dim",
             op, shape_str(self.sizes()));
}

Tensor cast_if(const Tensor& self, std::optional<ScalarType> dtype) {
  return dtype && *dtype != self.dtype() ? self.to(*dtype) : self;
}

// ---- sum / prod ----------------------------------------------------------------------------

template <typename In, typename Out>
void sum_prod_kernel(const Plan& p, const Tensor& out, bool is_prod) {
  using Acc = sum_acc_t<Out>;
  Out* o = out.data_ptr<Out>();
  auto map = [](In v, int64_t, int64_t) { return convert<Acc>(v); };
  auto store = [o](int64_t i, Acc a) { o[i] = convert<Out>(a); };
  if (is_prod)
    run_reduction<In>(p, Acc(1), map, Times{}, store);
  else
    run_reduction<In>(p, Acc(0), map, Plus{}, store);
}

// Sum-like result dtype: the dtype argument, else int64 for integral and bool inputs.
Tensor sum_prod(const Tensor& self0, const std::vector<int64_t>& dims, bool keepdim,
                std::optional<ScalarType> dtype, const char* op, bool is_prod) {
  Tensor self = cast_if(self0, dtype);
  const ScalarType in = self.dtype();
  const ScalarType out_dtype = dtype ? *dtype : (is_integral(in, true) ? kLong : in);
  Plan p = plan_reduction(self, dims, keepdim);
  Tensor out = detail::make_empty(p.out_sizes, out_dtype);
  KILN_DISPATCH_ALL_TYPES(in, op, [&] {
    if (out_dtype == in)
      sum_prod_kernel<scalar_t, scalar_t>(p, out, is_prod);
    else
      sum_prod_kernel<scalar_t, int64_t>(p, out, is_prod);
  });
  return out;
}

Tensor mean_impl(const Tensor& self, const std::vector<int64_t>& dims, bool keepdim,
                 std::optional<ScalarType> dtype) {
  const ScalarType t = dtype.value_or(self.dtype());
  KILN_CHECK(is_floating_point(t),
             "[mean] could not infer the output dtype: got {} dtype {}, expected a "
             "floating-point dtype (float16, bfloat16, float32, float64)",
             dtype ? "a dtype argument of" : "input", dtype_name(t));
  Tensor x = cast_if(self, dtype);
  Plan p = plan_reduction(x, dims, keepdim);
  Tensor out = detail::make_empty(p.out_sizes, t);
  KILN_DISPATCH_FLOATING_TYPES(t, "mean", [&] {
    scalar_t* o = out.data_ptr<scalar_t>();
    const double n = static_cast<double>(p.R);
    run_reduction<scalar_t>(
        p, 0.0, [](scalar_t v, int64_t, int64_t) { return convert<double>(v); }, Plus{},
        [o, n](int64_t i, double a) { o[i] = convert<scalar_t>(a / n); });
  });
  return out;
}

// ---- max / min -----------------------------------------------------------------------------

template <bool kMax>
Tensor extreme_values(const Tensor& self, const std::vector<int64_t>& dims, bool keepdim,
                      const char* op) {
  check_no_empty_reduction(self, dims, op);
  Plan p = plan_reduction(self, dims, keepdim);
  Tensor out = detail::make_empty(p.out_sizes, self.dtype());
  KILN_DISPATCH_ALL_TYPES(self.dtype(), op, [&] {
    using V = opmath_t<scalar_t>;
    scalar_t* o = out.data_ptr<scalar_t>();
    run_reduction<scalar_t>(
        p, extreme_identity<kMax, V>(), [](scalar_t v, int64_t, int64_t) { return convert<V>(v); },
        Extreme<kMax>{}, [o](int64_t i, V a) { o[i] = convert<scalar_t>(a); });
  });
  return out;
}

// Values and int64 positions of the first extreme along the reduced dims (row-major when
// several are reduced); values may be undefined (argmax/argmin). Two vectorised passes: the
// extreme of each output, then the lowest position holding it.
template <bool kMax, typename T>
void extreme_index_kernel(const Plan& p, const Tensor& values, const Tensor& indices) {
  using V = opmath_t<T>;
  const int64_t M = p.A * p.B, R = p.R;
  if (M == 0) return;
  std::unique_ptr<V[]> best(new V[static_cast<size_t>(M)]);
  V* m = best.get();
  run_reduction<T>(
      p, extreme_identity<kMax, V>(), [](T v, int64_t, int64_t) { return convert<V>(v); },
      Extreme<kMax>{}, [m](int64_t i, V a) { m[i] = a; });
  int64_t* io = indices.data_ptr<int64_t>();
  if (p.B == 1) {
    // Rows: scan each row up to the first match (the extreme is in the row, so one exists).
    const T* x = static_cast<const T*>(p.input.data_ptr());
    parallel_for(0, M, std::max<int64_t>(1, kGrain / R), [&](int64_t a0, int64_t a1) {
      for (int64_t a = a0; a < a1; ++a) {
        const T* row = x + a * R;
        const V mv = m[a];
        int64_t r = 0;
        for (; r + kLanes <= R; r += kLanes) {
          int32_t hit = 0;  // any match among the next kLanes elements (vectorised)
#pragma GCC unroll 1
          for (int j = 0; j < kLanes; ++j) hit |= matches(convert<V>(row[r + j]), mv) ? 1 : 0;
          if (hit) break;
        }
        while (r < R - 1 && !matches(convert<V>(row[r]), mv)) ++r;
        io[a] = r;
      }
    });
  } else if (R <= std::numeric_limits<int32_t>::max()) {
    // Columns: the lowest matching position, with int32 lanes as wide as the float compares.
    constexpr int32_t kNone = std::numeric_limits<int32_t>::max();
    run_reduction<T>(
        p, kNone,
        [m](T v, int64_t r, int64_t i) {
          return matches(convert<V>(v), m[i]) ? static_cast<int32_t>(r) : kNone;
        },
        [](int32_t a, int32_t b) { return a < b ? a : b; },
        [io](int64_t i, int32_t r) { io[i] = r; });
  } else {
    constexpr int64_t kNone = std::numeric_limits<int64_t>::max();
    run_reduction<T>(
        p, kNone,
        [m](T v, int64_t r, int64_t i) { return matches(convert<V>(v), m[i]) ? r : kNone; },
        [](int64_t a, int64_t b) { return a < b ? a : b; },
        [io](int64_t i, int64_t r) { io[i] = r; });
  }
  if (!values.defined()) return;
  T* vo = values.data_ptr<T>();
  for (int64_t i = 0; i < M; ++i) vo[i] = convert<T>(m[i]);
}

template <bool kMax>
std::tuple<Tensor, Tensor> extreme_dim(const Tensor& self, int64_t dim, bool keepdim,
                                       const char* op) {
  detail::check_cpu(self, op);
  auto dims = one_dim(self, dim, op);
  check_no_empty_reduction(self, dims, op);
  Plan p = plan_reduction(self, dims, keepdim);
  Tensor values = detail::make_empty(p.out_sizes, self.dtype());
  Tensor indices = detail::make_empty(p.out_sizes, kLong);
  KILN_DISPATCH_ALL_TYPES(self.dtype(), op,
                          [&] { extreme_index_kernel<kMax, scalar_t>(p, values, indices); });
  return {values, indices};
}

template <bool kMax>
Tensor arg_extreme(const Tensor& self, std::optional<int64_t> dim, bool keepdim, const char* op) {
  detail::check_cpu(self, op);
  std::vector<int64_t> dims;
  if (dim) {
    dims = one_dim(self, *dim, op);
    check_no_empty_reduction(self, dims, op);
  } else {
    check_nonempty(self, op);
    dims = detail::wrap_dims({}, self.dim(), op);
  }
  Plan p = plan_reduction(self, dims, keepdim);
  Tensor indices = detail::make_empty(p.out_sizes, kLong);
  KILN_DISPATCH_NUMERIC_TYPES(self.dtype(), op,
                              [&] { extreme_index_kernel<kMax, scalar_t>(p, Tensor(), indices); });
  return indices;
}

// ---- var / std -----------------------------------------------------------------------------

// Two passes in double: the mean of each output, then the sum of squared deviations from it.
Tensor var_std(const Tensor& self, const std::vector<int64_t>& dims, bool unbiased, bool keepdim,
               bool take_sqrt, const char* op) {
  detail::check_floating(self, op);
  Plan p = plan_reduction(self, dims, keepdim);
  Tensor out = detail::make_empty(p.out_sizes, self.dtype());
  KILN_DISPATCH_FLOATING_TYPES(self.dtype(), op, [&] {
    using T = scalar_t;
    std::vector<double> mean(static_cast<size_t>(p.A * p.B));
    double* mu = mean.data();
    const double n = static_cast<double>(p.R);
    auto to_double = [](T v, int64_t, int64_t) { return convert<double>(v); };
    run_reduction<T>(p, 0.0, to_double, Plus{}, [mu, n](int64_t i, double a) { mu[i] = a / n; });
    const double divisor = std::max<double>(0.0, n - (unbiased ? 1.0 : 0.0));
    T* o = out.data_ptr<T>();
    run_reduction<T>(
        p, 0.0,
        [mu](T v, int64_t, int64_t i) {
          const double d = convert<double>(v) - mu[i];
          return d * d;
        },
        Plus{},
        [o, divisor, take_sqrt](int64_t i, double a) {
          const double v = a / divisor;
          o[i] = convert<T>(take_sqrt ? std::sqrt(v) : v);
        });
  });
  return out;
}

// ---- norm ----------------------------------------------------------------------------------

Tensor norm_impl(const Tensor& self, const Scalar& p_scalar, const std::vector<int64_t>& dims,
                 bool keepdim) {
  detail::check_cpu(self, "norm");
  KILN_CHECK(is_floating_point(self.dtype()),
             "[norm] got input dtype {}, expected a floating-point dtype (float16, bfloat16, "
             "float32, float64)",
             dtype_name(self.dtype()));
  const double pv = p_scalar.toDouble();
  if (pv < 0 || std::isinf(pv)) check_no_empty_reduction(self, dims, "norm");
  Plan p = plan_reduction(self, dims, keepdim);
  Tensor out = detail::make_empty(p.out_sizes, self.dtype());
  KILN_DISPATCH_FLOATING_TYPES(self.dtype(), "norm", [&] {
    using T = scalar_t;
    T* o = out.data_ptr<T>();
    auto abs_of = [](T v, int64_t, int64_t) { return std::abs(convert<double>(v)); };
    auto store = [o](int64_t i, double a) { o[i] = convert<T>(a); };
    if (pv == 2.0) {
      run_reduction<T>(
          p, 0.0,
          [](T v, int64_t, int64_t) {
            const double d = convert<double>(v);
            return d * d;
          },
          Plus{}, [o](int64_t i, double a) { o[i] = convert<T>(std::sqrt(a)); });
    } else if (pv == 1.0) {
      run_reduction<T>(p, 0.0, abs_of, Plus{}, store);
    } else if (std::isinf(pv) && pv > 0) {
      run_reduction<T>(p, 0.0, abs_of, Extreme<true>{}, store);
    } else if (std::isinf(pv)) {
      run_reduction<T>(p, std::numeric_limits<double>::infinity(), abs_of, Extreme<false>{}, store);
    } else if (pv == 0.0) {
      run_reduction<T>(
          p, 0.0, [](T v, int64_t, int64_t) { return convert<double>(v) != 0.0 ? 1.0 : 0.0; },
          Plus{}, store);
    } else {
      run_reduction<T>(
          p, 0.0,
          [pv](T v, int64_t, int64_t) { return std::pow(std::abs(convert<double>(v)), pv); },
          Plus{}, [o, pv](int64_t i, double a) { o[i] = convert<T>(std::pow(a, 1.0 / pv)); });
    }
  });
  return out;
}

// ---- all / any -----------------------------------------------------------------------------

Tensor all_any(const Tensor& self, const std::vector<int64_t>& dims, bool keepdim, bool is_all,
               const char* op) {
  Plan p = plan_reduction(self, dims, keepdim);
  Tensor out = detail::make_empty(p.out_sizes, kBool);
  bool* o = out.data_ptr<bool>();
  KILN_DISPATCH_ALL_TYPES(self.dtype(), op, [&] {
    // Flags as unsigned integers as wide as the compared values, so compares and ands share one
    // vector width.
    using V = opmath_t<scalar_t>;
    using Flag = std::conditional_t<sizeof(V) == 8, uint64_t,
                                    std::conditional_t<sizeof(V) == 4, uint32_t, uint8_t>>;
    auto map = [](scalar_t v, int64_t, int64_t) {
      return convert<V>(v) != V(0) ? Flag(1) : Flag(0);
    };
    auto store = [o](int64_t i, Flag a) { o[i] = a != 0; };
    if (is_all)
      run_reduction<scalar_t>(
          p, Flag(1), map, [](Flag a, Flag b) -> Flag { return a & b; }, store);
    else
      run_reduction<scalar_t>(
          p, Flag(0), map, [](Flag a, Flag b) -> Flag { return a | b; }, store);
  });
  return out;
}

// ---- scans and softmax (output shaped like the input) --------------------------------------

// [A, R, B] sizes of a contiguous tensor around dim d.
struct Lines {
  int64_t A = 1, R = 1, B = 1;
};
Lines lines_around(const Tensor& t, int64_t d) {
  Lines l;
  for (int64_t i = 0; i < t.dim(); ++i) {
    if (i < d)
      l.A *= t.size(i);
    else if (i == d)
      l.R = t.size(i);
    else
      l.B *= t.size(i);
  }
  return l;
}

template <typename In, typename Out>
void cumsum_kernel(const Tensor& x, const Tensor& out, Lines l) {
  using Acc = sum_acc_t<Out>;
  const In* xi = x.data_ptr<In>();
  Out* o = out.data_ptr<Out>();
  const int64_t R = l.R, B = l.B;
  if (B == 1) {
    parallel_for(0, l.A, std::max<int64_t>(1, kGrain / R), [&](int64_t a0, int64_t a1) {
      for (int64_t a = a0; a < a1; ++a) {
        const In* row = xi + a * R;
        Out* orow = o + a * R;
        Acc acc = 0;
        for (int64_t r = 0; r < R; ++r) {
          acc = Plus{}(acc, convert<Acc>(row[r]));
          orow[r] = convert<Out>(acc);
        }
      }
    });
    return;
  }
  // Scan along an outer dim: running sums of whole rows, vectorised across the columns.
  const int64_t blen = std::min(B, kBlockB);
  const int64_t nb = (B + blen - 1) / blen;
  parallel_for(0, l.A * nb, std::max<int64_t>(1, kGrain / (R * blen)), [&](int64_t t0, int64_t t1) {
    std::unique_ptr<Acc[]> buf(new Acc[static_cast<size_t>(blen)]);
    Acc* acc = buf.get();
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t a = t / nb, b0 = (t % nb) * blen, bl = std::min(blen, B - b0);
      for (int64_t j = 0; j < bl; ++j) acc[j] = Acc(0);
      for (int64_t r = 0; r < R; ++r) {
        const In* row = xi + (a * R + r) * B + b0;
        Out* orow = o + (a * R + r) * B + b0;
        for (int64_t j = 0; j < bl; ++j) {
          acc[j] = Plus{}(acc[j], convert<Acc>(row[j]));
          orow[j] = convert<Out>(acc[j]);
        }
      }
    }
  });
}

// Softmax subtracts the max of each line before exponentiating, so large logits do not
// overflow; the sum of exponentials accumulates in double.
template <typename T>
void softmax_kernel(const Tensor& x, const Tensor& out, Lines l, bool log) {
  using M = opmath_t<T>;
  const T* xi = x.data_ptr<T>();
  T* o = out.data_ptr<T>();
  const int64_t R = l.R, B = l.B;
  if (B == 1) {
    parallel_for(0, l.A, std::max<int64_t>(1, kGrain / R), [&](int64_t a0, int64_t a1) {
      std::unique_ptr<M[]> tmp(new M[static_cast<size_t>(R)]);
      M* e = tmp.get();
      for (int64_t a = a0; a < a1; ++a) {
        const T* row = xi + a * R;
        T* orow = o + a * R;
        const M mx = reduce_row(
            row, 0, R, a, extreme_identity<true, M>(),
            [](T v, int64_t, int64_t) { return convert<M>(v); }, Extreme<true>{});
        for (int64_t r = 0; r < R; ++r) e[r] = exp_of(convert<M>(row[r]) - mx);
        const double sum = reduce_row(
            e, 0, R, a, 0.0, [](M v, int64_t, int64_t) { return static_cast<double>(v); }, Plus{});
        if (log) {
          const M lse = static_cast<M>(std::log(sum));
          for (int64_t r = 0; r < R; ++r) orow[r] = convert<T>((convert<M>(row[r]) - mx) - lse);
        } else {
          const M inv = static_cast<M>(1.0 / sum);
          for (int64_t r = 0; r < R; ++r) orow[r] = convert<T>(e[r] * inv);
        }
      }
    });
    return;
  }
  // Softmax along an outer dim: three passes over whole rows, vectorised across the columns.
  const int64_t blen = std::min(B, kBlockB);
  const int64_t nb = (B + blen - 1) / blen;
  parallel_for(0, l.A * nb, std::max<int64_t>(1, kGrain / (R * blen)), [&](int64_t t0, int64_t t1) {
    std::unique_ptr<M[]> mx_buf(new M[static_cast<size_t>(blen)]);
    std::unique_ptr<M[]> scale_buf(new M[static_cast<size_t>(blen)]);
    std::unique_ptr<double[]> sum_buf(new double[static_cast<size_t>(blen)]);
    std::unique_ptr<M[]> e_buf(new M[static_cast<size_t>(blen)]);
    M* e = e_buf.get();
    M* mx = mx_buf.get();
    M* scale = scale_buf.get();  // log(sum) for log_softmax, 1 / sum for softmax
    double* sum = sum_buf.get();
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t a = t / nb, b0 = (t % nb) * blen, bl = std::min(blen, B - b0);
      const T* base = xi + a * R * B + b0;
      T* obase = o + a * R * B + b0;
      for (int64_t j = 0; j < bl; ++j) {
        mx[j] = extreme_identity<true, M>();
        sum[j] = 0;
      }
      for (int64_t r = 0; r < R; ++r)
        for (int64_t j = 0; j < bl; ++j)
          mx[j] = Extreme<true>{}(mx[j], convert<M>(base[r * B + j]));
      for (int64_t r = 0; r < R; ++r) {
        for (int64_t j = 0; j < bl; ++j) e[j] = exp_of(convert<M>(base[r * B + j]) - mx[j]);
        for (int64_t j = 0; j < bl; ++j) sum[j] += e[j];
      }
      for (int64_t j = 0; j < bl; ++j)
        scale[j] = static_cast<M>(log ? std::log(sum[j]) : 1.0 / sum[j]);
      for (int64_t r = 0; r < R; ++r) {
        const T* row = base + r * B;
        T* orow = obase + r * B;
        if (log) {
          for (int64_t j = 0; j < bl; ++j)
            orow[j] = convert<T>((convert<M>(row[j]) - mx[j]) - scale[j]);
        } else {
          for (int64_t j = 0; j < bl; ++j)
            orow[j] = convert<T>(exp_of(convert<M>(row[j]) - mx[j]) * scale[j]);
        }
      }
    }
  });
}

Tensor softmax_impl(const Tensor& self, int64_t dim, std::optional<ScalarType> dtype, bool log,
                    const char* op) {
  detail::check_cpu(self, op);
  const int64_t d = detail::wrap_dim(dim, self.dim(), op);
  Tensor x = cast_if(self, dtype);
  KILN_CHECK(is_floating_point(x.dtype()),
             "[{}] got {} dtype {}, expected a floating-point dtype (pass dtype= to convert "
             "integer inputs)",
             op, dtype ? "a dtype argument of" : "input", dtype_name(x.dtype()));
  if (detail::should_record(x))
    return detail::record1(log ? ops::OpKind::LogSoftmax : ops::OpKind::Softmax, {x, d});
  Tensor out = detail::make_empty(x.sizes(), x.dtype());
  if (x.numel() == 0) return out;
  x = x.contiguous();
  const Lines l = lines_around(x, d);
  KILN_DISPATCH_FLOATING_TYPES(x.dtype(), op, [&] { softmax_kernel<scalar_t>(x, out, l, log); });
  return out;
}

// ---- recording ------------------------------------------------------------------------------
// When autograd or the tracer watches (record.h), reductions are recorded as their primitive;
// composites with fused kernels here (mean, var, std, norm, logsumexp, max/min with a dim) take
// their primitive spelling instead.

// Product of the sizes of the reduced dims (all dims when dims is empty).
int64_t reduced_count(const Tensor& self, const std::vector<int64_t>& dims) {
  int64_t n = 1;
  if (dims.empty()) return self.numel();
  for (int64_t d : dims) n *= self.size(d);
  return n;
}

Tensor record_reduce(ops::OpKind kind, const Tensor& self, const std::vector<int64_t>& dims,
                     bool keepdim) {
  return detail::record1(kind, {self, dims, keepdim});
}

// Sum-like ops with an explicit integral dtype: the primitive sums in int64, then narrows.
Tensor narrow_to(Tensor r, std::optional<ScalarType> dtype) {
  return dtype && r.dtype() != *dtype ? r.to(*dtype) : r;
}

Tensor sum_entry(const Tensor& self, const std::vector<int64_t>& dims, bool keepdim,
                 std::optional<ScalarType> dtype, bool is_prod) {
  const char* op = is_prod ? "prod" : "sum";
  if (detail::should_record(self)) {
    const auto kind = is_prod ? ops::OpKind::Prod : ops::OpKind::Sum;
    return narrow_to(record_reduce(kind, cast_if(self, dtype), dims, keepdim), dtype);
  }
  return sum_prod(self, dims, keepdim, dtype, op, is_prod);
}

Tensor mean_entry(const Tensor& self, const std::vector<int64_t>& dims, bool keepdim,
                  std::optional<ScalarType> dtype) {
  if (detail::should_record(self)) {
    const ScalarType t = dtype.value_or(self.dtype());
    KILN_CHECK(is_floating_point(t),
               "[mean] could not infer the output dtype: got {} dtype {}, expected a "
               "floating-point dtype (float16, bfloat16, float32, float64)",
               dtype ? "a dtype argument of" : "input", dtype_name(t));
    Tensor x = cast_if(self, dtype);
    return div(record_reduce(ops::OpKind::Sum, x, dims, keepdim), reduced_count(x, dims));
  }
  return mean_impl(self, dims, keepdim, dtype);
}

template <bool kMax>
Tensor extreme_entry(const Tensor& self, const std::vector<int64_t>& dims, bool keepdim,
                     const char* op) {
  if (detail::should_record(self)) {
    check_no_empty_reduction(self, dims, op);
    return record_reduce(kMax ? ops::OpKind::Amax : ops::OpKind::Amin, self, dims, keepdim);
  }
  return extreme_values<kMax>(self, dims, keepdim, op);
}

template <bool kMax>
std::tuple<Tensor, Tensor> extreme_dim_entry(const Tensor& self, int64_t dim, bool keepdim,
                                             const char* op) {
  if (detail::should_record(self)) {
    detail::check_cpu(self, op);
    auto dims = one_dim(self, dim, op);
    check_no_empty_reduction(self, dims, op);
    Tensor values = record_reduce(kMax ? ops::OpKind::Amax : ops::OpKind::Amin, self, dims, keepdim);
    Tensor indices = detail::record1(kMax ? ops::OpKind::Argmax : ops::OpKind::Argmin,
                                     {self, dims.empty() ? IValue() : IValue(dims[0]), keepdim});
    return {values, indices};
  }
  return extreme_dim<kMax>(self, dim, keepdim, op);
}

template <bool kMax>
Tensor arg_entry(const Tensor& self, std::optional<int64_t> dim, bool keepdim, const char* op) {
  if (detail::should_record(self)) {
    detail::check_cpu(self, op);
    IValue d;
    if (dim) {
      auto dims = one_dim(self, *dim, op);
      check_no_empty_reduction(self, dims, op);
      if (!dims.empty()) d = IValue(dims[0]);
    } else {
      check_nonempty(self, op);
    }
    return detail::record1(kMax ? ops::OpKind::Argmax : ops::OpKind::Argmin, {self, d, keepdim});
  }
  return arg_extreme<kMax>(self, dim, keepdim, op);
}

// var/std as primitives: the mean of squared deviations, with Bessel's correction.
Tensor var_std_entry(const Tensor& self, const std::vector<int64_t>& dims, bool unbiased,
                     bool keepdim, bool take_sqrt, const char* op) {
  if (detail::should_record(self)) {
    detail::check_floating(self, op);
    const int64_t n = reduced_count(self, dims);
    Tensor mu = div(record_reduce(ops::OpKind::Sum, self, dims, true), n);
    Tensor d = sub(self, mu);
    Tensor ss = record_reduce(ops::OpKind::Sum, mul(d, d), dims, keepdim);
    Tensor v = div(ss, static_cast<double>(std::max<int64_t>(0, n - (unbiased ? 1 : 0))));
    return take_sqrt ? sqrt(v) : v;
  }
  return var_std(self, dims, unbiased, keepdim, take_sqrt, op);
}

Tensor norm_entry(const Tensor& self, const Scalar& p, const std::vector<int64_t>& dims,
                  bool keepdim) {
  if (detail::should_record(self)) {
    detail::check_floating(self, "norm");
    const double pv = p.toDouble();
    auto sum_of = [&](const Tensor& t) { return record_reduce(ops::OpKind::Sum, t, dims, keepdim); };
    if (pv == 2.0) return sqrt(sum_of(mul(self, self)));
    if (pv == 1.0) return sum_of(abs(self));
    if (std::isinf(pv))
      return record_reduce(pv > 0 ? ops::OpKind::Amax : ops::OpKind::Amin, abs(self), dims,
                           keepdim);
    if (pv == 0.0) return sum_of(ne(self, 0).to(self.dtype()));
    return pow(sum_of(pow(abs(self), pv)), 1.0 / pv);
  }
  return norm_impl(self, p, dims, keepdim);
}

Tensor all_any_entry(const Tensor& self, const std::vector<int64_t>& dims, bool keepdim,
                     bool is_all, const char* op) {
  if (detail::should_record(self))
    return record_reduce(is_all ? ops::OpKind::All : ops::OpKind::Any, self, dims, keepdim);
  return all_any(self, dims, keepdim, is_all, op);
}

}  // namespace

namespace detail {
Tensor reduce(ops::OpKind kind, const Tensor& self, IntArrayRef dims, bool keepdim) {
  const char* op = ops::op_info(kind).name.data();
  detail::check_cpu(self, op);
  const std::vector<int64_t> d = detail::wrap_dims(dims, self.dim(), op);
  switch (kind) {
    case ops::OpKind::Sum: return sum_prod(self, d, keepdim, std::nullopt, op, false);
    case ops::OpKind::Prod: return sum_prod(self, d, keepdim, std::nullopt, op, true);
    case ops::OpKind::Amax: return extreme_values<true>(self, d, keepdim, op);
    case ops::OpKind::Amin: return extreme_values<false>(self, d, keepdim, op);
    case ops::OpKind::All: return all_any(self, d, keepdim, true, op);
    case ops::OpKind::Any: return all_any(self, d, keepdim, false, op);
    default: KILN_ASSERT(false, "{} is not a reduction", op);
  }
}
}  // namespace detail

// ---- public API ----------------------------------------------------------------------------

Tensor sum(const Tensor& self, std::optional<ScalarType> dtype) {
  detail::check_cpu(self, "sum");
  return sum_entry(self, detail::wrap_dims({}, self.dim(), "sum"), false, dtype, false);
}

Tensor sum(const Tensor& self, IntArrayRef dim, bool keepdim, std::optional<ScalarType> dtype) {
  detail::check_cpu(self, "sum");
  return sum_entry(self, detail::wrap_dims(dim, self.dim(), "sum"), keepdim, dtype, false);
}

Tensor mean(const Tensor& self, std::optional<ScalarType> dtype) {
  detail::check_cpu(self, "mean");
  return mean_entry(self, detail::wrap_dims({}, self.dim(), "mean"), false, dtype);
}

Tensor mean(const Tensor& self, IntArrayRef dim, bool keepdim, std::optional<ScalarType> dtype) {
  detail::check_cpu(self, "mean");
  return mean_entry(self, detail::wrap_dims(dim, self.dim(), "mean"), keepdim, dtype);
}

Tensor prod(const Tensor& self, std::optional<ScalarType> dtype) {
  detail::check_cpu(self, "prod");
  return sum_entry(self, detail::wrap_dims({}, self.dim(), "prod"), false, dtype, true);
}

Tensor prod(const Tensor& self, int64_t dim, bool keepdim, std::optional<ScalarType> dtype) {
  detail::check_cpu(self, "prod");
  return sum_entry(self, one_dim(self, dim, "prod"), keepdim, dtype, true);
}

Tensor max(const Tensor& self) {
  detail::check_cpu(self, "max");
  check_nonempty(self, "max");
  return extreme_entry<true>(self, detail::wrap_dims({}, self.dim(), "max"), false, "max");
}

Tensor min(const Tensor& self) {
  detail::check_cpu(self, "min");
  check_nonempty(self, "min");
  return extreme_entry<false>(self, detail::wrap_dims({}, self.dim(), "min"), false, "min");
}

std::tuple<Tensor, Tensor> max(const Tensor& self, int64_t dim, bool keepdim) {
  return extreme_dim_entry<true>(self, dim, keepdim, "max");
}

std::tuple<Tensor, Tensor> min(const Tensor& self, int64_t dim, bool keepdim) {
  return extreme_dim_entry<false>(self, dim, keepdim, "min");
}

Tensor amax(const Tensor& self, IntArrayRef dim, bool keepdim) {
  detail::check_cpu(self, "amax");
  return extreme_entry<true>(self, detail::wrap_dims(dim, self.dim(), "amax"), keepdim, "amax");
}

Tensor amin(const Tensor& self, IntArrayRef dim, bool keepdim) {
  detail::check_cpu(self, "amin");
  return extreme_entry<false>(self, detail::wrap_dims(dim, self.dim(), "amin"), keepdim, "amin");
}

Tensor argmax(const Tensor& self, std::optional<int64_t> dim, bool keepdim) {
  return arg_entry<true>(self, dim, keepdim, "argmax");
}

Tensor argmin(const Tensor& self, std::optional<int64_t> dim, bool keepdim) {
  return arg_entry<false>(self, dim, keepdim, "argmin");
}

Tensor var(const Tensor& self, IntArrayRef dim, bool unbiased, bool keepdim) {
  detail::check_cpu(self, "var");
  return var_std_entry(self, detail::wrap_dims(dim, self.dim(), "var"), unbiased, keepdim, false,
                       "var");
}

Tensor std(const Tensor& self, IntArrayRef dim, bool unbiased, bool keepdim) {
  detail::check_cpu(self, "std");
  return var_std_entry(self, detail::wrap_dims(dim, self.dim(), "std"), unbiased, keepdim, true,
                       "std");
}

Tensor norm(const Tensor& self, const Scalar& p) {
  detail::check_cpu(self, "norm");
  return norm_entry(self, p, detail::wrap_dims({}, self.dim(), "norm"), false);
}

Tensor norm(const Tensor& self, const Scalar& p, IntArrayRef dim, bool keepdim) {
  detail::check_cpu(self, "norm");
  return norm_entry(self, p, detail::wrap_dims(dim, self.dim(), "norm"), keepdim);
}

Tensor logsumexp(const Tensor& self, IntArrayRef dim, bool keepdim) {
  detail::check_cpu(self, "logsumexp");
  // Integral and bool inputs compute in the default float dtype, like libtorch.
  Tensor x = is_integral(self.dtype(), true) ? self.to(get_default_dtype()) : self;
  if (detail::should_record(x)) {
    // max-shifted, with the shift 0 where the max is infinite (as the kernel below)
    const std::vector<int64_t> dims = detail::wrap_dims(dim, x.dim(), "logsumexp");
    Tensor m = amax(x, dims, true);
    Tensor shift = where(eq(abs(m), std::numeric_limits<double>::infinity()), 0.0, m);
    Tensor r = log(sum(exp(sub(x, shift)), dims, keepdim));
    return add(r, keepdim ? shift : shift.view(r.sizes()));
  }
  Plan p = plan_reduction(x, detail::wrap_dims(dim, x.dim(), "logsumexp"), keepdim);
  Tensor out = detail::make_empty(p.out_sizes, x.dtype());
  KILN_DISPATCH_FLOATING_TYPES(x.dtype(), "logsumexp", [&] {
    using T = scalar_t;
    using M = opmath_t<T>;
    // Shift by the max, but by 0 where the max is infinite, so an all -inf slice gives -inf and
    // a +inf element gives +inf instead of NaN.
    std::vector<M> shift(static_cast<size_t>(p.A * p.B));
    M* sh = shift.data();
    run_reduction<T>(
        p, extreme_identity<true, M>(), [](T v, int64_t, int64_t) { return convert<M>(v); },
        Extreme<true>{}, [sh](int64_t i, M a) { sh[i] = std::isinf(a) ? M(0) : a; });
    T* o = out.data_ptr<T>();
    run_reduction<T>(
        p, 0.0, [sh](T v, int64_t, int64_t i) { return exp_of(convert<M>(v) - sh[i]); }, Plus{},
        [o, sh](int64_t i, double a) { o[i] = convert<T>(std::log(a) + sh[i]); });
  });
  return out;
}

Tensor all(const Tensor& self) {
  detail::check_cpu(self, "all");
  return all_any_entry(self, detail::wrap_dims({}, self.dim(), "all"), false, true, "all");
}

Tensor all(const Tensor& self, int64_t dim, bool keepdim) {
  detail::check_cpu(self, "all");
  return all_any_entry(self, one_dim(self, dim, "all"), keepdim, true, "all");
}

Tensor any(const Tensor& self) {
  detail::check_cpu(self, "any");
  return all_any_entry(self, detail::wrap_dims({}, self.dim(), "any"), false, false, "any");
}

Tensor any(const Tensor& self, int64_t dim, bool keepdim) {
  detail::check_cpu(self, "any");
  return all_any_entry(self, one_dim(self, dim, "any"), keepdim, false, "any");
}

Tensor cumsum(const Tensor& self, int64_t dim, std::optional<ScalarType> dtype) {
  detail::check_cpu(self, "cumsum");
  const int64_t d = detail::wrap_dim(dim, self.dim(), "cumsum");
  Tensor x = cast_if(self, dtype);
  if (detail::should_record(x))
    return narrow_to(detail::record1(ops::OpKind::Cumsum, {x, d}), dtype);
  const ScalarType in = x.dtype();
  const ScalarType out_dtype = dtype ? *dtype : (is_integral(in, true) ? kLong : in);
  Tensor out = detail::make_empty(self.sizes(), out_dtype);
  if (x.numel() == 0) return out;
  x = x.contiguous();
  const Lines l = lines_around(x, d);
  KILN_DISPATCH_ALL_TYPES(in, "cumsum", [&] {
    if (out_dtype == in)
      cumsum_kernel<scalar_t, scalar_t>(x, out, l);
    else
      cumsum_kernel<scalar_t, int64_t>(x, out, l);
  });
  return out;
}

Tensor softmax(const Tensor& self, int64_t dim, std::optional<ScalarType> dtype) {
  return softmax_impl(self, dim, dtype, false, "softmax");
}

Tensor log_softmax(const Tensor& self, int64_t dim, std::optional<ScalarType> dtype) {
  return softmax_impl(self, dim, dtype, true, "log_softmax");
}

}  // namespace kiln
