// Index-tensor selection in the eager CPU core: index_select, embedding, and Python-style
// Tensor::index / index_put_ (basic indexing as views via select/slice/unsqueeze, advanced
// indexing with integer and boolean tensors as a gather). Indices are validated before any write.
#include "kiln/indexing.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <string_view>

#include "kiln/functions.h"
#include "tensor/internal.h"
#include "tensor/record.h"

namespace kiln {

namespace indexing {

TensorIndex::TensorIndex(const char* s) : kind_(Kind::Ellipsis) {
  KILN_CHECK(s != nullptr && std::string_view(s) == "...",
             "[index] got the string index \"{}\", expected \"...\" (the only string index)",
             s == nullptr ? "(null)" : s);
}

}  // namespace indexing

namespace {

using detail::check_cpu;
using detail::wrap_dim;
using indexing::TensorIndex;

constexpr int64_t kGrain = 32768;

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

// The values of an int32/int64 tensor as int64, row-major.
std::vector<int64_t> read_indices(const Tensor& t) {
  Tensor c = t.contiguous();
  std::vector<int64_t> out(c.numel());
  if (c.dtype() == kLong) {
    const auto* p = static_cast<const int64_t*>(c.data_ptr());
    std::copy(p, p + c.numel(), out.begin());
  } else {
    KILN_ASSERT(c.dtype() == kInt, "read_indices got dtype {}", dtype_name(c.dtype()));
    const auto* p = static_cast<const int32_t*>(c.data_ptr());
    std::copy(p, p + c.numel(), out.begin());
  }
  return out;
}

// Element offsets of every position of (sizes, strides), row-major.
std::vector<int64_t> offsets_of(IntArrayRef sizes, IntArrayRef strides) {
  const int64_t n = detail::prod_sizes(sizes);
  std::vector<int64_t> out(n);
  const int64_t nd = static_cast<int64_t>(sizes.size());
  std::vector<int64_t> c(nd, 0);
  int64_t off = 0;
  for (int64_t i = 0; i < n; ++i) {
    out[i] = off;
    for (int64_t d = nd - 1; d >= 0; --d) {
      off += strides[d];
      if (++c[d] < sizes[d]) break;
      off -= strides[d] * sizes[d];
      c[d] = 0;
    }
  }
  return out;
}

// A gather/scatter over a strided source laid out as [Q, B, S]: element (q, b, s) lives at
// source offset pre[q] + adv[b] + post[s]. B enumerates the index tensors' broadcast shape; Q and
// S the source dims before and after them.
struct TakePlan {
  std::vector<int64_t> pre, adv, post;
  bool post_unit = false;  // post[s] == s: rows copy with memcpy

