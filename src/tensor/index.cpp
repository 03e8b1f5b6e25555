// Joining, splitting and per-dim index ops of the eager CPU core: cat, stack, split, chunk,
// gather, scatter / scatter_add (out-of-place and the in-place Tensor members), masked_fill and
// one_hot. split/chunk return views; every index is validated before the first element is written.
#include <algorithm>
#include <atomic>
#include <cstring>
#include <numeric>

#include "kiln/functions.h"
#include "tensor/internal.h"
#include "tensor/loops.h"
#include "tensor/record.h"

namespace kiln {
namespace {

using detail::check_cpu;
using detail::wrap_dim;

constexpr int64_t kGrain = 32768;

// Calls f(tag) with tag an unsigned integer type of esize bytes: copies move elements as bits.
template <typename F>
void dispatch_bits(int64_t esize, const F& f) {
  switch (esize) {
    case 1:
      return f(uint8_t{});
    case 2:
      return f(uint16_t{});
    case 4:
      return f(uint32_t{});
    case 8:
      return f(uint64_t{});
    default:
      KILN_ASSERT(false, "unexpected element size {}", esize);
  }
}

// Position of the first i in [0, n) with bad(i), or -1; scanned in parallel but deterministic.
template <typename Pred>
int64_t find_first(int64_t n, const Pred& bad) {
  std::atomic<int64_t> first{n};
  parallel_for(0, n, kGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi && i < first.load(std::memory_order_relaxed); ++i) {
      if (!bad(i)) continue;
      int64_t cur = first.load();
      while (i < cur && !first.compare_exchange_weak(cur, i)) {
      }
      break;
    }
  });
  int64_t f = first.load();
  return f == n ? -1 : f;
}

bool same_storage(const Tensor& a, const Tensor& b) {
  return a.impl()->storage() == b.impl()->storage();
}

// Sizes and strides with a 0-dim tensor seen as 1-D of size 1 (libtorch's ensure_nonempty_*).
std::vector<int64_t> nonempty_sizes(const Tensor& t) {
  return t.dim() == 0 ? std::vector<int64_t>{1} : t.sizes().vec();
}
std::vector<int64_t> nonempty_strides(const Tensor& t) {
  return t.dim() == 0 ? std::vector<int64_t>{1} : t.strides().vec();
}

// For every position of `sizes` with dim `line_dim` left out, calls fn(off) where off[k] is
// operand k's element offset there (strides[k] per dim); fn then walks the line along line_dim.
// Lines go to threads whole, so writes that stay within a line never race.
template <size_t K, typename F>
void for_each_line(const std::vector<int64_t>& sizes, int64_t line_dim,
                   const std::array<std::vector<int64_t>, K>& strides, const F& fn) {
  std::vector<int64_t> osz;
  std::array<std::vector<int64_t>, K> ost;
  for (size_t d = 0; d < sizes.size(); ++d) {
    if (static_cast<int64_t>(d) == line_dim) continue;
    osz.push_back(sizes[d]);
    for (size_t k = 0; k < K; ++k) ost[k].push_back(strides[k][d]);
  }
  const int64_t outer = detail::prod_sizes(osz);
  const int64_t line = std::max<int64_t>(1, sizes[line_dim]);
  const int64_t nd = static_cast<int64_t>(osz.size());
  parallel_for(0, outer, std::max<int64_t>(1, kGrain / line), [&](int64_t lo, int64_t hi) {
    std::vector<int64_t> c(nd);
    std::array<int64_t, K> off{};
    int64_t rem = lo;
    for (int64_t d = nd - 1; d >= 0; --d) {
      c[d] = rem % osz[d];
      rem /= osz[d];
      for (size_t k = 0; k < K; ++k) off[k] += c[d] * ost[k][d];
    }
    for (int64_t o = lo; o < hi; ++o) {
      fn(off.data());
      for (int64_t d = nd - 1; d >= 0; --d) {
        for (size_t k = 0; k < K; ++k) off[k] += ost[k][d];
        if (++c[d] < osz[d]) break;
        for (size_t k = 0; k < K; ++k) off[k] -= ost[k][d] * osz[d];
        c[d] = 0;
      }
    }
  });
}

