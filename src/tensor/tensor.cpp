// Tensor member functions: metadata, element access, conversions, and the methods that forward to
// the free functions of functions.h (one implementation per op, two spellings).
#include "kiln/tensor.h"

#include "kiln/functions.h"
#include "tensor/internal.h"
#include "tensor/record.h"

namespace kiln {

void copy_kernel(const Tensor& dst, const Tensor& src);  // elementwise.cpp

void Tensor::throw_undefined() {
  KILN_FAIL("[Tensor] got an undefined tensor (default-constructed), expected a defined tensor");
}

int64_t Tensor::size(int64_t d) const {
  KILN_CHECK(dim() > 0, "[size] dimension specified as {} but tensor has no dimensions", d);
  return sizes()[detail::wrap_dim(d, dim(), "size")];
}
int64_t Tensor::stride(int64_t d) const {
  KILN_CHECK(dim() > 0, "[stride] dimension specified as {} but tensor has no dimensions", d);
  return strides()[detail::wrap_dim(d, dim(), "stride")];
}

std::string Tensor::toString() const {
  return fmt::format("{}{}Type", device().is_cpu() ? "CPU" : "CUDA", dtype_type_name(dtype()));
}

Tensor& Tensor::set_requires_grad(bool r) {
  KILN_CHECK(!r || is_floating_point(),
             "[requires_grad] only tensors of floating point dtype can require gradients, got {}",
             dtype_name(dtype()));
  checked()->set_requires_grad(r);
  return *this;
}

template <typename T>
T Tensor::item() const {
  return item().to<T>();
}

Scalar Tensor::item() const {
  KILN_CHECK(numel() == 1, "[item] a Tensor with {} elements cannot be converted to Scalar "
             "(sizes {}), expected exactly one element", numel(), shape_str(sizes()));
  detail::check_cpu(*this, "item", "self");
  detail::note_value_read(*this, "Tensor::item()");
  return KILN_DISPATCH_ALL_TYPES(dtype(), "item", [&]() -> Scalar {
    return Scalar(*static_cast<const scalar_t*>(data_ptr()));
  });
}

template <typename T>
T* Tensor::data_ptr() const {
  KILN_CHECK(dtype() == scalar_type_of<T>,
             "[data_ptr] expected scalar type {} but found {}", dtype_name(scalar_type_of<T>),
             dtype_name(dtype()));
  return static_cast<T*>(checked()->data());
}

#define KILN_INSTANTIATE_ACCESS(T, name, short_name) \
  template T Tensor::item<T>() const;                \
  template T* Tensor::data_ptr<T>() const;
KILN_FORALL_SCALAR_TYPES(KILN_INSTANTIATE_ACCESS)
#undef KILN_INSTANTIATE_ACCESS

// ---- conversion and copies -------------------------------------------------------------------
Tensor Tensor::to(const TensorOptions& options, bool non_blocking, bool copy) const {
  ScalarType dt = options.has_dtype() ? options.dtype() : dtype();
  Device dev = options.has_device() ? options.device() : device();
  KILN_CHECK(dev.is_cpu(), "[to] got target device {}, expected cpu: this build of Kiln has no "
             "kernels for {}", dev.str(), dev.str());
  if (dt == dtype() && dev.type() == device().type() && !copy) return *this;
  if (detail::should_record(*this)) [[unlikely]] {
    if (dt == dtype()) return detail::record1(ops::OpKind::Copy, {*this});
    return detail::record1(ops::OpKind::Cast, {*this, dt});
  }
  Tensor out = detail::make_empty(sizes(), dt, dev);
  copy_kernel(out, *this);
  return out;
}
Tensor Tensor::to(ScalarType dt, bool non_blocking, bool copy) const {
  return to(TensorOptions(dt), non_blocking, copy);
}
Tensor Tensor::to(Device dev, bool non_blocking, bool copy) const {
  return to(TensorOptions(dev), non_blocking, copy);
}
Tensor Tensor::to(Device dev, ScalarType dt, bool non_blocking, bool copy) const {
  return to(TensorOptions(dt).device(dev), non_blocking, copy);
}

Tensor Tensor::clone() const { return to(TensorOptions(), false, true); }

Tensor Tensor::contiguous() const { return is_contiguous() ? *this : clone(); }

// ---- forwarding to free functions ---------------------------------------------------------
Tensor Tensor::sum(std::optional<ScalarType> dt) const { return kiln::sum(*this, dt); }
Tensor Tensor::sum(IntArrayRef d, bool k, std::optional<ScalarType> dt) const {
  return kiln::sum(*this, d, k, dt);
}
Tensor Tensor::mean(std::optional<ScalarType> dt) const { return kiln::mean(*this, dt); }
Tensor Tensor::mean(IntArrayRef d, bool k, std::optional<ScalarType> dt) const {
  return kiln::mean(*this, d, k, dt);
}
Tensor Tensor::prod(std::optional<ScalarType> dt) const { return kiln::prod(*this, dt); }
Tensor Tensor::prod(int64_t d, bool k, std::optional<ScalarType> dt) const {
  return kiln::prod(*this, d, k, dt);
}
Tensor Tensor::max() const { return kiln::max(*this); }
std::tuple<Tensor, Tensor> Tensor::max(int64_t d, bool k) const { return kiln::max(*this, d, k); }
Tensor Tensor::min() const { return kiln::min(*this); }
std::tuple<Tensor, Tensor> Tensor::min(int64_t d, bool k) const { return kiln::min(*this, d, k); }
Tensor Tensor::amax(IntArrayRef d, bool k) const { return kiln::amax(*this, d, k); }
Tensor Tensor::amin(IntArrayRef d, bool k) const { return kiln::amin(*this, d, k); }
Tensor Tensor::argmax(std::optional<int64_t> d, bool k) const { return kiln::argmax(*this, d, k); }
Tensor Tensor::argmin(std::optional<int64_t> d, bool k) const { return kiln::argmin(*this, d, k); }
Tensor Tensor::var(IntArrayRef d, bool u, bool k) const { return kiln::var(*this, d, u, k); }
Tensor Tensor::std(IntArrayRef d, bool u, bool k) const { return kiln::std(*this, d, u, k); }
Tensor Tensor::norm(const Scalar& p) const { return kiln::norm(*this, p); }
Tensor Tensor::norm(const Scalar& p, IntArrayRef d, bool k) const {
  return kiln::norm(*this, p, d, k);
}
Tensor Tensor::logsumexp(IntArrayRef d, bool k) const { return kiln::logsumexp(*this, d, k); }
Tensor Tensor::all() const { return kiln::all(*this); }
Tensor Tensor::all(int64_t d, bool k) const { return kiln::all(*this, d, k); }
Tensor Tensor::any() const { return kiln::any(*this); }
Tensor Tensor::any(int64_t d, bool k) const { return kiln::any(*this, d, k); }
Tensor Tensor::cumsum(int64_t d, std::optional<ScalarType> dt) const {
  return kiln::cumsum(*this, d, dt);
}
Tensor Tensor::softmax(int64_t d, std::optional<ScalarType> dt) const {
  return kiln::softmax(*this, d, dt);
}
Tensor Tensor::log_softmax(int64_t d, std::optional<ScalarType> dt) const {
  return kiln::log_softmax(*this, d, dt);
}
Tensor Tensor::matmul(const Tensor& o) const { return kiln::matmul(*this, o); }
Tensor Tensor::mm(const Tensor& o) const { return kiln::mm(*this, o); }
Tensor Tensor::bmm(const Tensor& o) const { return kiln::bmm(*this, o); }
Tensor Tensor::index_select(int64_t d, const Tensor& i) const {
  return kiln::index_select(*this, d, i);
}
Tensor Tensor::gather(int64_t d, const Tensor& i) const { return kiln::gather(*this, d, i); }
Tensor Tensor::scatter(int64_t d, const Tensor& i, const Tensor& s) const {
  return kiln::scatter(*this, d, i, s);
}
Tensor Tensor::scatter(int64_t d, const Tensor& i, const Scalar& v) const {
  return kiln::scatter(*this, d, i, v);
}
Tensor Tensor::scatter_add(int64_t d, const Tensor& i, const Tensor& s) const {
  return kiln::scatter_add(*this, d, i, s);
}
std::tuple<Tensor, Tensor> Tensor::topk(int64_t k, int64_t d, bool largest, bool sorted) const {
  return kiln::topk(*this, k, d, largest, sorted);
}
std::tuple<Tensor, Tensor> Tensor::sort(int64_t d, bool descending) const {
  return kiln::sort(*this, d, descending);
}
Tensor Tensor::masked_fill(const Tensor& mask, const Scalar& value) const {
  return kiln::masked_fill(*this, mask, value);
}
Tensor& Tensor::masked_fill_(const Tensor& mask, const Scalar& value) {
  return kiln::masked_fill_(*this, mask, value);
}
std::vector<Tensor> Tensor::split(int64_t s, int64_t d) const { return kiln::split(*this, s, d); }
std::vector<Tensor> Tensor::split(IntArrayRef s, int64_t d) const {
  return kiln::split(*this, s, d);
}
std::vector<Tensor> Tensor::chunk(int64_t c, int64_t d) const { return kiln::chunk(*this, c, d); }

}  // namespace kiln
