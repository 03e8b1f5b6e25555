// View ops: new sizes/strides/offset over the same storage (no data is copied). reshape and
// flatten copy only when no strided view can express the result, like libtorch.
#include <algorithm>
#include <numeric>

#include "kiln/functions.h"
#include "tensor/internal.h"
#include "tensor/record.h"

namespace kiln {
namespace {

using detail::wrap_dim;
using ops::OpKind;

// Records an already computed view r of base as the primitive (kind, args) when someone watches.
// make_args builds the boxed arguments only when the call is recorded.
template <typename MakeArgs>
Tensor recorded_view(const Tensor& base, Tensor r, OpKind kind, const MakeArgs& make_args) {
  if (!detail::should_record(base)) [[likely]] return r;
  const std::vector<IValue> args = make_args();
  return detail::record(kind, detail::CallKind::Functional, args, [&] {
    return std::vector<IValue>{r};
  })[0].toTensor();
}
// A view spelled as View with its sizes (squeeze, unsqueeze, 0-d transpose, t of < 2 dims).
Tensor as_view_op(const Tensor& base, Tensor r) {
  if (!detail::should_record(base)) [[likely]] return r;
  std::vector<int64_t> sizes = r.sizes().vec();
  return recorded_view(base, std::move(r), OpKind::View,
                       [&] { return std::vector<IValue>{base, sizes}; });
}

Tensor make_view(const Tensor& base, std::vector<int64_t> sizes, std::vector<int64_t> strides,
                 int64_t offset) {
  auto impl = std::make_shared<TensorImpl>(base.impl()->storage(), base.dtype(), std::move(sizes),
                                           std::move(strides), offset);
  return Tensor(std::move(impl));
}

// Resolves one -1 in a requested shape against numel.
std::vector<int64_t> infer_size(IntArrayRef shape, int64_t numel, const char* op) {
  std::vector<int64_t> out = shape.vec();
  int64_t known = 1;
  std::optional<size_t> infer;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == -1) {
      KILN_CHECK(!infer, "[{}] got shape {} with more than one -1, expected at most one", op,
                 shape_str(shape));
      infer = i;
    } else {
      KILN_CHECK(out[i] >= 0, "[{}] got invalid shape {}: sizes must be non-negative or -1", op,
                 shape_str(shape));
      known *= out[i];
    }
  }
  if (infer) {
    KILN_CHECK(known != 0 && numel % known == 0,
               "[{}] shape {} is invalid for input of size {}", op, shape_str(shape), numel);
    out[*infer] = numel / known;
  } else {
    KILN_CHECK(known == numel, "[{}] shape {} is invalid for input of size {}", op,
               shape_str(shape), numel);
  }
  return out;
}