  void set_post(IntArrayRef sizes, IntArrayRef strides) {
    post = offsets_of(sizes, strides);
    post_unit = true;
    for (size_t s = 0; s < post.size(); ++s) post_unit &= post[s] == static_cast<int64_t>(s);
  }
};

// out (contiguous, [Q, B, S]) = src at the plan's offsets.
void take_kernel(const Tensor& src, const TakePlan& p, const Tensor& out) {
  const int64_t Q = p.pre.size(), B = p.adv.size(), S = p.post.size();
  if (Q * B * S == 0) return;
  dispatch_bits(src.element_size(), [&](auto tag) {
    using T = decltype(tag);
    const auto* sp = static_cast<const T*>(src.data_ptr());
    auto* op = static_cast<T*>(out.data_ptr());
    parallel_for(0, Q * B, std::max<int64_t>(1, kGrain / S), [&](int64_t lo, int64_t hi) {
      for (int64_t r = lo; r < hi; ++r) {
        const T* row = sp + p.pre[r / B] + p.adv[r % B];
        T* dst = op + r * S;
        if (p.post_unit) {
          std::memcpy(dst, row, static_cast<size_t>(S) * sizeof(T));
        } else {
          for (int64_t s = 0; s < S; ++s) dst[s] = row[p.post[s]];
        }
      }
    });
  });
}

// dst at the plan's offsets = values (contiguous, [Q, B, S], dst's dtype). Threads split (q, s)
// and walk b in order, so repeated indices resolve deterministically (the last one wins).
void put_kernel(const Tensor& dst, const TakePlan& p, const Tensor& values) {
  const int64_t Q = p.pre.size(), B = p.adv.size(), S = p.post.size();
  if (Q * B * S == 0) return;
  dispatch_bits(dst.element_size(), [&](auto tag) {
    using T = decltype(tag);
    auto* dp = static_cast<T*>(dst.data_ptr());
    const auto* vp = static_cast<const T*>(values.data_ptr());
    parallel_for(0, Q * S, std::max<int64_t>(1, kGrain / B), [&](int64_t lo, int64_t hi) {
      for (int64_t t = lo; t < hi;) {
        const int64_t q = t / S, s0 = t % S, s1 = std::min(S, s0 + (hi - t));
        for (int64_t b = 0; b < B; ++b) {
          T* row = dp + p.pre[q] + p.adv[b];
          const T* v = vp + (q * B + b) * S;
          if (p.post_unit) {
            std::memcpy(row + s0, v + s0, static_cast<size_t>(s1 - s0) * sizeof(T));
          } else {
            for (int64_t s = s0; s < s1; ++s) row[p.post[s]] = v[s];
          }
        }
        t += s1 - s0;
      }
    });
  });
}

// dst at the plan's offsets += values, with the same deterministic order as put_kernel.
void put_add_kernel(const Tensor& dst, const TakePlan& p, const Tensor& values) {
  const int64_t Q = p.pre.size(), B = p.adv.size(), S = p.post.size();
  if (Q * B * S == 0) return;
  KILN_DISPATCH_ALL_TYPES(dst.dtype(), "index_put_", [&] {
    using acc_t = opmath_t<scalar_t>;
    auto* dp = static_cast<scalar_t*>(dst.data_ptr());
    const auto* vp = static_cast<const scalar_t*>(values.data_ptr());
    parallel_for(0, Q * S, std::max<int64_t>(1, kGrain / B), [&](int64_t lo, int64_t hi) {
      for (int64_t t = lo; t < hi; ++t) {
        const int64_t q = t / S, s = t % S;
        for (int64_t b = 0; b < B; ++b) {
          scalar_t& d = dp[p.pre[q] + p.adv[b] + p.post[s]];
          const scalar_t v = vp[(q * B + b) * S + s];
          if constexpr (std::is_same_v<scalar_t, bool>)
            d = d || v;
          else
            d = static_cast<scalar_t>(static_cast<acc_t>(d) + static_cast<acc_t>(v));
        }
      }
    });
  });
}

// Picks rows of self along dim: the core of index_select and embedding. idx must already be
// validated against [0, self.size(dim)).
Tensor select_rows(const Tensor& self, int64_t d, const std::vector<int64_t>& idx) {
  std::vector<int64_t> out_sizes = self.sizes().vec();
  TakePlan p;
  if (self.dim() == 0) {
    p.pre = {0};
    p.adv = {0};
    p.post = {0};
    p.post_unit = true;
  } else {
    out_sizes[d] = static_cast<int64_t>(idx.size());
    IntArrayRef sz = self.sizes(), st = self.strides();
    p.pre = offsets_of(IntArrayRef(sz.data(), d), IntArrayRef(st.data(), d));
    p.adv.resize(idx.size());
    for (size_t b = 0; b < idx.size(); ++b) p.adv[b] = idx[b] * st[d];
    p.set_post(IntArrayRef(sz.data() + d + 1, sz.size() - d - 1),
               IntArrayRef(st.data() + d + 1, st.size() - d - 1));
  }
  Tensor out = detail::make_empty(out_sizes, self.dtype());
  take_kernel(self, p, out);
  return out;
}

// ---- Python-style indexing ----------------------------------------------------------------------

// The result of applying the basic (view) part of an index list: the view, and the tensor
// indices with the dim of the view each one applies to (boolean masks already expanded into one
// int64 index per mask dim).
struct Sliced {
  Tensor view;
  std::vector<std::pair<int64_t, Tensor>> tensors;
};

bool is_mask_dtype(ScalarType t) { return t == kBool || t == kByte; }

// The integer value of a one-element tensor of any dtype.
int64_t tensor_to_int(const Tensor& t) {
  detail::note_value_read(t, "indexing with a 0-dim tensor");
  return KILN_DISPATCH_ALL_TYPES(t.dtype(), "index", [&]() -> int64_t {
    return detail::convert<int64_t>(*static_cast<const scalar_t*>(t.data_ptr()));
  });
}

// The int64 index tensors (one per mask dim) of the true elements of mask, like nonzero.
std::vector<Tensor> mask_to_indices(const Tensor& mask) {
  detail::note_value_read(mask, "indexing with a boolean mask");
  Tensor m = mask.contiguous();
  const int64_t n = m.numel(), k = m.dim();
  const auto* mp = static_cast<const uint8_t*>(m.data_ptr());  // bool and uint8 are both 1 byte
  int64_t nnz = 0;
  for (int64_t i = 0; i < n; ++i) nnz += mp[i] != 0;
  std::vector<Tensor> out;
  std::vector<int64_t*> ptrs;
  for (int64_t j = 0; j < k; ++j) {
    out.push_back(detail::make_empty({nnz}, kLong));
    ptrs.push_back(static_cast<int64_t*>(out.back().data_ptr()));
  }
  std::vector<int64_t> c(k, 0);
  int64_t w = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (mp[i] != 0) {
      for (int64_t j = 0; j < k; ++j) ptrs[j][w] = c[j];
      ++w;
    }
    for (int64_t j = k - 1; j >= 0; --j) {
      if (++c[j] < m.size(j)) break;
      c[j] = 0;
    }
  }
  return out;
}

Tensor bool_index_tensor(bool value) {
  Tensor t = detail::make_empty({value ? 1 : 0}, kLong);
  if (value) static_cast<int64_t*>(t.data_ptr())[0] = 0;
  return t;
}

// Applies integers, slices, None, Ellipsis and booleans as views; collects tensor indices.
Sliced apply_slicing(const Tensor& self, ArrayRef<TensorIndex> indices, const char* op) {
  using Kind = TensorIndex::Kind;
  check_cpu(self, op, "self");
  int64_t specified = 0, ellipses = 0;
  bool has_tensor = false;
  for (const TensorIndex& ix : indices) {
    switch (ix.kind()) {
      case Kind::Integer:
      case Kind::Slice:
        ++specified;
        break;
      case Kind::Ellipsis:
        ++ellipses;
        break;
      case Kind::Tensor: {
        const Tensor& t = ix.tensor();
        KILN_CHECK(t.defined(),
                   "[{}] got an undefined tensor as an index, expected a defined "
                   "tensor",
                   op);
        check_cpu(t, op, "indices");
        if (t.dim() == 0 && is_integral(t.dtype(), true)) {
          specified += is_mask_dtype(t.dtype()) ? 0 : 1;
        } else {
          specified += is_mask_dtype(t.dtype()) ? t.dim() : 1;
          has_tensor = true;
        }
        break;
      }
      default:
        break;
    }
  }
  KILN_CHECK(ellipses <= 1, "[{}] an index can only have a single ellipsis ('...'), got {}", op,
             ellipses);
  KILN_CHECK(specified <= self.dim(),
             "[{}] too many indices for tensor of dimension {}: got {} indexed dims (sizes {})", op,
             self.dim(), specified, shape_str(self.sizes()));

  Sliced out;
  Tensor r = self;
  int64_t dim = 0, real_dim = 0;  // position in r, and in self (for messages)
  // A boolean adds a dim of size 1; with tensor indices around it must broadcast with them, so
  // it becomes the index tensor [0] (true) or [] (false) like libtorch; otherwise a view.
  auto apply_bool = [&](bool value) {
    r = r.unsqueeze(dim);
    if (has_tensor)
      out.tensors.emplace_back(dim, bool_index_tensor(value));
    else if (!value)
      r = r.slice(dim, 0, 0);
    ++dim;
  };
  auto apply_int = [&](int64_t i) {
    const int64_t n = r.size(dim);
    KILN_CHECK(i >= -n && i < n, "[{}] index {} is out of bounds for dimension {} with size {}", op,
               i, real_dim, n);
    r = r.select(dim, i);
    ++real_dim;
  };
  for (const TensorIndex& ix : indices) {
    switch (ix.kind()) {
      case Kind::Integer:
        apply_int(ix.integer());
        break;
      case Kind::Slice: {
        const indexing::Slice& s = ix.slice();
        KILN_CHECK(s.step() > 0,
                   "[{}] got a slice with step {}, expected a step greater than "
                   "zero",
                   op, s.step());
        r = r.slice(dim, s.start(), s.stop(), s.step());
        ++dim;
        ++real_dim;
        break;
      }
      case Kind::None:
        r = r.unsqueeze(dim);
        ++dim;
        break;
      case Kind::Ellipsis:
        dim += self.dim() - specified;
        real_dim += self.dim() - specified;
        break;
      case Kind::Boolean:
        apply_bool(ix.boolean());
        break;
      case Kind::Tensor: {
        const Tensor& t = ix.tensor();
        if (t.dim() == 0 && is_integral(t.dtype(), true)) {
          if (is_mask_dtype(t.dtype()))
            apply_bool(tensor_to_int(t) != 0);
          else
            apply_int(tensor_to_int(t));
          break;
        }
        if (is_mask_dtype(t.dtype())) {
          const int64_t k = t.dim();
          IntArrayRef covered(r.sizes().data() + dim, static_cast<size_t>(k));
          for (int64_t j = 0; j < k; ++j)
            KILN_CHECK(t.size(j) == covered[j],
                       "[{}] the shape of the mask {} at index {} does not match the shape of "
                       "the indexed tensor {} at index {}",
                       op, shape_str(t.sizes()), j, shape_str(covered), j);
          std::vector<Tensor> idx = mask_to_indices(t);
          for (int64_t j = 0; j < k; ++j) out.tensors.emplace_back(dim + j, idx[j]);
          dim += k;
          real_dim += k;
        } else {
          KILN_CHECK(t.dtype() == kLong || t.dtype() == kInt,
                     "[{}] tensors used as indices must be int64, int32, uint8 or bool tensors, "
                     "got dtype {}",
                     op, dtype_name(t.dtype()));
          out.tensors.emplace_back(dim, t);
          ++dim;
          ++real_dim;
        }
        break;
      }
    }
  }
  out.view = r;
  return out;
}

// Advanced indexing over the view: index tensors broadcast to one shape B; the result puts B at
// the first indexed dim when the indexed dims are adjacent, else in front (libtorch / numpy).
struct AdvancedPlan {
  std::vector<int64_t> out_sizes;
  TakePlan take;
};

AdvancedPlan plan_advanced(const Tensor& r, const std::vector<std::pair<int64_t, Tensor>>& tensors,
                           const char* op) {
  std::vector<int64_t> bshape;
  for (const auto& [pos, t] : tensors) {
    std::vector<int64_t> next = infer_broadcast_size(bshape, t.sizes(), op);
    bshape = std::move(next);
  }
  const int64_t B = detail::prod_sizes(bshape);
  AdvancedPlan plan;
  plan.take.adv.assign(B, 0);
  std::vector<bool> indexed(r.dim(), false);
  for (const auto& [pos, t] : tensors) {
    indexed[pos] = true;
    const std::vector<int64_t> v = read_indices(t.expand(bshape));
    const int64_t n = r.size(pos), st = r.stride(pos);
    int64_t bad = find_first(B, [&](int64_t i) { return v[i] < -n || v[i] >= n; });
    KILN_CHECK(bad < 0, "[{}] index {} is out of bounds for dimension {} with size {}", op,
               bad < 0 ? 0 : v[bad], pos, n);
    int64_t* adv = plan.take.adv.data();
    parallel_for(0, B, kGrain, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) adv[i] += (v[i] < 0 ? v[i] + n : v[i]) * st;
    });
  }
  const int64_t first = tensors.front().first;
  int64_t last = first;
  for (const auto& [pos, t] : tensors) last = std::max(last, pos);
  const bool adjacent = last - first + 1 == static_cast<int64_t>(tensors.size());
  std::vector<int64_t> pre_sz, pre_st, post_sz, post_st;
  for (int64_t d = 0; d < r.dim(); ++d) {
    if (indexed[d]) continue;
    const bool before = adjacent && d < first;
    (before ? pre_sz : post_sz).push_back(r.size(d));
    (before ? pre_st : post_st).push_back(r.stride(d));
  }
  plan.take.pre = offsets_of(pre_sz, pre_st);
  plan.take.set_post(post_sz, post_st);
  plan.out_sizes = pre_sz;
  plan.out_sizes.insert(plan.out_sizes.end(), bshape.begin(), bshape.end());
  plan.out_sizes.insert(plan.out_sizes.end(), post_sz.begin(), post_sz.end());
  return plan;
}

