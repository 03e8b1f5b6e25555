// kiln::Tensor: the user-facing handle (refcounted, cheap to copy) with libtorch's method names.
// Methods forward to the free functions in kiln/functions.h; views share storage with their base.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include "kiln/core/error.h"
#include "kiln/core/scalar.h"
#include "kiln/ops/op_kind.h"
#include "kiln/tensor_impl.h"
#include "kiln/tensor_options.h"

namespace kiln {

template <typename T, size_t N>
class TensorAccessor;

namespace indexing {
class TensorIndex;
}
namespace autograd {
class Node;
}

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  bool defined() const { return impl_ != nullptr; }
  TensorImpl* unsafeGetTensorImpl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl() const { return impl_; }
  /// True when both handles refer to the same TensorImpl.
  bool is_same(const Tensor& o) const { return impl_ == o.impl_; }

  // ---- metadata ------------------------------------------------------------------------
  IntArrayRef sizes() const { return checked()->sizes(); }
  IntArrayRef strides() const { return checked()->strides(); }
  int64_t size(int64_t dim) const;
  int64_t stride(int64_t dim) const;
  int64_t dim() const { return checked()->dim(); }
  int64_t ndimension() const { return dim(); }
  int64_t numel() const { return checked()->numel(); }
  ScalarType dtype() const { return checked()->dtype(); }
  ScalarType scalar_type() const { return dtype(); }
  Device device() const { return checked()->device(); }
  bool is_cpu() const { return device().is_cpu(); }
  bool is_cuda() const { return device().is_cuda(); }
  bool is_contiguous() const { return checked()->is_contiguous(); }
  bool is_floating_point() const { return kiln::is_floating_point(dtype()); }
  int64_t element_size() const { return static_cast<int64_t>(kiln::element_size(dtype())); }
  int64_t nbytes() const { return numel() * element_size(); }
  int64_t storage_offset() const { return checked()->storage_offset(); }
  TensorOptions options() const { return TensorOptions(dtype()).device(device()); }
  std::string toString() const;  // "CPUFloatType"

  bool requires_grad() const { return checked()->requires_grad(); }
  /// Sets requires_grad without autograd's leaf checks (factories use it; prefer requires_grad_).
  Tensor& set_requires_grad(bool r);

  // ---- autograd (src/autograd) -----------------------------------------------------------
  /// Makes a leaf tensor record operations for gradients (only floating-point leaves).
  Tensor& requires_grad_(bool requires_grad = true);
  /// The accumulated gradient (undefined until a backward pass reaches this tensor).
  const Tensor& grad() const;
  Tensor& mutable_grad();
  /// Backpropagates from this tensor (a scalar may omit gradient).
  void backward(const Tensor& gradient = {}, std::optional<bool> retain_graph = std::nullopt,
                bool create_graph = false) const;
  /// A tensor sharing storage with this one but outside the graph (requires_grad false).
  Tensor detach() const;
  Tensor& detach_();
  /// Makes this tensor (and every handle to it) use new_data's memory, dtype and sizes, keeping
  /// its identity, requires_grad and .grad() (libtorch's set_data; Module::to uses it).
  void set_data(const Tensor& new_data) const;
  /// Like detach(): the same data without history (libtorch's tensor.data()).
  Tensor data() const { return detach(); }
  /// True for tensors not produced by a recorded op (users' tensors, parameters).
  bool is_leaf() const;
  /// The node that produced this tensor (null for leaves).
  std::shared_ptr<autograd::Node> grad_fn() const;
  /// Makes a non-leaf tensor keep its .grad() in backward.
  void retain_grad() const;
  bool retains_grad() const;
  /// Calls hook with this tensor's gradient during backward; a hook returning a Tensor replaces
  /// the gradient. Returns a handle for remove_hook.
  template <typename F>
  unsigned register_hook(F&& hook) const;
  void remove_hook(unsigned handle) const;
  /// In-place writes to this tensor's memory so far (shared with its views).
  uint32_t _version() const { return checked()->version(); }
  /// Which output of grad_fn this tensor is.
  uint32_t output_nr() const;

