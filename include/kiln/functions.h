// Free functions of the tensor core with libtorch's names: factories, elementwise math generated
// from the op table, reductions, linear algebra, convolution, pooling, joining and indexing.
// Tensor methods (kiln/tensor.h) forward here; eager dispatch picks a kernel by device and dtype.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <optional>
#include <tuple>
#include <vector>

#include "kiln/tensor.h"

namespace kiln {

// ---- factories -----------------------------------------------------------------------------
/// Uninitialised tensor.
Tensor empty(IntArrayRef sizes, const TensorOptions& options = {});
/// Uninitialised tensor with explicit strides (no overlap checks beyond what storage needs).
Tensor empty_strided(IntArrayRef sizes, IntArrayRef strides, const TensorOptions& options = {});
Tensor zeros(IntArrayRef sizes, const TensorOptions& options = {});
Tensor ones(IntArrayRef sizes, const TensorOptions& options = {});
/// Filled with value; without a dtype, the dtype follows the value (int64, bool or default float).
Tensor full(IntArrayRef sizes, const Scalar& value, const TensorOptions& options = {});
Tensor empty_like(const Tensor& t, const TensorOptions& options = {});
Tensor zeros_like(const Tensor& t, const TensorOptions& options = {});
Tensor ones_like(const Tensor& t, const TensorOptions& options = {});
Tensor full_like(const Tensor& t, const Scalar& value, const TensorOptions& options = {});
Tensor rand_like(const Tensor& t, const TensorOptions& options = {});
Tensor randn_like(const Tensor& t, const TensorOptions& options = {});
/// [0, end) / [start, end) with step; the dtype is int64 when all arguments are integers.
Tensor arange(const Scalar& end, const TensorOptions& options = {});
Tensor arange(const Scalar& start, const Scalar& end, const TensorOptions& options = {});
Tensor arange(const Scalar& start, const Scalar& end, const Scalar& step,
              const TensorOptions& options = {});
Tensor linspace(const Scalar& start, const Scalar& end, int64_t steps,
                const TensorOptions& options = {});
Tensor eye(int64_t n, const TensorOptions& options = {});
Tensor eye(int64_t n, int64_t m, const TensorOptions& options = {});
/// Uniform on [0, 1).
Tensor rand(IntArrayRef sizes, const TensorOptions& options = {});
/// Standard normal.
Tensor randn(IntArrayRef sizes, const TensorOptions& options = {});
/// Integers uniform on [low, high) (int64 unless a dtype is given).
Tensor randint(int64_t high, IntArrayRef sizes, const TensorOptions& options = {});
Tensor randint(int64_t low, int64_t high, IntArrayRef sizes, const TensorOptions& options = {});
/// Random permutation of 0..n-1 (int64).
Tensor randperm(int64_t n, const TensorOptions& options = {});
/// Wraps external memory without copying; the caller keeps it alive (or passes a deleter).
Tensor from_blob(void* data, IntArrayRef sizes, const TensorOptions& options = {});
Tensor from_blob(void* data, IntArrayRef sizes, IntArrayRef strides,
                 const TensorOptions& options = {});
Tensor from_blob(void* data, IntArrayRef sizes, std::function<void(void*)> deleter,
                 const TensorOptions& options = {});
/// Seeds the global CPU generator (rand/randn/randint/randperm/dropout).
void manual_seed(uint64_t seed);

/// Nested braces of numbers, like torch::tensor({{1, 2}, {3, 4}}). Integers give int64, floating
/// values the default float dtype, bools give bool, unless options carry a dtype.
class TensorDataContainer {
 public:
  TensorDataContainer(const Scalar& s) : scalar_(s), is_scalar_(true), dtype_(s.type()) {}  // NOLINT
  template <typename T, std::enable_if_t<std::is_arithmetic_v<T>, int> = 0>
  TensorDataContainer(T v) : TensorDataContainer(Scalar(v)) {}  // NOLINT
  TensorDataContainer(std::initializer_list<TensorDataContainer> list);     // NOLINT
  template <typename T, std::enable_if_t<std::is_arithmetic_v<T>, int> = 0>
  TensorDataContainer(const std::vector<T>& v) {  // NOLINT
    for (const T& x : v) children_.emplace_back(Scalar(x));
    sizes_ = {static_cast<int64_t>(v.size())};
    dtype_ = v.empty() ? get_default_dtype() : Scalar(v.front()).type();
  }
  const std::vector<int64_t>& sizes() const { return sizes_; }
  ScalarType scalar_type() const { return dtype_; }
  /// Appends the leaves in row-major order.
  void flatten_into(std::vector<Scalar>& out) const;