// A value for setitem: leading size-1 dims dropped (libtorch's slicePrefix1sSize), then checked
// to broadcast to the target shape.
Tensor prepare_value(const Tensor& value, IntArrayRef target, const char* op) {
  Tensor v = value;
  while (v.dim() > 0 && v.size(0) == 1) v = v.squeeze(0);
  bool ok = v.dim() <= static_cast<int64_t>(target.size());
  for (int64_t i = 1; ok && i <= v.dim(); ++i) {
    const int64_t a = v.size(-i), b = target[target.size() - i];
    ok = a == b || a == 1;
  }
  KILN_CHECK(ok,
             "[{}] shape mismatch: value tensor of shape {} cannot be broadcast to indexing "
             "result of shape {}",
             op, shape_str(value.sizes()), shape_str(target));
  return v;
}

// The (dim, tensor) pairs of sliced.tensors as a Tensor?[] list aligned with the view's dims.
std::vector<Tensor> index_list(const Sliced& s) {
  int64_t last = 0;
  for (const auto& [pos, t] : s.tensors) last = std::max(last, pos);
  std::vector<Tensor> list(last + 1);
  for (const auto& [pos, t] : s.tensors) list[pos] = t;
  return list;
}

bool records_indices(const Tensor& self, const Sliced& s, const Tensor& value = Tensor()) {
  std::vector<Tensor> all = {self, value};
  for (const auto& [pos, t] : s.tensors) all.push_back(t);
  return detail::should_record_list(all);
}