// Throws naming the first index outside [0, size) (gather/scatter take no negative indices).
void check_index_range(const int64_t* idx, int64_t n, int64_t size, int64_t dim, const char* op) {
  int64_t bad = find_first(n, [&](int64_t i) { return idx[i] < 0 || idx[i] >= size; });
  KILN_CHECK(bad < 0, "[{}] index {} is out of bounds for dimension {} with size {}", op,
             bad < 0 ? 0 : idx[bad], dim, size);
}

// libtorch's gather/scatter dtype rule: a non-empty index must be int64.
void check_long_index(const Tensor& index, const char* op) {
  KILN_CHECK(index.numel() == 0 || index.dtype() == kLong,
             "[{}] got index of dtype {}, expected dtype int64 for index", op,
             dtype_name(index.dtype()));
}

// Equal dim counts, index.size(d) <= self.size(d) for d != dim and <= src.size(d) for every d.
void check_index_shape(const Tensor& self, const Tensor& index, int64_t dim, const Tensor* src,
                       const char* op) {
  const int64_t nd = std::max<int64_t>(self.dim(), 1);
  KILN_CHECK(std::max<int64_t>(index.dim(), 1) == nd,
             "[{}] index tensor must have the same number of dimensions as self: got index of "
             "sizes {} and self of sizes {}",
             op, shape_str(index.sizes()), shape_str(self.sizes()));
  auto isz = nonempty_sizes(index), ssz = nonempty_sizes(self);
  for (int64_t d = 0; d < nd; ++d) {
    KILN_CHECK(d == dim || isz[d] <= ssz[d],
               "[{}] size does not match at dimension {}: expected index {} to be smaller than "
               "self {} apart from dimension {}",
               op, d, shape_str(index.sizes()), shape_str(self.sizes()), dim);
  }
  if (src == nullptr) return;
  KILN_CHECK(std::max<int64_t>(src->dim(), 1) == nd,
             "[{}] index tensor must have the same number of dimensions as src: got index of "
             "sizes {} and src of sizes {}",
             op, shape_str(index.sizes()), shape_str(src->sizes()));
  auto rsz = nonempty_sizes(*src);
  for (int64_t d = 0; d < nd; ++d) {
    KILN_CHECK(isz[d] <= rsz[d],
               "[{}] size does not match at dimension {}: expected index {} to be smaller than "
               "src {}",
               op, d, shape_str(index.sizes()), shape_str(src->sizes()));
  }
}

enum class ScatterMode { Copy, Value, Add };

