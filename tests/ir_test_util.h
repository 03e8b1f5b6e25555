// Helpers shared by the IR test suites (test_interpreter.cpp, test_trace.cpp, the pass tests):
// counting nodes, and exact comparison of boxed results, since the interpreter and traced graphs
// must reproduce eager bit for bit.
#pragma once

#include <kiln/ir/ir.h>

#include <cmath>

#include "test_util.h"

namespace kiln::testing {

/// Nodes of kind k in b, nested blocks (fusion groups) included.
inline int count_nodes(const ir::Block* b, ir::NodeKind k) {
  int n = 0;
  for (const ir::Node* node : b->nodes()) {
    n += node->kind() == k;
    for (const ir::Block* nested : node->blocks()) n += count_nodes(nested, k);
  }
  return n;
}
inline int count_nodes(const ir::Block* b, ops::OpKind k) {
  return count_nodes(b, ir::NodeKind(k));
}

// Exact equality of two results: same kind, dtype, sizes and elements (NaN equals NaN).
inline ::testing::AssertionResult same(const IValue& a, const IValue& b) {
  if (a.tag() != b.tag())
    return ::testing::AssertionFailure()
           << "kinds differ: " << a.kind_name() << " vs " << b.kind_name();
  if (a.is_tuple()) {
    if (a.toTuple().size() != b.toTuple().size()) return ::testing::AssertionFailure() << "arity";
    for (size_t i = 0; i < a.toTuple().size(); ++i) {
      auto r = same(a.toTuple()[i], b.toTuple()[i]);
      if (!r) return r << " (tuple element " << i << ")";
    }
    return ::testing::AssertionSuccess();
  }
  if (a.is_tensor_list()) {
    const auto &x = a.toTensorList(), &y = b.toTensorList();
    if (x.size() != y.size()) return ::testing::AssertionFailure() << "list lengths differ";
    for (size_t i = 0; i < x.size(); ++i) {
      auto r = same(IValue(x[i]), IValue(y[i]));
      if (!r) return r << " (list element " << i << ")";
    }
    return ::testing::AssertionSuccess();
  }
  if (!a.is_tensor()) {
    if (a == b) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << a << " vs " << b;
  }
  const Tensor &x = a.toTensor(), &y = b.toTensor();
  if (!x.defined() || !y.defined()) {
    if (x.defined() == y.defined()) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "one tensor is undefined";
  }
  if (x.dtype() != y.dtype())
    return ::testing::AssertionFailure()
           << "dtypes differ: " << dtype_name(x.dtype()) << " vs " << dtype_name(y.dtype());
  if (!x.sizes().equals(y.sizes()))
    return ::testing::AssertionFailure()
           << "sizes differ: " << shape_str(x.sizes()) << " vs " << shape_str(y.sizes());
  const std::vector<double> u = to_vector(x), v = to_vector(y);
  for (size_t i = 0; i < u.size(); ++i)
    if (!(u[i] == v[i] || (std::isnan(u[i]) && std::isnan(v[i]))))
      return ::testing::AssertionFailure() << "element " << i << ": " << u[i] << " vs " << v[i];
  return ::testing::AssertionSuccess();
}

}  // namespace kiln::testing