// Validates a Tensor?[] list against self and pairs each defined entry with its dim.
std::vector<std::pair<int64_t, Tensor>> indexed_dims(const Tensor& self,
                                                     const std::vector<Tensor>& indices,
                                                     const char* op) {
  KILN_CHECK(static_cast<int64_t>(indices.size()) <= self.dim(),
             "[{}] too many indices for tensor of dimension {}: got {} (sizes {})", op, self.dim(),
             indices.size(), shape_str(self.sizes()));
  std::vector<std::pair<int64_t, Tensor>> out;
  for (size_t i = 0; i < indices.size(); ++i) {
    if (!indices[i].defined()) continue;
    check_cpu(indices[i], op, "indices");
    KILN_CHECK(indices[i].dtype() == kLong || indices[i].dtype() == kInt,
               "[{}] tensors used as indices must be int64 or int32 tensors, got dtype {}", op,
               dtype_name(indices[i].dtype()));
    out.emplace_back(static_cast<int64_t>(i), indices[i]);
  }
  KILN_CHECK(!out.empty(), "[{}] got no index tensors, expected at least one defined index", op);
  return out;
}

Tensor& index_put_impl(Tensor& self, ArrayRef<TensorIndex> indices, const Tensor& value) {
  const char* op = "index_put_";
  check_cpu(value, op, "value");
  Sliced s = apply_slicing(self, indices, op);
  if (s.tensors.empty()) {
    Tensor v = prepare_value(value, s.view.sizes(), op);
    if (s.view.numel() > 0) s.view.copy_(v);
    return self;
  }
  KILN_CHECK(value.dtype() == self.dtype(),
             "[{}] index put requires the source and destination dtypes match, got {} for the "
             "destination and {} for the source",
             op, dtype_name(self.dtype()), dtype_name(value.dtype()));
  Tensor view = s.view;
  if (records_indices(view, s, value)) {
    detail::record_inplace(ops::OpKind::IndexPut, view, {view, index_list(s), value, false},
                           [&] { detail::index_put_tensors_(view, index_list(s), value, false); });
  } else {
    detail::index_put_tensors_(view, index_list(s), value, false);
  }
  self.impl()->bump_version();
  return self;
}

