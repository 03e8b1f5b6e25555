// call_kernel: the unboxing half of ops::call. One case per row of ops.def, each calling the
// typed eager function with the arguments in schema order (the caller holds the record guard).
#include "kiln/functions.h"
#include "kiln/ops/schema.h"
#include "tensor/internal.h"
#include "tensor/record.h"

namespace kiln::detail {
namespace {

using ops::OpKind;

TensorOptions creation_options(const IValue& dtype, const IValue& device) {
  return TensorOptions(dtype.toScalarType()).device(device.toDevice());
}

std::vector<IValue> one(Tensor t) { return {IValue(std::move(t))}; }
std::vector<IValue> two(std::tuple<Tensor, Tensor> t) {
  return {IValue(std::move(std::get<0>(t))), IValue(std::move(std::get<1>(t)))};
}

// A binary op on two Operands (at least one of them a tensor).
template <typename FTT, typename FTS, typename FST>
Tensor binary(const char* op, const IValue& a, const IValue& b, FTT tt, FTS ts, FST st) {
  if (a.is_tensor() && b.is_tensor()) return tt(a.toTensor(), b.toTensor());
  if (a.is_tensor()) return ts(a.toTensor(), b.toScalar());
  KILN_CHECK(b.is_tensor(), "[{}] got two numbers, expected at least one tensor operand", op);
  return st(a.toScalar(), b.toTensor());
}

}  // namespace

std::vector<IValue> call_kernel(OpKind kind, const std::vector<IValue>& a) {
  auto T = [&](size_t i) -> const Tensor& { return a[i].toTensor(); };
  auto I = [&](size_t i) { return a[i].toInt(); };
  auto L = [&](size_t i) -> const std::vector<int64_t>& { return a[i].toIntList(); };
  auto B = [&](size_t i) { return a[i].toBool(); };
  auto S = [&](size_t i) { return a[i].toScalar(); };
  switch (kind) {
#define KILN_UNARY_OP(Name, fn, r, t) \
  case OpKind::Name:                  \
    return one(kiln::fn(T(0)));
#define KILN_BINARY_OP(Name, fn, r, t)                                                     \
  case OpKind::Name:                                                                       \
    return one(binary(                                                                     \
        #fn, a[0], a[1], [](const Tensor& x, const Tensor& y) { return kiln::fn(x, y); },  \
        [](const Tensor& x, const Scalar& y) { return kiln::fn(x, y); },                   \
        [](const Scalar& x, const Tensor& y) { return kiln::fn(x, y); }));
#define KILN_REDUCE_OP(Name, fn, r, t) \
  case OpKind::Name:                   \
    return one(reduce(OpKind::Name, T(0), L(1), B(2)));
#include "kiln/ops/ops.def"
    case OpKind::Argmax: return one(kiln::argmax(T(0), a[1].toOptionalInt(), B(2)));
    case OpKind::Argmin: return one(kiln::argmin(T(0), a[1].toOptionalInt(), B(2)));
    case OpKind::Where: {
      const Tensor& c = T(0);
      if (a[1].is_tensor() && a[2].is_tensor()) return one(kiln::where(c, T(1), T(2)));
      if (a[1].is_tensor()) return one(kiln::where(c, T(1), S(2)));
      if (a[2].is_tensor()) return one(kiln::where(c, S(1), T(2)));
      return one(kiln::where(c, S(1), S(2)));
    }
    case OpKind::Copy: return one(T(0).clone());
    case OpKind::Cast: return one(T(0).to(a[1].toScalarType()));
    case OpKind::Assign: return one(assign(T(0), a[1]));
    case OpKind::View: return one(T(0).view(L(1)));
    case OpKind::Permute: return one(T(0).permute(L(1)));
    case OpKind::Expand: return one(T(0).expand(L(1)));
    case OpKind::Slice: return one(T(0).slice(I(1), I(2), I(3), I(4)));
    case OpKind::Select: return one(T(0).select(I(1), I(2)));
    case OpKind::UnfoldView: return one(T(0).unfold(I(1), I(2), I(3)));
    case OpKind::AsStrided: return one(T(0).as_strided(L(1), L(2), I(3)));
    case OpKind::Cumsum: return one(kiln::cumsum(T(0), I(1)));
    case OpKind::Softmax: return one(kiln::softmax(T(0), I(1)));
    case OpKind::LogSoftmax: return one(kiln::log_softmax(T(0), I(1)));
    case OpKind::Mm: return one(kiln::mm(T(0), T(1)));
    case OpKind::Bmm: return one(kiln::bmm(T(0), T(1)));
    case OpKind::Addmm: return one(kiln::addmm(T(0), T(1), T(2), S(3), S(4)));
    case OpKind::Conv2d:
      return one(kiln::conv2d(T(0), T(1), a[2].toOptionalTensor(), L(3), L(4), L(5), I(6)));
    case OpKind::MaxPool2d: return one(kiln::max_pool2d(T(0), L(1), L(2), L(3), L(4), B(5)));
    case OpKind::AvgPool2d:
      return one(kiln::avg_pool2d(T(0), L(1), L(2), L(3), B(4), B(5), a[6].toOptionalInt()));
    case OpKind::Im2col: return one(kiln::im2col(T(0), L(1), L(2), L(3), L(4)));
    case OpKind::Col2im: return one(kiln::col2im(T(0), L(1), L(2), L(3), L(4), L(5)));
    case OpKind::MaxPool2dBackward:
      return one(kiln::max_pool2d_backward(T(0), T(1), L(2), L(3), L(4), L(5), B(6)));
    case OpKind::AvgPool2dBackward:
      return one(kiln::avg_pool2d_backward(T(0), T(1), L(2), L(3), L(4), B(5), B(6),
                                           a[7].toOptionalInt()));
    case OpKind::Cat: return one(kiln::cat(a[0].toTensorList(), I(1)));
    case OpKind::IndexSelect: return one(kiln::index_select(T(0), I(1), T(2)));
    case OpKind::Gather: return one(kiln::gather(T(0), I(1), T(2)));
    case OpKind::Scatter:
      if (a[3].is_tensor()) return one(kiln::scatter(T(0), I(1), T(2), T(3)));
      return one(kiln::scatter(T(0), I(1), T(2), S(3)));
    case OpKind::ScatterAdd: return one(kiln::scatter_add(T(0), I(1), T(2), T(3)));
    case OpKind::MaskedFill: return one(kiln::masked_fill(T(0), T(1), S(2)));
    case OpKind::Index: return one(index_tensors(T(0), a[1].toTensorList()));
    case OpKind::IndexPut: {
      Tensor r = T(0).clone();
      index_put_tensors_(r, a[1].toTensorList(), T(2), B(3));
      return one(r);
    }
    case OpKind::Sort: return two(kiln::sort(T(0), I(1), B(2)));
    case OpKind::Topk: return two(kiln::topk(T(0), I(1), I(2), B(3), B(4)));
    case OpKind::Full: return one(kiln::full(L(0), S(1), creation_options(a[2], a[3])));
    case OpKind::Arange:
      return one(kiln::arange(S(0), S(1), S(2), creation_options(a[3], a[4])));
    case OpKind::Linspace:
      return one(kiln::linspace(S(0), S(1), I(2), creation_options(a[3], a[4])));
    case OpKind::Eye: return one(kiln::eye(I(0), I(1), creation_options(a[2], a[3])));
    case OpKind::Rand: return one(kiln::rand(L(0), creation_options(a[1], a[2])));
    case OpKind::Randn: return one(kiln::randn(L(0), creation_options(a[1], a[2])));
    case OpKind::Randint:
      return one(kiln::randint(I(0), I(1), L(2), creation_options(a[3], a[4])));
  }
  KILN_ASSERT(false, "call_kernel: no case for op {}", ops::op_info(kind).name);
}

}  // namespace kiln::detail