  // ---- element access ------------------------------------------------------------------
  /// The single element of a one-element tensor, converted to T.
  template <typename T>
  T item() const;
  Scalar item() const;
  /// Typed pointer to element 0; T must match the dtype exactly.
  template <typename T>
  T* data_ptr() const;
  void* data_ptr() const { return checked()->data(); }
  template <typename T, size_t N>
  TensorAccessor<T, N> accessor() const&;
  template <typename T, size_t N>
  TensorAccessor<T, N> accessor() && = delete;

  // ---- conversion and copies -----------------------------------------------------------
  Tensor to(ScalarType dtype, bool non_blocking = false, bool copy = false) const;
  Tensor to(Device device, bool non_blocking = false, bool copy = false) const;
  Tensor to(Device device, ScalarType dtype, bool non_blocking = false, bool copy = false) const;
  Tensor to(const TensorOptions& options, bool non_blocking = false, bool copy = false) const;
  Tensor to(const Tensor& other) const { return to(other.device(), other.dtype()); }
  Tensor cpu() const { return to(Device(kCPU)); }
  Tensor clone() const;
  Tensor contiguous() const;
  /// Copies src (broadcast to this shape, converted to this dtype) into this tensor's memory.
  Tensor& copy_(const Tensor& src, bool non_blocking = false);
  Tensor& fill_(const Scalar& value);
  Tensor& zero_();

  // ---- views (share storage) -----------------------------------------------------------
  Tensor view(IntArrayRef sizes) const;
  Tensor view_as(const Tensor& other) const { return view(other.sizes()); }
  Tensor reshape(IntArrayRef sizes) const;
  Tensor reshape_as(const Tensor& other) const { return reshape(other.sizes()); }
  Tensor permute(IntArrayRef dims) const;
  Tensor transpose(int64_t dim0, int64_t dim1) const;
  Tensor t() const;
  Tensor squeeze() const;
  Tensor squeeze(int64_t dim) const;
  Tensor unsqueeze(int64_t dim) const;
  Tensor expand(IntArrayRef sizes) const;
  Tensor expand_as(const Tensor& other) const { return expand(other.sizes()); }
  Tensor narrow(int64_t dim, int64_t start, int64_t length) const;
  Tensor select(int64_t dim, int64_t index) const;
  Tensor slice(int64_t dim = 0, std::optional<int64_t> start = std::nullopt,
               std::optional<int64_t> end = std::nullopt, int64_t step = 1) const;
  Tensor flatten(int64_t start_dim = 0, int64_t end_dim = -1) const;
  /// Sliding windows of `size` with `step` along dim, as a new last dimension (a view).
  Tensor unfold(int64_t dim, int64_t size, int64_t step) const;
  Tensor as_strided(IntArrayRef sizes, IntArrayRef strides,
                    std::optional<int64_t> storage_offset = std::nullopt) const;
  /// x.index({Slice(1, None), 0, "..."}) (see kiln/indexing.h).
  Tensor index(ArrayRef<indexing::TensorIndex> indices) const;
  Tensor index(std::initializer_list<indexing::TensorIndex> indices) const;
  Tensor& index_put_(std::initializer_list<indexing::TensorIndex> indices, const Tensor& value);
  Tensor& index_put_(std::initializer_list<indexing::TensorIndex> indices, const Scalar& value);
  std::vector<Tensor> split(int64_t split_size, int64_t dim = 0) const;
  std::vector<Tensor> split(IntArrayRef split_sizes, int64_t dim = 0) const;
  std::vector<Tensor> chunk(int64_t chunks, int64_t dim = 0) const;