// The in-place scatter family. Checks shapes, dtypes and every index before writing anything.
Tensor& scatter_impl(Tensor& self, int64_t dim, const Tensor& index, const Tensor* src,
                     const Scalar& value, ScatterMode mode, const char* op) {
  check_cpu(self, op, "self");
  check_cpu(index, op, "index");
  if (src != nullptr) check_cpu(*src, op, "src");
  const int64_t d = wrap_dim(dim, self.dim(), op);
  check_long_index(index, op);
  if (src != nullptr)
    KILN_CHECK(src->dtype() == self.dtype(),
               "[{}] expected self.dtype to be equal to src.dtype: got self of dtype {} and src "
               "of dtype {}",
               op, dtype_name(self.dtype()), dtype_name(src->dtype()));
  if (index.numel() == 0) return self;
  check_index_shape(self, index, d, src, op);

  const int64_t dim_size = nonempty_sizes(self)[d];
  Tensor idx = index.contiguous();
  if (same_storage(idx, self)) idx = idx.clone();
  const int64_t* ip = static_cast<const int64_t*>(idx.data_ptr());
  check_index_range(ip, idx.numel(), dim_size, d, op);
  Tensor s = src != nullptr ? *src : Tensor();
  if (s.defined() && same_storage(s, self)) s = s.clone();

  auto isz = nonempty_sizes(idx);
  auto self_st = nonempty_strides(self);
  auto idx_st = detail::contiguous_strides(isz);
  auto src_st = s.defined() ? nonempty_strides(s) : self_st;
  const int64_t line = isz[d], ss = self_st[d], is = idx_st[d], rs = src_st[d];
  char* base = static_cast<char*>(self.data_ptr());
  const char* sbase = s.defined() ? static_cast<const char*>(s.data_ptr()) : nullptr;

  if (mode == ScatterMode::Add) {
    KILN_DISPATCH_ALL_TYPES(self.dtype(), op, [&] {
      using acc_t = opmath_t<scalar_t>;
      auto* sp = reinterpret_cast<scalar_t*>(base);
      auto* rp = reinterpret_cast<const scalar_t*>(sbase);
      for_each_line<3>(isz, d, {self_st, idx_st, src_st}, [&](const int64_t* off) {
        for (int64_t j = 0; j < line; ++j) {
          scalar_t& dst = sp[off[0] + ip[off[1] + j * is] * ss];
          const scalar_t v = rp[off[2] + j * rs];
          if constexpr (std::is_same_v<scalar_t, bool>)
            dst = dst || v;
          else
            dst = static_cast<scalar_t>(static_cast<acc_t>(dst) + static_cast<acc_t>(v));
        }
      });
    });
  } else if (mode == ScatterMode::Value) {
    KILN_DISPATCH_ALL_TYPES(self.dtype(), op, [&] {
      auto* sp = reinterpret_cast<scalar_t*>(base);
      const scalar_t v = value.to<scalar_t>();
      for_each_line<2>(isz, d, {self_st, idx_st}, [&](const int64_t* off) {
        for (int64_t j = 0; j < line; ++j) sp[off[0] + ip[off[1] + j * is] * ss] = v;
      });
    });
  } else {
    dispatch_bits(self.element_size(), [&](auto tag) {
      using T = decltype(tag);
      auto* sp = reinterpret_cast<T*>(base);
      auto* rp = reinterpret_cast<const T*>(sbase);
      for_each_line<3>(isz, d, {self_st, idx_st, src_st}, [&](const int64_t* off) {
        for (int64_t j = 0; j < line; ++j)
          sp[off[0] + ip[off[1] + j * is] * ss] = rp[off[2] + j * rs];
      });
    });
  }
  self.impl()->bump_version();
  return self;
}

// A fresh contiguous copy of self (the out-of-place ops write into it).
Tensor fresh_copy(const Tensor& self, const char* op) {
  check_cpu(self, op, "self");
  Tensor out = detail::make_empty(self.sizes(), self.dtype());
  if (self.numel() > 0) out.copy_(self);
  return out;
}

}  // namespace

// ---- joining ----------------------------------------------------------------------------------