// Strides for viewing (sizes, strides) as new_sizes without copying, if possible (libtorch's
// computeStride): each chunk of dims that is contiguous in memory may be re-split freely.
std::optional<std::vector<int64_t>> view_strides(IntArrayRef sizes, IntArrayRef strides,
                                                 IntArrayRef new_sizes) {
  std::vector<int64_t> out(new_sizes.size(), 1);
  if (sizes.empty()) return out;  // a 0-dim tensor views as any all-ones shape
  int64_t numel = detail::prod_sizes(sizes);
  if (numel == 0) {
    if (sizes.equals(new_sizes)) return strides.vec();
    return detail::contiguous_strides(new_sizes);
  }
  int64_t view_d = static_cast<int64_t>(new_sizes.size()) - 1;
  int64_t chunk_base_stride = strides.empty() ? 1 : strides.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t d = static_cast<int64_t>(sizes.size()) - 1; d >= 0; --d) {
    tensor_numel *= sizes[d];
    if (d == 0 || (sizes[d - 1] != 1 && strides[d - 1] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || new_sizes[view_d] == 1)) {
        out[view_d] = view_numel * chunk_base_stride;
        view_numel *= new_sizes[view_d];
        --view_d;
      }
      if (view_numel != tensor_numel) return std::nullopt;
      if (d > 0) {
        chunk_base_stride = strides[d - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  if (view_d != -1) return std::nullopt;
  return out;
}

}  // namespace

Tensor Tensor::view(IntArrayRef sizes) const {
  auto shape = infer_size(sizes, numel(), "view");
  auto st = view_strides(this->sizes(), strides(), shape);
  KILN_CHECK(st.has_value(),
             "[view] view size {} is not compatible with input tensor's size {} and stride {} "
             "(at least one dimension spans across two contiguous subspaces); use .reshape(...) "
             "instead", shape_str(shape), shape_str(this->sizes()), shape_str(strides()));
  Tensor r = make_view(*this, shape, std::move(*st), storage_offset());
  return recorded_view(*this, std::move(r), OpKind::View,
                       [&] { return std::vector<IValue>{*this, shape}; });
}

Tensor Tensor::reshape(IntArrayRef sizes) const {
  auto shape = infer_size(sizes, numel(), "reshape");
  auto st = view_strides(this->sizes(), strides(), shape);
  if (st) {
    Tensor r = make_view(*this, shape, std::move(*st), storage_offset());
    return recorded_view(*this, std::move(r), OpKind::View,
                       [&] { return std::vector<IValue>{*this, shape}; });
  }
  return contiguous().view(shape);
}

Tensor Tensor::permute(IntArrayRef dims) const {
  int64_t n = dim();
  KILN_CHECK(static_cast<int64_t>(dims.size()) == n,
             "[permute] got dims {} for a tensor of {} dims, expected {} dims", shape_str(dims),
             n, n);
  std::vector<int64_t> s(n), st(n);
  std::vector<bool> seen(n, false);
  for (int64_t i = 0; i < n; ++i) {
    int64_t d = wrap_dim(dims[i], n, "permute");
    KILN_CHECK(!seen[d], "[permute] got dims {}, expected a permutation (dim {} repeats)",
               shape_str(dims), d);
    seen[d] = true;
    s[i] = size(d);
    st[i] = stride(d);
  }
  return recorded_view(*this, make_view(*this, std::move(s), std::move(st), storage_offset()),
                       OpKind::Permute,
                       [&] { return std::vector<IValue>{*this, dims.vec()}; });
}

Tensor Tensor::transpose(int64_t dim0, int64_t dim1) const {
  int64_t n = dim();
  if (n == 0) {
    wrap_dim(dim0, n, "transpose");
    wrap_dim(dim1, n, "transpose");
    return as_view_op(*this, make_view(*this, {}, {}, storage_offset()));
  }
  int64_t a = wrap_dim(dim0, n, "transpose"), b = wrap_dim(dim1, n, "transpose");
  std::vector<int64_t> s = sizes().vec(), st = strides().vec();
  std::swap(s[a], s[b]);
  std::swap(st[a], st[b]);
  std::vector<int64_t> perm(n);
  std::iota(perm.begin(), perm.end(), int64_t{0});
  std::swap(perm[a], perm[b]);
  return recorded_view(*this, make_view(*this, std::move(s), std::move(st), storage_offset()),
                       OpKind::Permute,
                       [&] { return std::vector<IValue>{*this, perm}; });
}

Tensor Tensor::t() const {
  KILN_CHECK(dim() <= 2, "[t] got a {}-d tensor of sizes {}, expected a tensor with <= 2 dims",
             dim(), shape_str(sizes()));
  if (dim() < 2)
    return as_view_op(*this, make_view(*this, sizes().vec(), strides().vec(), storage_offset()));
  return transpose(0, 1);
}

Tensor Tensor::squeeze() const {
  std::vector<int64_t> s, st;
  for (int64_t d = 0; d < dim(); ++d)
    if (size(d) != 1) {
      s.push_back(size(d));
      st.push_back(stride(d));
    }
  return as_view_op(*this, make_view(*this, std::move(s), std::move(st), storage_offset()));
}

Tensor Tensor::squeeze(int64_t d) const {
  int64_t w = wrap_dim(d, dim(), "squeeze");
  std::vector<int64_t> s = sizes().vec(), st = strides().vec();
  if (dim() > 0 && s[w] == 1) {
    s.erase(s.begin() + w);
    st.erase(st.begin() + w);
  }
  return as_view_op(*this, make_view(*this, std::move(s), std::move(st), storage_offset()));
}

Tensor Tensor::unsqueeze(int64_t d) const {
  int64_t w = wrap_dim(d, dim() + 1, "unsqueeze");
  std::vector<int64_t> s = sizes().vec(), st = strides().vec();
  int64_t new_stride = w < dim() ? s[w] * st[w] : 1;
  s.insert(s.begin() + w, 1);
  st.insert(st.begin() + w, new_stride);
  return as_view_op(*this, make_view(*this, std::move(s), std::move(st), storage_offset()));
}

Tensor Tensor::expand(IntArrayRef new_sizes) const {
  int64_t n = static_cast<int64_t>(new_sizes.size());
  KILN_CHECK(n >= dim(),
             "[expand] the number of sizes provided ({}) must be greater or equal to the number "
             "of dimensions in the tensor ({}); got sizes {} for a tensor of sizes {}",
             n, dim(), shape_str(new_sizes), shape_str(sizes()));
  std::vector<int64_t> s(n), st(n);
  for (int64_t i = n - 1; i >= 0; --i) {
    int64_t od = i - (n - dim());
    int64_t want = new_sizes[i];
    if (od < 0) {
      KILN_CHECK(want >= 0, "[expand] got size -1 for new leading dim {} in sizes {}, expected "
                 "an explicit size", i, shape_str(new_sizes));
      s[i] = want;
      st[i] = 0;
      continue;
    }
    int64_t have = size(od);
    if (want == -1) want = have;
    KILN_CHECK(have == want || have == 1,
               "[expand] the expanded size of the tensor ({}) must match the existing size ({}) "
               "at non-singleton dimension {}; target sizes {}, tensor sizes {}",
               want, have, i, shape_str(new_sizes), shape_str(sizes()));
    s[i] = want;
    st[i] = have == want ? stride(od) : 0;
  }
  std::vector<int64_t> target = s;
  return recorded_view(*this, make_view(*this, std::move(s), std::move(st), storage_offset()),
                       OpKind::Expand,
                       [&] { return std::vector<IValue>{*this, target}; });
}

Tensor Tensor::narrow(int64_t d, int64_t start, int64_t length) const {
  KILN_CHECK(dim() > 0, "[narrow] cannot be applied to a 0-dim tensor");
  int64_t w = wrap_dim(d, dim(), "narrow");
  int64_t n = size(w);
  KILN_CHECK(start >= -n && start <= n, "[narrow] start {} is out of range for dim {} of size {}",
             start, w, n);
  if (start < 0) start += n;
  KILN_CHECK(length >= 0 && start + length <= n,
             "[narrow] start ({}) + length ({}) exceeds dimension size ({}) of dim {}", start,
             length, n, w);
  return slice(w, start, start + length, 1);
}

Tensor Tensor::select(int64_t d, int64_t index) const {
  KILN_CHECK(dim() > 0, "[select] cannot be applied to a 0-dim tensor");
  int64_t w = wrap_dim(d, dim(), "select");
  int64_t n = size(w);
  KILN_CHECK(index >= -n && index < n,
             "[select] index {} is out of bounds for dimension {} with size {}", index, w, n);
  if (index < 0) index += n;
  std::vector<int64_t> s = sizes().vec(), st = strides().vec();
  int64_t offset = storage_offset() + index * st[w];
  s.erase(s.begin() + w);
  st.erase(st.begin() + w);
  return recorded_view(*this, make_view(*this, std::move(s), std::move(st), offset),
                       OpKind::Select,
                       [&] { return std::vector<IValue>{*this, w, index}; });
}

Tensor Tensor::slice(int64_t d, std::optional<int64_t> start, std::optional<int64_t> end,
                     int64_t step) const {
  KILN_CHECK(dim() > 0, "[slice] cannot be applied to a 0-dim tensor");
  int64_t w = wrap_dim(d, dim(), "slice");
  KILN_CHECK(step > 0, "[slice] got step {}, expected a positive step", step);
  int64_t n = size(w);
  int64_t lo = start.value_or(0), hi = end.value_or(n);
  if (lo < 0) lo += n;
  if (hi < 0) hi += n;
  lo = std::clamp<int64_t>(lo, 0, n);
  hi = std::clamp<int64_t>(hi, lo, n);
  std::vector<int64_t> s = sizes().vec(), st = strides().vec();
  int64_t offset = storage_offset() + lo * st[w];
  s[w] = (hi - lo + step - 1) / step;
  st[w] *= step;
  return recorded_view(*this, make_view(*this, std::move(s), std::move(st), offset),
                       OpKind::Slice,
                       [&] { return std::vector<IValue>{*this, w, lo, hi, step}; });
}

Tensor Tensor::flatten(int64_t start_dim, int64_t end_dim) const {
  if (dim() == 0) return reshape({1});
  int64_t a = wrap_dim(start_dim, dim(), "flatten"), b = wrap_dim(end_dim, dim(), "flatten");
  KILN_CHECK(a <= b, "[flatten] start_dim {} comes after end_dim {}", a, b);
  if (a == b) return *this;
  std::vector<int64_t> s(sizes().begin(), sizes().begin() + a);
  int64_t m = 1;
  for (int64_t d = a; d <= b; ++d) m *= size(d);
  s.push_back(m);
  s.insert(s.end(), sizes().begin() + b + 1, sizes().end());
  return reshape(s);
}

Tensor Tensor::unfold(int64_t d, int64_t sz, int64_t step) const {
  int64_t w = wrap_dim(d, dim(), "unfold");
  int64_t n = dim() == 0 ? 1 : size(w);
  KILN_CHECK(sz >= 0 && sz <= n, "[unfold] got size {}, expected 0 <= size <= {} (size of dim {})",
             sz, n, w);
  KILN_CHECK(step > 0, "[unfold] got step {}, expected a positive step", step);
  std::vector<int64_t> s = sizes().vec(), st = strides().vec();
  if (dim() == 0)
    return recorded_view(*this, make_view(*this, {sz}, {1}, storage_offset()),
                         OpKind::UnfoldView,
                         [&] { return std::vector<IValue>{*this, int64_t{0}, sz, step}; });
  int64_t base_stride = st[w];
  s[w] = (n - sz) / step + 1;
  st[w] = base_stride * step;
  s.push_back(sz);
  st.push_back(base_stride);
  return recorded_view(*this, make_view(*this, std::move(s), std::move(st), storage_offset()),
                       OpKind::UnfoldView,
                       [&] { return std::vector<IValue>{*this, w, sz, step}; });
}

Tensor Tensor::as_strided(IntArrayRef sizes, IntArrayRef strides,
                          std::optional<int64_t> storage_offset) const {
  KILN_CHECK(sizes.size() == strides.size(),
             "[as_strided] got sizes {} and strides {}, expected the same number of dims",
             shape_str(sizes), shape_str(strides));
  int64_t offset = storage_offset.value_or(this->storage_offset());
  KILN_CHECK(offset >= 0, "[as_strided] got storage offset {}, expected >= 0", offset);
  int64_t max_index = offset;
  bool empty = false;
  for (size_t i = 0; i < sizes.size(); ++i) {
    KILN_CHECK(sizes[i] >= 0 && strides[i] >= 0,
               "[as_strided] got sizes {} and strides {}, expected non-negative values",
               shape_str(sizes), shape_str(strides));
    if (sizes[i] == 0) empty = true;
    else max_index += (sizes[i] - 1) * strides[i];
  }
  int64_t capacity =
      static_cast<int64_t>(impl()->storage()->nbytes() / kiln::element_size(this->dtype()));
  KILN_CHECK(empty || max_index < capacity,
             "[as_strided] sizes {}, strides {} and offset {} reach element {}, but the storage "
             "holds only {} elements", shape_str(sizes), shape_str(strides), offset, max_index,
             capacity);
  return recorded_view(*this, make_view(*this, sizes.vec(), strides.vec(), offset),
                       OpKind::AsStrided,
                       [&] { return std::vector<IValue>{*this, sizes.vec(), strides.vec(), offset}; });
}

std::vector<int64_t> infer_broadcast_size(IntArrayRef a, IntArrayRef b, const char* op) {
  size_t n = std::max(a.size(), b.size());
  std::vector<int64_t> out(n);
  for (size_t i = 0; i < n; ++i) {
    int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    KILN_CHECK(da == db || da == 1 || db == 1,
               "[{}] shapes {} and {} are not broadcastable: size {} vs {} at dim {}", op,
               shape_str(a), shape_str(b), da, db, i);
    out[i] = da == 1 ? db : da;
  }
  return out;
}

std::vector<Tensor> broadcast_tensors(const std::vector<Tensor>& tensors) {
  std::vector<int64_t> shape;
  for (const Tensor& t : tensors) shape = infer_broadcast_size(shape, t.sizes(), "broadcast_tensors");
  std::vector<Tensor> out;
  for (const Tensor& t : tensors) out.push_back(t.expand(shape));
  return out;
}

Tensor reshape(const Tensor& self, IntArrayRef sizes) { return self.reshape(sizes); }
Tensor flatten(const Tensor& self, int64_t start_dim, int64_t end_dim) {
  return self.flatten(start_dim, end_dim);
}
Tensor permute(const Tensor& self, IntArrayRef dims) { return self.permute(dims); }
Tensor transpose(const Tensor& self, int64_t dim0, int64_t dim1) {
  return self.transpose(dim0, dim1);
}
Tensor squeeze(const Tensor& self) { return self.squeeze(); }
Tensor squeeze(const Tensor& self, int64_t dim) { return self.squeeze(dim); }
Tensor unsqueeze(const Tensor& self, int64_t dim) { return self.unsqueeze(dim); }
Tensor narrow(const Tensor& self, int64_t dim, int64_t start, int64_t length) {
  return self.narrow(dim, start, length);
}
Tensor select(const Tensor& self, int64_t dim, int64_t index) { return self.select(dim, index); }

}  // namespace kiln