  // ---- elementwise math (generated from ops.def) ---------------------------------------
#define KILN_UNARY_OP(Name, fn, r, t) \
  Tensor fn() const;                  \
  Tensor& fn##_();
#define KILN_BINARY_OP(Name, fn, r, t)  \
  Tensor fn(const Tensor& other) const; \
  Tensor fn(const Scalar& other) const; \
  Tensor& fn##_(const Tensor& other);   \
  Tensor& fn##_(const Scalar& other);
#include "kiln/ops/ops.def"
  Tensor add(const Tensor& other, const Scalar& alpha) const;
  Tensor sub(const Tensor& other, const Scalar& alpha) const;
  Tensor& add_(const Tensor& other, const Scalar& alpha);
  Tensor& sub_(const Tensor& other, const Scalar& alpha);
  Tensor clamp(const std::optional<Scalar>& min, const std::optional<Scalar>& max = std::nullopt) const;
  Tensor& clamp_(const std::optional<Scalar>& min, const std::optional<Scalar>& max = std::nullopt);
  Tensor clamp_min(const Scalar& min) const { return clamp(min, std::nullopt); }
  Tensor clamp_max(const Scalar& max) const { return clamp(std::nullopt, max); }
  Tensor square() const { return mul(*this); }
  Tensor where(const Tensor& condition, const Tensor& other) const;
  Tensor masked_fill(const Tensor& mask, const Scalar& value) const;
  Tensor& masked_fill_(const Tensor& mask, const Scalar& value);

  // ---- reductions ----------------------------------------------------------------------
  Tensor sum(std::optional<ScalarType> dtype = std::nullopt) const;
  Tensor sum(IntArrayRef dim, bool keepdim = false, std::optional<ScalarType> dtype = std::nullopt) const;
  Tensor mean(std::optional<ScalarType> dtype = std::nullopt) const;
  Tensor mean(IntArrayRef dim, bool keepdim = false, std::optional<ScalarType> dtype = std::nullopt) const;
  Tensor prod(std::optional<ScalarType> dtype = std::nullopt) const;
  Tensor prod(int64_t dim, bool keepdim = false, std::optional<ScalarType> dtype = std::nullopt) const;
  Tensor max() const;
  std::tuple<Tensor, Tensor> max(int64_t dim, bool keepdim = false) const;
  Tensor min() const;
  std::tuple<Tensor, Tensor> min(int64_t dim, bool keepdim = false) const;
  Tensor amax(IntArrayRef dim = {}, bool keepdim = false) const;
  Tensor amin(IntArrayRef dim = {}, bool keepdim = false) const;
  Tensor argmax(std::optional<int64_t> dim = std::nullopt, bool keepdim = false) const;
  Tensor argmin(std::optional<int64_t> dim = std::nullopt, bool keepdim = false) const;
  Tensor var(IntArrayRef dim, bool unbiased = true, bool keepdim = false) const;
  Tensor std(IntArrayRef dim, bool unbiased = true, bool keepdim = false) const;
  /// Over all elements (templates so that x.var({0}) picks the dim overload).
  Tensor var() const { return var(IntArrayRef{}, true, false); }
  Tensor std() const { return std(IntArrayRef{}, true, false); }
  template <typename B, std::enable_if_t<std::is_same_v<B, bool>, int> = 0>
  Tensor var(B unbiased) const {
    return var(IntArrayRef{}, unbiased, false);
  }
  template <typename B, std::enable_if_t<std::is_same_v<B, bool>, int> = 0>
  Tensor std(B unbiased) const {
    return std(IntArrayRef{}, unbiased, false);
  }
  Tensor norm(const Scalar& p = 2) const;
  Tensor norm(const Scalar& p, IntArrayRef dim, bool keepdim = false) const;
  Tensor logsumexp(IntArrayRef dim, bool keepdim = false) const;
  Tensor all() const;
  Tensor all(int64_t dim, bool keepdim = false) const;
  Tensor any() const;
  Tensor any(int64_t dim, bool keepdim = false) const;
  Tensor cumsum(int64_t dim, std::optional<ScalarType> dtype = std::nullopt) const;
  Tensor softmax(int64_t dim, std::optional<ScalarType> dtype = std::nullopt) const;
  Tensor log_softmax(int64_t dim, std::optional<ScalarType> dtype = std::nullopt) const;