Tensor cat(const std::vector<Tensor>& tensors, int64_t dim) {
  KILN_CHECK(!tensors.empty(), "[cat] got an empty list of tensors, expected at least one tensor");
  if (detail::should_record_list(tensors)) [[unlikely]] {
    for (const Tensor& t : tensors) check_cpu(t, "cat", "tensors");
    const int64_t d = tensors[0].dim() > 0 ? wrap_dim(dim, tensors[0].dim(), "cat") : dim;
    return detail::record1(ops::OpKind::Cat, {tensors, d});
  }
  // Legacy rule: 1-D tensors of size [0] take part in type promotion but not in shape checks.
  auto skipped = [](const Tensor& t) { return t.dim() == 1 && t.numel() == 0; };
  std::optional<size_t> ref;
  ScalarType dtype = kBool;
  for (size_t i = 0; i < tensors.size(); ++i) {
    check_cpu(tensors[i], "cat", "tensors");
    KILN_CHECK(tensors[i].dim() > 0,
               "[cat] zero-dimensional tensor (at position {}) cannot be concatenated, expected "
               "tensors with at least one dimension",
               i);
    dtype = i == 0 ? tensors[i].dtype() : promote_types(dtype, tensors[i].dtype());
    if (!ref && !skipped(tensors[i])) ref = i;
  }
  if (!ref) return detail::make_empty({0}, dtype);

  const Tensor& first = tensors[*ref];
  const int64_t nd = first.dim();
  const int64_t d = wrap_dim(dim, nd, "cat");
  std::vector<int64_t> out_sizes = first.sizes().vec();
  out_sizes[d] = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    if (skipped(t)) continue;
    KILN_CHECK(t.dim() == nd,
               "[cat] tensors must have the same number of dimensions: got {} for tensor {} of "
               "sizes {} and {} for tensor {} of sizes {}",
               nd, *ref, shape_str(first.sizes()), t.dim(), i, shape_str(t.sizes()));
    for (int64_t k = 0; k < nd; ++k) {
      KILN_CHECK(k == d || t.size(k) == first.size(k),
                 "[cat] sizes of tensors must match except in dimension {}: expected size {} but "
                 "got size {} at dimension {} for tensor number {} in the list (sizes {} vs {})",
                 d, first.size(k), t.size(k), k, i, shape_str(t.sizes()), shape_str(first.sizes()));
    }
    out_sizes[d] += t.size(d);
  }
  Tensor out = detail::make_empty(out_sizes, dtype);
  if (out.numel() == 0) return out;

  // Each output row (one index of the dims before d) is the inputs' blocks side by side.
  // Contiguous inputs of the result dtype are memcpy'd over the flat output range in parallel;
  // the rest go through copy_ into their slice of the output (strides and dtype conversion).
  struct Segment {
    int64_t start, len;  // within an output row, in elements
    const char* src;     // null when copied by copy_
  };
  std::vector<Segment> segs;
  int64_t inner = 1;
  for (int64_t k = d + 1; k < nd; ++k) inner *= out_sizes[k];
  int64_t offset = 0;
  bool any_fast = false;
  for (const Tensor& t : tensors) {
    if (skipped(t) || t.size(d) == 0) continue;
    const bool fast = t.is_contiguous() && t.dtype() == dtype;
    if (!fast) out.narrow(d, offset, t.size(d)).copy_(t);
    segs.push_back({offset * inner, t.size(d) * inner,
                    fast ? static_cast<const char*>(t.data_ptr()) : nullptr});
    any_fast |= fast;
    offset += t.size(d);
  }
  if (!any_fast) return out;
  const int64_t row = out_sizes[d] * inner;
  const int64_t es = out.element_size();
  char* op = static_cast<char*>(out.data_ptr());
  parallel_for(0, out.numel(), kGrain, [&](int64_t lo, int64_t hi) {
    int64_t f = lo;
    while (f < hi) {
      const int64_t o = f / row, r = f % row;
      auto it = std::upper_bound(segs.begin(), segs.end(), r,
                                 [](int64_t v, const Segment& s) { return v < s.start; });
      const Segment& s = *(it - 1);
      const int64_t n = std::min(s.start + s.len - r, hi - f);
      if (s.src != nullptr)
        std::memcpy(op + f * es, s.src + (o * s.len + (r - s.start)) * es,
                    static_cast<size_t>(n * es));
      f += n;
    }
  });
  return out;
}

Tensor stack(const std::vector<Tensor>& tensors, int64_t dim) {
  KILN_CHECK(!tensors.empty(),
             "[stack] got an empty list of tensors, expected at least one tensor");
  for (size_t i = 0; i < tensors.size(); ++i) {
    check_cpu(tensors[i], "stack", "tensors");
    KILN_CHECK(tensors[i].sizes().equals(tensors[0].sizes()),
               "[stack] expects each tensor to be equal size, but got {} at entry 0 and {} at "
               "entry {}",
               shape_str(tensors[0].sizes()), shape_str(tensors[i].sizes()), i);
  }
  const int64_t d = wrap_dim(dim, tensors[0].dim() + 1, "stack");
  std::vector<Tensor> parts;
  parts.reserve(tensors.size());
  for (const Tensor& t : tensors) parts.push_back(t.unsqueeze(d));
  return cat(parts, d);
}

// ---- splitting (views) ------------------------------------------------------------------------