Tensor scalar_tensor(const Scalar& v, ScalarType dtype) {
  Tensor t = detail::make_empty({}, dtype);
  t.fill_(v);
  return t;
}

}  // namespace

// ---- the Index / IndexPut primitives ------------------------------------------------------------

namespace detail {

Tensor index_tensors(const Tensor& self, const std::vector<Tensor>& indices) {
  check_cpu(self, "index", "self");
  AdvancedPlan plan = plan_advanced(self, indexed_dims(self, indices, "index"), "index");
  Tensor out = detail::make_empty(plan.out_sizes, self.dtype());
  take_kernel(self, plan.take, out);
  return out;
}

void index_put_tensors_(Tensor& self, const std::vector<Tensor>& indices, const Tensor& values,
                        bool accumulate) {
  const char* op = "index_put_";
  check_cpu(self, op, "self");
  check_cpu(values, op, "values");
  KILN_CHECK(values.dtype() == self.dtype(),
             "[{}] index put requires the source and destination dtypes match, got {} for the "
             "destination and {} for the source",
             op, dtype_name(self.dtype()), dtype_name(values.dtype()));
  AdvancedPlan plan = plan_advanced(self, indexed_dims(self, indices, op), op);
  Tensor v = prepare_value(values, plan.out_sizes, op);
  if (detail::prod_sizes(plan.out_sizes) == 0) return;
  // Materialise the broadcast values (a copy also cuts any aliasing with self).
  Tensor vals = detail::make_empty(plan.out_sizes, self.dtype());
  vals.copy_(v);
  if (accumulate)
    put_add_kernel(self, plan.take, vals);
  else
    put_kernel(self, plan.take, vals);
  self.impl()->bump_version();
}

}  // namespace detail

