// TensorImpl bookkeeping (numel, contiguity) and the small shared helpers of the eager kernels.
#include "kiln/tensor_impl.h"

#include <algorithm>

#include "kiln/core/error.h"
#include "tensor/internal.h"

namespace kiln {

TensorImpl::TensorImpl(Storage storage, ScalarType dtype, std::vector<int64_t> sizes,
                       std::vector<int64_t> strides, int64_t storage_offset)
    : storage_(std::move(storage)),
      sizes_(std::move(sizes)),
      strides_(std::move(strides)),
      storage_offset_(storage_offset),
      dtype_(dtype) {
  refresh();
}

void TensorImpl::set_sizes_and_strides(std::vector<int64_t> sizes, std::vector<int64_t> strides,
                                       int64_t storage_offset) {
  sizes_ = std::move(sizes);
  strides_ = std::move(strides);
  storage_offset_ = storage_offset;
  refresh();
}

void TensorImpl::set_data_from(const TensorImpl& src) {
  storage_ = src.storage_;
  dtype_ = src.dtype_;
  sizes_ = src.sizes_;
  strides_ = src.strides_;
  storage_offset_ = src.storage_offset_;
  refresh();
}

void TensorImpl::refresh() {
  KILN_ASSERT(sizes_.size() == strides_.size(), "sizes {} vs strides {}", sizes_.size(),
              strides_.size());
  numel_ = 1;
  bool overflow = false;
  for (int64_t s : sizes_) overflow |= __builtin_mul_overflow(numel_, s, &numel_);
  KILN_CHECK(!overflow, "[Tensor] got sizes {}, whose number of elements overflows int64",
             shape_str(sizes_));
  is_contiguous_ = true;
  if (numel_ == 0) return;
  int64_t expected = 1;
  for (int64_t d = dim() - 1; d >= 0; --d) {
    if (sizes_[d] == 1) continue;
    if (strides_[d] != expected) {
      is_contiguous_ = false;
      return;
    }
    expected *= sizes_[d];
  }
}

namespace detail {

int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op) {
  int64_t n = std::max<int64_t>(ndim, 1);
  KILN_CHECK(dim >= -n && dim < n,
             "[{}] dimension out of range: got dim {}, expected a dim in [{}, {}] for a {}-d tensor",
             op, dim, -n, n - 1, ndim);
  return dim < 0 ? dim + n : dim;
}

std::vector<int64_t> wrap_dims(IntArrayRef dims, int64_t ndim, const char* op) {
  std::vector<int64_t> out;
  if (dims.empty()) {
    for (int64_t d = 0; d < ndim; ++d) out.push_back(d);
    return out;
  }
  for (int64_t d : dims) {
    int64_t w = wrap_dim(d, ndim, op);
    KILN_CHECK(std::find(out.begin(), out.end(), w) == out.end(),
               "[{}] dim {} appears multiple times in the list of dims {}", op, w, shape_str(dims));
    out.push_back(w);
  }
  if (ndim == 0) out.clear();
  return out;
}

std::vector<int64_t> contiguous_strides(IntArrayRef sizes) {
  std::vector<int64_t> s(sizes.size());
  int64_t acc = 1;
  for (int64_t d = static_cast<int64_t>(sizes.size()) - 1; d >= 0; --d) {
    s[d] = acc;
    acc *= std::max<int64_t>(sizes[d], 1);
  }
  return s;
}

int64_t prod_sizes(IntArrayRef sizes) {
  int64_t p = 1;
  for (int64_t s : sizes) p *= s;
  return p;
}

void check_defined(const Tensor& t, const char* op, const char* arg) {
  KILN_CHECK(t.defined(), "[{}] got an undefined tensor for argument '{}', expected a tensor", op,
             arg);
}

void check_cpu(const Tensor& t, const char* op, const char* arg) {
  check_defined(t, op, arg);
  KILN_CHECK(t.device().is_cpu(),
             "[{}] got a tensor on {} for argument '{}', expected a CPU tensor (the CUDA backend "
             "does not implement this op)", op, t.device().str(), arg);
}

void check_floating(const Tensor& t, const char* op) {
  KILN_CHECK(is_floating_point(t.dtype()),
             "[{}] got dtype {}, expected a floating-point dtype (float16, bfloat16, float32, "
             "float64)", op, dtype_name(t.dtype()));
}

int64_t checked_nbytes(IntArrayRef sizes, ScalarType dtype, const char* op) {
  int64_t n = 1;
  bool overflow = false;
  for (int64_t s : sizes) {
    KILN_CHECK(s >= 0, "[{}] got sizes {}, expected non-negative sizes", op, shape_str(sizes));
    overflow |= __builtin_mul_overflow(n, s, &n);
  }
  int64_t bytes = 0;
  overflow |= __builtin_mul_overflow(n, static_cast<int64_t>(element_size(dtype)), &bytes);
  KILN_CHECK(!overflow,
             "[{}] got sizes {} of dtype {}, whose byte size overflows a 64-bit integer", op,
             shape_str(sizes), dtype_name(dtype));
  return bytes;
}

Tensor make_empty(IntArrayRef sizes, ScalarType dtype, Device device) {
  int64_t nbytes = checked_nbytes(sizes, dtype, "empty");
  auto storage = std::make_shared<StorageImpl>(static_cast<size_t>(nbytes), device);
  return Tensor(std::make_shared<TensorImpl>(std::move(storage), dtype, sizes.vec(),
                                             contiguous_strides(sizes), 0));
}

}  // namespace detail
}  // namespace kiln