std::vector<Tensor> split(const Tensor& self, int64_t split_size, int64_t dim) {
  detail::check_defined(self, "split", "self");
  KILN_CHECK(self.dim() != 0,
             "[split] expects at least a 1-dimensional tensor, got a 0-dim tensor");
  const int64_t d = wrap_dim(dim, self.dim(), "split");
  KILN_CHECK(split_size >= 0, "[split] expects split_size be non-negative, but got split_size={}",
             split_size);
  const int64_t n = self.size(d);
  KILN_CHECK(split_size > 0 || n == 0,
             "[split] split_size can only be 0 if dimension size is 0, but got dimension size "
             "of {} (dim {} of sizes {})",
             n, d, shape_str(self.sizes()));
  // A split_size larger than the dim gives one (short) split, like libtorch.
  const int64_t num = split_size == 0 ? 1 : std::max<int64_t>((n + split_size - 1) / split_size, 1);
  const int64_t last = split_size - (split_size * num - n);
  std::vector<Tensor> out;
  out.reserve(num);
  for (int64_t i = 0; i < num; ++i)
    out.push_back(self.narrow(d, i * split_size, i < num - 1 ? split_size : last));
  return out;
}

std::vector<Tensor> split(const Tensor& self, IntArrayRef split_sizes, int64_t dim) {
  detail::check_defined(self, "split", "self");
  KILN_CHECK(self.dim() != 0,
             "[split] expects at least a 1-dimensional tensor, got a 0-dim tensor");
  const int64_t d = wrap_dim(dim, self.dim(), "split");
  int64_t total = 0;
  for (int64_t s : split_sizes) {
    KILN_CHECK(s >= 0,
               "[split] expects split_sizes have only non-negative entries, but got "
               "split_sizes={}",
               shape_str(split_sizes));
    total += s;
  }
  KILN_CHECK(total == self.size(d),
             "[split] expects split_sizes to sum exactly to {} (input tensor's size at dimension "
             "{}), but got split_sizes={}",
             self.size(d), d, shape_str(split_sizes));
  std::vector<Tensor> out;
  out.reserve(split_sizes.size());
  int64_t start = 0;
  for (int64_t s : split_sizes) {
    out.push_back(self.narrow(d, start, s));
    start += s;
  }
  return out;
}

std::vector<Tensor> chunk(const Tensor& self, int64_t chunks, int64_t dim) {
  detail::check_defined(self, "chunk", "self");
  KILN_CHECK(self.dim() > 0, "[chunk] expects at least a 1-dimensional tensor, got a 0-dim tensor");
  KILN_CHECK(chunks > 0, "[chunk] expects `chunks` to be greater than 0, got: {}", chunks);
  const int64_t d = wrap_dim(dim, self.dim(), "chunk");
  const int64_t n = self.size(d);
  const int64_t split_size = (n + chunks - 1) / chunks;
  // An empty dim still yields `chunks` empty pieces (split would give one).
  if (split_size == 0 && n == 0) {
    std::vector<int64_t> sizes(chunks, 0);
    return split(self, IntArrayRef(sizes), d);
  }
  return split(self, split_size, d);
}

// ---- gather / scatter -------------------------------------------------------------------------

Tensor gather(const Tensor& self, int64_t dim, const Tensor& index) {
  if (detail::should_record(self, index)) [[unlikely]] {
    check_cpu(self, "gather", "self");
    return detail::record1(ops::OpKind::Gather, {self, wrap_dim(dim, self.dim(), "gather"), index});
  }
  check_cpu(self, "gather", "self");
  check_cpu(index, "gather", "index");
  const int64_t d = wrap_dim(dim, self.dim(), "gather");
  check_long_index(index, "gather");
  Tensor out = detail::make_empty(index.sizes(), self.dtype());
  if (index.numel() == 0) return out;
  check_index_shape(self, index, d, nullptr, "gather");
  Tensor idx = index.contiguous();
  const int64_t* ip = static_cast<const int64_t*>(idx.data_ptr());
  check_index_range(ip, idx.numel(), nonempty_sizes(self)[d], d, "gather");

  auto isz = nonempty_sizes(idx);
  auto self_st = nonempty_strides(self);
  auto cst = detail::contiguous_strides(isz);  // index and out are both contiguous
  const int64_t line = isz[d], ss = self_st[d], cs = cst[d];
  dispatch_bits(self.element_size(), [&](auto tag) {
    using T = decltype(tag);
    const auto* sp = static_cast<const T*>(self.data_ptr());
    auto* op = static_cast<T*>(out.data_ptr());
    for_each_line<2>(isz, d, {self_st, cst}, [&](const int64_t* off) {
      for (int64_t j = 0; j < line; ++j)
        op[off[1] + j * cs] = sp[off[0] + ip[off[1] + j * cs] * ss];
    });
  });
  return out;
}