 private:
  Scalar scalar_;
  bool is_scalar_ = false;
  ScalarType dtype_ = kLong;
  std::vector<TensorDataContainer> children_;
  std::vector<int64_t> sizes_;
  friend Tensor tensor(const TensorDataContainer&, const TensorOptions&);
};
Tensor tensor(const TensorDataContainer& data, const TensorOptions& options = {});

// ---- elementwise math (generated from ops.def) ---------------------------------------------
#define KILN_UNARY_OP(Name, fn, r, t)   \
  Tensor fn(const Tensor& self);        \
  Tensor& fn##_(Tensor& self);          \
  Tensor& fn##_out(Tensor& out, const Tensor& self);
#define KILN_BINARY_OP(Name, fn, r, t)                            \
  Tensor fn(const Tensor& self, const Tensor& other);             \
  Tensor fn(const Tensor& self, const Scalar& other);             \
  Tensor fn(const Scalar& self, const Tensor& other);             \
  Tensor& fn##_out(Tensor& out, const Tensor& self, const Tensor& other);
#include "kiln/ops/ops.def"
/// self + alpha * other.
Tensor add(const Tensor& self, const Tensor& other, const Scalar& alpha);
Tensor sub(const Tensor& self, const Tensor& other, const Scalar& alpha);
Tensor square(const Tensor& self);
Tensor clamp(const Tensor& self, const std::optional<Scalar>& min,
             const std::optional<Scalar>& max = std::nullopt);
Tensor& clamp_(Tensor& self, const std::optional<Scalar>& min,
               const std::optional<Scalar>& max = std::nullopt);
Tensor clamp_min(const Tensor& self, const Scalar& min);
Tensor clamp_max(const Tensor& self, const Scalar& max);
/// Elements of self where condition is true, of other elsewhere (broadcast, promoted).
Tensor where(const Tensor& condition, const Tensor& self, const Tensor& other);
Tensor where(const Tensor& condition, const Scalar& self, const Tensor& other);
Tensor where(const Tensor& condition, const Tensor& self, const Scalar& other);
Tensor where(const Tensor& condition, const Scalar& self, const Scalar& other);
Tensor masked_fill(const Tensor& self, const Tensor& mask, const Scalar& value);
Tensor& masked_fill_(Tensor& self, const Tensor& mask, const Scalar& value);
/// True when both have the same sizes and equal elements.
bool equal(const Tensor& a, const Tensor& b);
/// |a - b| <= atol + rtol * |b| everywhere (NaNs equal when equal_nan).
bool allclose(const Tensor& a, const Tensor& b, double rtol = 1e-5, double atol = 1e-8,
              bool equal_nan = false);
Tensor isnan(const Tensor& self);
/// The dtype libtorch's promotion gives an op over these operands.
ScalarType result_type(const Tensor& a, const Tensor& b);
ScalarType result_type(const Tensor& a, const Scalar& b);

// ---- reductions ----------------------------------------------------------------------------
Tensor sum(const Tensor& self, std::optional<ScalarType> dtype = std::nullopt);
Tensor sum(const Tensor& self, IntArrayRef dim, bool keepdim = false,
           std::optional<ScalarType> dtype = std::nullopt);
Tensor mean(const Tensor& self, std::optional<ScalarType> dtype = std::nullopt);
Tensor mean(const Tensor& self, IntArrayRef dim, bool keepdim = false,
            std::optional<ScalarType> dtype = std::nullopt);
Tensor prod(const Tensor& self, std::optional<ScalarType> dtype = std::nullopt);
Tensor prod(const Tensor& self, int64_t dim, bool keepdim = false,
            std::optional<ScalarType> dtype = std::nullopt);
Tensor max(const Tensor& self);
std::tuple<Tensor, Tensor> max(const Tensor& self, int64_t dim, bool keepdim = false);
Tensor min(const Tensor& self);
std::tuple<Tensor, Tensor> min(const Tensor& self, int64_t dim, bool keepdim = false);
/// Over the given dims (all dims when empty).
Tensor amax(const Tensor& self, IntArrayRef dim = {}, bool keepdim = false);
Tensor amin(const Tensor& self, IntArrayRef dim = {}, bool keepdim = false);
/// Index of the first maximum; over the flattened tensor when dim is nullopt.
Tensor argmax(const Tensor& self, std::optional<int64_t> dim = std::nullopt, bool keepdim = false);
Tensor argmin(const Tensor& self, std::optional<int64_t> dim = std::nullopt, bool keepdim = false);
/// Over dims (all dims when empty); unbiased uses Bessel's correction.
Tensor var(const Tensor& self, IntArrayRef dim, bool unbiased = true, bool keepdim = false);
Tensor std(const Tensor& self, IntArrayRef dim, bool unbiased = true, bool keepdim = false);
// Over all elements. Templates, so that var(x, {0}) picks the dim overload rather than
// converting {0} to bool.
inline Tensor var(const Tensor& self) { return var(self, IntArrayRef{}, true, false); }
inline Tensor std(const Tensor& self) { return std(self, IntArrayRef{}, true, false); }
template <typename B, std::enable_if_t<std::is_same_v<B, bool>, int> = 0>
Tensor var(const Tensor& self, B unbiased) {
  return var(self, IntArrayRef{}, unbiased, false);
}
template <typename B, std::enable_if_t<std::is_same_v<B, bool>, int> = 0>
Tensor std(const Tensor& self, B unbiased) {
  return std(self, IntArrayRef{}, unbiased, false);
}
Tensor norm(const Tensor& self, const Scalar& p = 2);
Tensor norm(const Tensor& self, const Scalar& p, IntArrayRef dim, bool keepdim = false);
Tensor logsumexp(const Tensor& self, IntArrayRef dim, bool keepdim = false);
Tensor all(const Tensor& self);
Tensor all(const Tensor& self, int64_t dim, bool keepdim = false);
Tensor any(const Tensor& self);
Tensor any(const Tensor& self, int64_t dim, bool keepdim = false);
Tensor cumsum(const Tensor& self, int64_t dim, std::optional<ScalarType> dtype = std::nullopt);
Tensor softmax(const Tensor& self, int64_t dim, std::optional<ScalarType> dtype = std::nullopt);
Tensor log_softmax(const Tensor& self, int64_t dim,
                   std::optional<ScalarType> dtype = std::nullopt);

// ---- linear algebra (oneDNN) ---------------------------------------------------------------
/// 2-D x 2-D.
Tensor mm(const Tensor& self, const Tensor& mat2);
/// Batched: [b, n, k] x [b, k, m].
Tensor bmm(const Tensor& self, const Tensor& mat2);
/// beta * self + alpha * (mat1 @ mat2), self broadcast to [n, m].
Tensor addmm(const Tensor& self, const Tensor& mat1, const Tensor& mat2, const Scalar& beta = 1,
             const Scalar& alpha = 1);
/// The products written into out (libtorch's at::mm_out and friends): out must have the
/// product's dtype and shape, or no elements (it is then resized). They do not record autograd.
Tensor& mm_out(Tensor& out, const Tensor& self, const Tensor& mat2);
Tensor& bmm_out(Tensor& out, const Tensor& self, const Tensor& mat2);
Tensor& addmm_out(Tensor& out, const Tensor& self, const Tensor& mat1, const Tensor& mat2,
                  const Scalar& beta = 1, const Scalar& alpha = 1);
/// numpy-style matmul: 1-D dot, 2-D mm, batched with broadcast batch dims.
Tensor matmul(const Tensor& self, const Tensor& other);
/// input @ weight^T + bias; weight is [out_features, in_features].
Tensor linear(const Tensor& input, const Tensor& weight, const Tensor& bias = {});
Tensor dot(const Tensor& self, const Tensor& other);

// ---- convolution and pooling ---------------------------------------------------------------
/// input [N, C, H, W] (or [C, H, W]), weight [O, C/groups, kH, kW], bias [O] or undefined.
Tensor conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias = {},
              IntArrayRef stride = 1, IntArrayRef padding = 0, IntArrayRef dilation = 1,
              int64_t groups = 1);