  // ---- linear algebra, indexing, sorting -----------------------------------------------
  Tensor matmul(const Tensor& other) const;
  Tensor mm(const Tensor& other) const;
  Tensor bmm(const Tensor& other) const;
  Tensor index_select(int64_t dim, const Tensor& index) const;
  Tensor gather(int64_t dim, const Tensor& index) const;
  Tensor scatter(int64_t dim, const Tensor& index, const Tensor& src) const;
  Tensor scatter(int64_t dim, const Tensor& index, const Scalar& value) const;
  Tensor& scatter_(int64_t dim, const Tensor& index, const Tensor& src);
  Tensor& scatter_(int64_t dim, const Tensor& index, const Scalar& value);
  Tensor scatter_add(int64_t dim, const Tensor& index, const Tensor& src) const;
  Tensor& scatter_add_(int64_t dim, const Tensor& index, const Tensor& src);
  std::tuple<Tensor, Tensor> topk(int64_t k, int64_t dim = -1, bool largest = true, bool sorted = true) const;
  std::tuple<Tensor, Tensor> sort(int64_t dim = -1, bool descending = false) const;

  // ---- operators -----------------------------------------------------------------------
  Tensor operator-() const { return neg(); }
  Tensor operator!() const { return logical_not(); }
  Tensor& operator+=(const Tensor& o) { return add_(o); }
  Tensor& operator+=(const Scalar& o) { return add_(o); }
  Tensor& operator-=(const Tensor& o) { return sub_(o); }
  Tensor& operator-=(const Scalar& o) { return sub_(o); }
  Tensor& operator*=(const Tensor& o) { return mul_(o); }
  Tensor& operator*=(const Scalar& o) { return mul_(o); }
  Tensor& operator/=(const Tensor& o) { return div_(o); }
  Tensor& operator/=(const Scalar& o) { return div_(o); }
  Tensor operator[](int64_t index) const { return select(0, index); }

 private:
  TensorImpl* checked() const {
    if (!impl_) [[unlikely]] throw_undefined();
    return impl_.get();
  }
  [[noreturn]] static void throw_undefined();

  std::shared_ptr<TensorImpl> impl_;
};

namespace detail {
unsigned register_tensor_hook(const Tensor& t, std::function<Tensor(const Tensor&)> hook);
}
template <typename F>
unsigned Tensor::register_hook(F&& hook) const {
  if constexpr (std::is_void_v<std::invoke_result_t<F, const Tensor&>>) {
    return detail::register_tensor_hook(*this, [h = std::forward<F>(hook)](const Tensor& g) {
      h(g);
      return Tensor();
    });
  } else {
    return detail::register_tensor_hook(*this, std::forward<F>(hook));
  }
}

// Binary operators between tensors and scalars (libtorch returns tensors for comparisons too).
#define KILN_TENSOR_BINOP(op, fn)                                                   \
  inline Tensor operator op(const Tensor& a, const Tensor& b) { return a.fn(b); }   \
  inline Tensor operator op(const Tensor& a, const Scalar& b) { return a.fn(b); }
KILN_TENSOR_BINOP(+, add)
KILN_TENSOR_BINOP(-, sub)
KILN_TENSOR_BINOP(*, mul)
KILN_TENSOR_BINOP(/, div)
KILN_TENSOR_BINOP(%, remainder)
KILN_TENSOR_BINOP(==, eq)
KILN_TENSOR_BINOP(!=, ne)
KILN_TENSOR_BINOP(<, lt)
KILN_TENSOR_BINOP(<=, le)
KILN_TENSOR_BINOP(>, gt)
KILN_TENSOR_BINOP(>=, ge)
KILN_TENSOR_BINOP(&, logical_and)
KILN_TENSOR_BINOP(|, logical_or)
KILN_TENSOR_BINOP(^, logical_xor)
#undef KILN_TENSOR_BINOP
// scalar on the left
Tensor operator+(const Scalar& a, const Tensor& b);
Tensor operator-(const Scalar& a, const Tensor& b);
Tensor operator*(const Scalar& a, const Tensor& b);
Tensor operator/(const Scalar& a, const Tensor& b);

/// Prints like libtorch: the values, then "[ CPUFloatType{2,3} ]".
std::ostream& operator<<(std::ostream& os, const Tensor& t);

}  // namespace kiln

#include <fmt/ostream.h>
/// fmt::format("{}", tensor) prints like operator<<.
template <>
struct fmt::formatter<kiln::Tensor> : fmt::ostream_formatter {};