namespace {
// The recorded forms of the scatter family: functional (a fresh copy) or in place on self.
IValue scatter_src(const Tensor* src, const Scalar& value) {
  return src != nullptr ? IValue(*src) : IValue(value);
}
Tensor scatter_functional(const Tensor& self, int64_t dim, const Tensor& index, const Tensor* src,
                          const Scalar& value, ScatterMode mode, const char* op) {
  const Tensor none;
  if (detail::should_record(self, index, src != nullptr ? *src : none)) [[unlikely]] {
    check_cpu(self, op, "self");
    const auto kind = mode == ScatterMode::Add ? ops::OpKind::ScatterAdd : ops::OpKind::Scatter;
    return detail::record1(kind, {self, wrap_dim(dim, self.dim(), op), index,
                                  scatter_src(src, value)});
  }
  Tensor out = fresh_copy(self, op);
  return scatter_impl(out, dim, index, src, value, mode, op);
}
Tensor& scatter_inplace(Tensor& self, int64_t dim, const Tensor& index, const Tensor* src,
                        const Scalar& value, ScatterMode mode, const char* op) {
  const Tensor none;
  if (detail::should_record(self, index, src != nullptr ? *src : none)) [[unlikely]] {
    check_cpu(self, op, "self");
    const auto kind = mode == ScatterMode::Add ? ops::OpKind::ScatterAdd : ops::OpKind::Scatter;
    detail::record_inplace(kind, self,
                           {self, wrap_dim(dim, self.dim(), op), index, scatter_src(src, value)},
                           [&] { scatter_impl(self, dim, index, src, value, mode, op); });
    return self;
  }
  return scatter_impl(self, dim, index, src, value, mode, op);
}
}  // namespace

Tensor scatter(const Tensor& self, int64_t dim, const Tensor& index, const Tensor& src) {
  return scatter_functional(self, dim, index, &src, Scalar(), ScatterMode::Copy, "scatter");
}

Tensor scatter(const Tensor& self, int64_t dim, const Tensor& index, const Scalar& value) {
  return scatter_functional(self, dim, index, nullptr, value, ScatterMode::Value, "scatter");
}

Tensor scatter_add(const Tensor& self, int64_t dim, const Tensor& index, const Tensor& src) {
  return scatter_functional(self, dim, index, &src, Scalar(), ScatterMode::Add, "scatter_add");
}

Tensor& Tensor::scatter_(int64_t dim, const Tensor& index, const Tensor& src) {
  return scatter_inplace(*this, dim, index, &src, Scalar(), ScatterMode::Copy, "scatter_");
}

Tensor& Tensor::scatter_(int64_t dim, const Tensor& index, const Scalar& value) {
  return scatter_inplace(*this, dim, index, nullptr, value, ScatterMode::Value, "scatter_");
}

Tensor& Tensor::scatter_add_(int64_t dim, const Tensor& index, const Tensor& src) {
  return scatter_inplace(*this, dim, index, &src, Scalar(), ScatterMode::Add, "scatter_add_");
}

// ---- masked_fill ------------------------------------------------------------------------------