Tensor max_pool2d(const Tensor& input, IntArrayRef kernel_size, IntArrayRef stride = {},
                  IntArrayRef padding = 0, IntArrayRef dilation = 1, bool ceil_mode = false);
Tensor avg_pool2d(const Tensor& input, IntArrayRef kernel_size, IntArrayRef stride = {},
                  IntArrayRef padding = 0, bool ceil_mode = false, bool count_include_pad = true,
                  std::optional<int64_t> divisor_override = std::nullopt);
/// im2col: [N, C, H, W] -> [N, C*kH*kW, L] (torch.nn.functional.unfold).
Tensor im2col(const Tensor& input, IntArrayRef kernel_size, IntArrayRef dilation = 1,
              IntArrayRef padding = 0, IntArrayRef stride = 1);
/// col2im: [N, C*kH*kW, L] -> [N, C, H, W], summing overlapping blocks (F::fold; the adjoint of
/// im2col).
Tensor col2im(const Tensor& input, IntArrayRef output_size, IntArrayRef kernel_size,
              IntArrayRef dilation = 1, IntArrayRef padding = 0, IntArrayRef stride = 1);
/// Gradient of max_pool2d with respect to self: grad_output routed to each window's maximum.
Tensor max_pool2d_backward(const Tensor& grad_output, const Tensor& self, IntArrayRef kernel_size,
                           IntArrayRef stride, IntArrayRef padding, IntArrayRef dilation,
                           bool ceil_mode);
