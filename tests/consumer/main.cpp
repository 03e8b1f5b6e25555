// The outside consumer's program: a small computation through the installed kiln::kiln, checked
// against plain loops. Exits non-zero on any mismatch, so scripts/test.sh fails loudly.
#include <kiln/kiln.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

namespace {

int failures = 0;

void expect(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "kiln_consumer: FAILED: %s\n", what);
    ++failures;
  }
}

}  // namespace

int main() {
  // y = relu(a @ b + bias) with a [2, 3], b [3, 4], bias [4]; reference by plain loops.
  const int64_t n = 2, k = 3, m = 4;
  std::vector<float> a(n * k), b(k * m), bias(m);
  for (int64_t i = 0; i < n * k; ++i) a[i] = 0.5f * static_cast<float>(i) - 1.0f;
  for (int64_t i = 0; i < k * m; ++i) b[i] = 0.25f * static_cast<float>(i % 5) - 0.5f;
  for (int64_t j = 0; j < m; ++j) bias[j] = 0.1f * static_cast<float>(j) - 0.2f;

  kiln::Tensor ta = kiln::from_blob(a.data(), {n, k}, kiln::kFloat32);
  kiln::Tensor tb = kiln::from_blob(b.data(), {k, m}, kiln::kFloat32);
  kiln::Tensor tbias = kiln::from_blob(bias.data(), {m}, kiln::kFloat32);
  kiln::Tensor y = kiln::relu(kiln::matmul(ta, tb) + tbias).contiguous();

  expect(y.dim() == 2 && y.size(0) == n && y.size(1) == m, "result shape is [2, 4]");
  expect(y.dtype() == kiln::kFloat32, "result dtype is float32");
  double total = 0;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < m; ++j) {
      double acc = bias[j];
      for (int64_t p = 0; p < k; ++p) acc += static_cast<double>(a[i * k + p]) * b[p * m + j];
      double want = acc > 0 ? acc : 0;
      total += want;
      double got = y.data_ptr<float>()[i * m + j];
      if (std::fabs(got - want) > 1e-5) {
        std::fprintf(stderr, "kiln_consumer: y[%lld][%lld] = %g, expected %g\n",
                     static_cast<long long>(i), static_cast<long long>(j), got, want);
        ++failures;
      }
    }
  }
  expect(std::fabs(y.sum().item<double>() - total) < 1e-4, "sum() matches the loop sum");

  // Errors cross the shared-library boundary as kiln::Error.
  bool threw = false;
  try {
    kiln::matmul(ta, ta);
  } catch (const kiln::Error& e) {
    threw = std::strstr(e.what(), "matmul") != nullptr || std::strstr(e.what(), "mm") != nullptr;
  }
  expect(threw, "matmul of [2, 3] x [2, 3] throws kiln::Error naming the op");

  std::printf("kiln_consumer: kiln %s, %s\n", kiln::version(), failures ? "FAILED" : "OK");
  return failures == 0 ? 0 : 1;
}