Tensor index_put(const Tensor& self, const std::vector<Tensor>& indices, const Tensor& values,
                 bool accumulate) {
  std::vector<Tensor> all = indices;
  all.push_back(self);
  all.push_back(values);
  if (detail::should_record_list(all)) [[unlikely]]
    return detail::record1(ops::OpKind::IndexPut, {self, indices, values, accumulate});
  Tensor out = self.clone();
  detail::index_put_tensors_(out, indices, values, accumulate);
  return out;
}

// ---- index_select / embedding -------------------------------------------------------------------

Tensor index_select(const Tensor& self, int64_t dim, const Tensor& index) {
  check_cpu(self, "index_select", "self");
  check_cpu(index, "index_select", "index");
  const int64_t d = wrap_dim(dim, self.dim(), "index_select");
  if (detail::should_record(self, index)) [[unlikely]]
    return detail::record1(ops::OpKind::IndexSelect, {self, d, index});
  KILN_CHECK(index.dim() <= 1,
             "[index_select] index is supposed to be a vector: got index of sizes {}, expected a "
             "1-D or 0-D tensor",
             shape_str(index.sizes()));
  KILN_CHECK(index.dtype() == kLong || index.dtype() == kInt,
             "[index_select] got index of dtype {}, expected dtype int32 or int64",
             dtype_name(index.dtype()));
  if (self.dim() == 0)
    KILN_CHECK(index.numel() == 1,
               "[index_select] index to a 0-dim tensor can have only 1 value, got {} value(s)",
               index.numel());
  const std::vector<int64_t> idx = read_indices(index);
  const int64_t n = self.dim() == 0 ? 1 : self.size(d);
  const int64_t bad = find_first(static_cast<int64_t>(idx.size()),
                                 [&](int64_t i) { return idx[i] < 0 || idx[i] >= n; });
  KILN_CHECK(bad < 0, "[index_select] index {} is out of bounds for dim {} with size {}",
             bad < 0 ? 0 : idx[bad], d, n);
  return select_rows(self, d, idx);
}

