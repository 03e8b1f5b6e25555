// Sorting along one dim for the eager CPU core: sort (stable), argsort and topk. Each line along
// the dim is gathered into (key, position) pairs, ordered with NaN as the largest value and ties
// broken by position (which makes the order stable), and written back with int64 indices.
#include <algorithm>
#include <type_traits>
#include <vector>

#include "kiln/functions.h"
#include "tensor/internal.h"
#include "tensor/record.h"

namespace kiln {
namespace {

using detail::convert;

constexpr int64_t kGrain = 32768;

template <typename K>
struct Entry {
  K key;
  int64_t pos;
};

// Strict order of entries: ascending or descending by key, NaN above every number, equal keys
// by position.
template <bool kDescending>
struct Before {
  template <typename K>
  bool operator()(const Entry<K>& a, const Entry<K>& b) const {
    if constexpr (std::is_floating_point_v<K>) {
      const bool an = a.key != a.key, bn = b.key != b.key;
      if (an || bn) {
        if (an && bn) return a.pos < b.pos;
        return kDescending ? an : bn;
      }
    }
    if (kDescending ? a.key > b.key : a.key < b.key) return true;
    if (kDescending ? b.key > a.key : b.key < a.key) return false;
    return a.pos < b.pos;
  }
};

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

// Orders every line of x (contiguous, [A, R, B]) with cmp and writes its first k entries to
// values/indices ([A, k, B]); k < R selects only the first k (topk).
template <typename T, typename Cmp>
void order_lines(const Tensor& x, const Tensor& values, const Tensor& indices, Lines l, int64_t k,
                 const Cmp& cmp) {
  using K = opmath_t<T>;
  const T* xi = x.data_ptr<T>();
  T* vo = values.data_ptr<T>();
  int64_t* io = indices.data_ptr<int64_t>();
  const int64_t R = l.R, B = l.B;
  parallel_for(0, l.A * B, std::max<int64_t>(1, kGrain / std::max<int64_t>(R, 1)),
               [&](int64_t l0, int64_t l1) {
                 std::vector<Entry<K>> buf(static_cast<size_t>(R));
                 for (int64_t line = l0; line < l1; ++line) {
                   const int64_t a = line / B, b = line % B;
                   const T* src = xi + a * R * B + b;
                   for (int64_t r = 0; r < R; ++r) buf[r] = {convert<K>(src[r * B]), r};
                   if (k == R)
                     std::sort(buf.begin(), buf.end(), cmp);
                   else
                     std::partial_sort(buf.begin(), buf.begin() + k, buf.end(), cmp);
                   T* dv = vo + a * k * B + b;
                   int64_t* di = io + a * k * B + b;
                   for (int64_t r = 0; r < k; ++r) {
                     dv[r * B] = src[buf[r].pos * B];
                     di[r * B] = buf[r].pos;
                   }
                 }
               });
}

template <typename T>
void order_lines(const Tensor& x, const Tensor& values, const Tensor& indices, Lines l, int64_t k,
                 bool descending) {
  if (descending)
    order_lines<T>(x, values, indices, l, k, Before<true>{});
  else
    order_lines<T>(x, values, indices, l, k, Before<false>{});
}

}  // namespace

std::tuple<Tensor, Tensor> sort(const Tensor& self, int64_t dim, bool descending) {
  detail::check_cpu(self, "sort");
  const int64_t d = detail::wrap_dim(dim, self.dim(), "sort");
  if (detail::should_record(self)) [[unlikely]] {
    auto r = detail::record_functional(ops::OpKind::Sort, {self, d, descending});
    return {r[0].toTensor(), r[1].toTensor()};
  }
  Tensor values = detail::make_empty(self.sizes(), self.dtype());
  Tensor indices = detail::make_empty(self.sizes(), kLong);
  if (self.numel() == 0) return {values, indices};
  Tensor x = self.contiguous();
  const Lines l = lines_around(x, d);
  KILN_DISPATCH_ALL_TYPES(self.dtype(), "sort",
                          [&] { order_lines<scalar_t>(x, values, indices, l, l.R, descending); });
  return {values, indices};
}

Tensor argsort(const Tensor& self, int64_t dim, bool descending) {
  return std::get<1>(sort(self, dim, descending));
}

std::tuple<Tensor, Tensor> topk(const Tensor& self, int64_t k, int64_t dim, bool largest,
                                bool sorted) {
  detail::check_cpu(self, "topk");
  KILN_CHECK(self.dtype() != kBool, "[topk] got dtype bool, expected a numeric (non-bool) dtype");
  const int64_t d = detail::wrap_dim(dim, self.dim(), "topk");
  const int64_t n = self.dim() == 0 ? 1 : self.size(d);
  KILN_CHECK(k >= 0 && k <= n,
             "[topk] k out of range: got k = {}, expected 0 <= k <= {} (the size of dim {} of "
             "input {})",
             k, n, d, shape_str(self.sizes()));
  if (detail::should_record(self)) [[unlikely]] {
    auto r = detail::record_functional(ops::OpKind::Topk, {self, k, d, largest, sorted});
    return {r[0].toTensor(), r[1].toTensor()};
  }
  std::vector<int64_t> out_sizes = self.sizes().vec();
  if (self.dim() > 0) out_sizes[d] = k;
  Tensor values = detail::make_empty(out_sizes, self.dtype());
  Tensor indices = detail::make_empty(out_sizes, kLong);
  // The results are always sorted; sorted = false only permits any order, like libtorch.
  (void)sorted;
  if (values.numel() == 0) return {values, indices};
  Tensor x = self.contiguous();
  const Lines l = lines_around(x, d);
  KILN_DISPATCH_NUMERIC_TYPES(self.dtype(), "topk",
                              [&] { order_lines<scalar_t>(x, values, indices, l, k, largest); });
  return {values, indices};
}

}  // namespace kiln