Tensor& masked_fill_(Tensor& self, const Tensor& mask, const Scalar& value) {
  if (detail::should_record(self, mask)) [[unlikely]] {
    detail::record_inplace(ops::OpKind::MaskedFill, self, {self, mask, value},
                           [&] { masked_fill_(self, mask, value); });
    return self;
  }
  check_cpu(self, "masked_fill_", "self");
  check_cpu(mask, "masked_fill_", "mask");
  KILN_CHECK(mask.dtype() == kBool,
             "[masked_fill_] only supports boolean masks, but got mask with dtype {}",
             dtype_name(mask.dtype()));
  auto shape = infer_broadcast_size(self.sizes(), mask.sizes(), "masked_fill_");
  KILN_CHECK(self.sizes().equals(shape),
             "[masked_fill_] mask of shape {} cannot be broadcast to self of shape {} (an in-place "
             "op does not broadcast self)",
             shape_str(mask.sizes()), shape_str(self.sizes()));
  if (self.numel() == 0) return self;
  Tensor m = same_storage(mask, self) ? mask.clone() : mask;
  KILN_DISPATCH_ALL_TYPES(self.dtype(), "masked_fill_", [&] {
    const scalar_t v = value.to<scalar_t>();
    detail::for_each_row<2>(
        shape, {static_cast<char*>(self.data_ptr()), static_cast<char*>(m.data_ptr())},
        {detail::broadcast_byte_strides(self, shape), detail::broadcast_byte_strides(m, shape)},
        [&](char** p, const int64_t* s, int64_t n) {
          for (int64_t i = 0; i < n; ++i)
            if (*reinterpret_cast<const bool*>(p[1] + i * s[1]))
              *reinterpret_cast<scalar_t*>(p[0] + i * s[0]) = v;
        });
  });
  self.impl()->bump_version();
  return self;
}

Tensor masked_fill(const Tensor& self, const Tensor& mask, const Scalar& value) {
  if (detail::should_record(self, mask)) [[unlikely]]
    return detail::record1(ops::OpKind::MaskedFill, {self, mask, value});
  check_cpu(self, "masked_fill", "self");
  check_cpu(mask, "masked_fill", "mask");
  KILN_CHECK(mask.dtype() == kBool,
             "[masked_fill] only supports boolean masks, but got mask with dtype {}",
             dtype_name(mask.dtype()));
  auto shape = infer_broadcast_size(self.sizes(), mask.sizes(), "masked_fill");
  Tensor out = detail::make_empty(shape, self.dtype());
  if (out.numel() > 0) out.copy_(self);
  return masked_fill_(out, mask, value);
}

// ---- one_hot ----------------------------------------------------------------------------------

Tensor one_hot(const Tensor& self, int64_t num_classes) {
  check_cpu(self, "one_hot", "self");
  KILN_CHECK(self.dtype() == kLong,
             "[one_hot] is only applicable to index tensors of dtype int64, got dtype {}",
             dtype_name(self.dtype()));
  std::vector<int64_t> shape = self.sizes().vec();
  if (self.numel() == 0) {
    KILN_CHECK(num_classes > 0,
               "[one_hot] can not infer the total number of classes from an empty tensor of "
               "sizes {}: got num_classes {}, expected a positive num_classes",
               shape_str(self.sizes()), num_classes);
    shape.push_back(num_classes);
    return zeros(shape, dtype(kLong));
  }
  Tensor idx = self.contiguous();
  const int64_t* ip = static_cast<const int64_t*>(idx.data_ptr());
  const int64_t n = idx.numel();
  const int64_t lo = *std::min_element(ip, ip + n), hi = *std::max_element(ip, ip + n);
  KILN_CHECK(lo >= 0, "[one_hot] class values must be non-negative: got {}", lo);
  if (num_classes == -1) {
    detail::note_value_read(self, "one_hot without num_classes");
    num_classes = hi + 1;
  } else {
    KILN_CHECK(num_classes > hi,
               "[one_hot] class values must be smaller than num_classes: got class {} with "
               "num_classes {}",
               hi, num_classes);
  }
  shape.push_back(num_classes);
  if (detail::should_record(self))  // primitive spelling: index == arange(num_classes)
    return eq(self.unsqueeze(-1), arange(num_classes, dtype(kLong))).to(kLong);
  Tensor out = zeros(shape, dtype(kLong));
  int64_t* op = static_cast<int64_t*>(out.data_ptr());
  parallel_for(0, n, kGrain, [&](int64_t a, int64_t b) {
    for (int64_t i = a; i < b; ++i) op[i * num_classes + ip[i]] = 1;
  });
  return out;
}

}  // namespace kiln