Tensor embedding(const Tensor& weight, const Tensor& indices) {
  check_cpu(weight, "embedding", "weight");
  check_cpu(indices, "embedding", "indices");
  KILN_CHECK(weight.dim() == 2, "[embedding] 'weight' must be 2-D: got sizes {}",
             shape_str(weight.sizes()));
  KILN_CHECK(indices.dtype() == kLong || indices.dtype() == kInt,
             "[embedding] got indices of dtype {}, expected dtype int64 or int32",
             dtype_name(indices.dtype()));
  const std::vector<int64_t> idx = read_indices(indices);
  const int64_t rows = weight.size(0);
  const int64_t bad = find_first(static_cast<int64_t>(idx.size()),
                                 [&](int64_t i) { return idx[i] < 0 || idx[i] >= rows; });
  KILN_CHECK(bad < 0, "[embedding] index {} is out of range for a weight of {} rows (sizes {})",
             bad < 0 ? 0 : idx[bad], rows, shape_str(weight.sizes()));
  std::vector<int64_t> out_sizes = indices.sizes().vec();
  out_sizes.push_back(weight.size(1));
  if (detail::should_record(weight, indices))  // primitive spelling
    return index_select(weight, 0, indices.reshape({-1})).view(out_sizes);
  return select_rows(weight, 0, idx).view(out_sizes);
}

// ---- Tensor::index / index_put_ -----------------------------------------------------------------

Tensor Tensor::index(ArrayRef<TensorIndex> indices) const {
  Sliced s = apply_slicing(*this, indices, "index");
  if (s.tensors.empty()) {
    // Always a new handle (libtorch's alias), never *this itself; recorded as a no-op view.
    if (detail::should_record(s.view)) return s.view.view(s.view.sizes());
    return s.view.as_strided(s.view.sizes(), s.view.strides(), s.view.storage_offset());
  }
  if (records_indices(s.view, s)) return detail::record1(ops::OpKind::Index, {s.view, index_list(s)});
  AdvancedPlan plan = plan_advanced(s.view, s.tensors, "index");
  Tensor out = detail::make_empty(plan.out_sizes, dtype());
  take_kernel(s.view, plan.take, out);
  return out;
}

Tensor Tensor::index(std::initializer_list<TensorIndex> indices) const {
  return index(ArrayRef<TensorIndex>(indices.begin(), indices.size()));
}

Tensor& Tensor::index_put_(std::initializer_list<TensorIndex> indices, const Tensor& value) {
  return index_put_impl(*this, ArrayRef<TensorIndex>(indices.begin(), indices.size()), value);
}

Tensor& Tensor::index_put_(std::initializer_list<TensorIndex> indices, const Scalar& value) {
  const ArrayRef<TensorIndex> ix(indices.begin(), indices.size());
  check_cpu(*this, "index_put_", "self");
  return index_put_impl(*this, ix, scalar_tensor(value, dtype()));
}

}  // namespace kiln