/// Gradient of avg_pool2d with respect to self: grad_output spread evenly over each window.
Tensor avg_pool2d_backward(const Tensor& grad_output, const Tensor& self, IntArrayRef kernel_size,
                           IntArrayRef stride, IntArrayRef padding, bool ceil_mode,
                           bool count_include_pad, std::optional<int64_t> divisor_override);

// ---- joining, splitting, indexing ----------------------------------------------------------
Tensor cat(const std::vector<Tensor>& tensors, int64_t dim = 0);
Tensor stack(const std::vector<Tensor>& tensors, int64_t dim = 0);
std::vector<Tensor> split(const Tensor& self, int64_t split_size, int64_t dim = 0);
std::vector<Tensor> split(const Tensor& self, IntArrayRef split_sizes, int64_t dim = 0);
std::vector<Tensor> chunk(const Tensor& self, int64_t chunks, int64_t dim = 0);
Tensor index_select(const Tensor& self, int64_t dim, const Tensor& index);
Tensor gather(const Tensor& self, int64_t dim, const Tensor& index);
Tensor scatter(const Tensor& self, int64_t dim, const Tensor& index, const Tensor& src);
Tensor scatter(const Tensor& self, int64_t dim, const Tensor& index, const Scalar& value);
Tensor scatter_add(const Tensor& self, int64_t dim, const Tensor& index, const Tensor& src);
/// A copy of self with values written (or added, with accumulate) where the index tensors
/// point: indices[i] indexes dim i, undefined entries take the whole dim (at::index_put).
Tensor index_put(const Tensor& self, const std::vector<Tensor>& indices, const Tensor& values,
                 bool accumulate = false);
/// Rows of weight picked by integer indices: output shape indices.sizes() + [embedding_dim].
Tensor embedding(const Tensor& weight, const Tensor& indices);
/// int64 [.., num_classes] with a one at each index; num_classes -1 means max + 1.
Tensor one_hot(const Tensor& self, int64_t num_classes = -1);
std::tuple<Tensor, Tensor> topk(const Tensor& self, int64_t k, int64_t dim = -1,
                                bool largest = true, bool sorted = true);
/// Stable sort; returns (values, int64 indices).
std::tuple<Tensor, Tensor> sort(const Tensor& self, int64_t dim = -1, bool descending = false);
Tensor argsort(const Tensor& self, int64_t dim = -1, bool descending = false);

// ---- views as free functions ---------------------------------------------------------------
Tensor reshape(const Tensor& self, IntArrayRef sizes);
Tensor flatten(const Tensor& self, int64_t start_dim = 0, int64_t end_dim = -1);
Tensor permute(const Tensor& self, IntArrayRef dims);
Tensor transpose(const Tensor& self, int64_t dim0, int64_t dim1);
Tensor squeeze(const Tensor& self);
Tensor squeeze(const Tensor& self, int64_t dim);
Tensor unsqueeze(const Tensor& self, int64_t dim);
Tensor narrow(const Tensor& self, int64_t dim, int64_t start, int64_t length);
Tensor select(const Tensor& self, int64_t dim, int64_t index);
/// The sizes both shapes broadcast to; throws naming op when they do not broadcast.
std::vector<int64_t> infer_broadcast_size(IntArrayRef a, IntArrayRef b, const char* op = "broadcast");
std::vector<Tensor> broadcast_tensors(const std::vector<Tensor>& tensors);

}  // namespace kiln
