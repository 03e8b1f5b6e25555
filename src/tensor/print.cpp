// Printing in libtorch's layout: values right-aligned in columns, higher dims as "(i,.,.) =" slices,
// then a footer like "[ CPUFloatType{2,3} ]".
#include <cmath>
#include <iomanip>
#include <sstream>

#include "kiln/functions.h"
#include "tensor/internal.h"

namespace kiln {
namespace {

struct Format {
  bool integral = true;  // every value is an integer: print without decimals
  bool scientific = false;
  int width = 1;
  int precision = 4;
};

Format choose_format(const std::vector<double>& v, ScalarType dt) {
  Format f;
  double max_abs = 0, min_abs = INFINITY;
  for (double x : v) {
    if (!std::isfinite(x)) continue;
    if (x != std::floor(x)) f.integral = false;
    max_abs = std::max(max_abs, std::abs(x));
    if (x != 0) min_abs = std::min(min_abs, std::abs(x));
  }
  if (!f.integral && (max_abs >= 1e5 || (min_abs < 1e-4 && min_abs > 0) ||
                      (min_abs < INFINITY && max_abs / min_abs > 1e6)))
    f.scientific = true;
  for (double x : v) {
    std::ostringstream ss;
    if (f.integral) ss << std::fixed << std::setprecision(0) << x;
    else if (f.scientific) ss << std::scientific << std::setprecision(f.precision) << x;
    else ss << std::fixed << std::setprecision(f.precision) << x;
    f.width = std::max<int>(f.width, static_cast<int>(ss.str().size()));
  }
  return f;
}

void print_value(std::ostream& os, double x, const Format& f, ScalarType dt) {
  std::ostringstream ss;
  if (std::isnan(x)) ss << "nan";
  else if (std::isinf(x)) ss << (x > 0 ? "inf" : "-inf");
  else if (f.integral) ss << std::fixed << std::setprecision(0) << x;
  else if (f.scientific) ss << std::scientific << std::setprecision(f.precision) << x;
  else ss << std::fixed << std::setprecision(f.precision) << x;
  os << std::setw(f.width + 1) << ss.str();
}

void print_matrix(std::ostream& os, const double* p, int64_t rows, int64_t cols, const Format& f,
                  ScalarType dt) {
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) print_value(os, p[r * cols + c], f, dt);
    os << '\n';
  }
}

}  // namespace

std::ostream& operator<<(std::ostream& os, const Tensor& t) {
  if (!t.defined()) return os << "[ Tensor (undefined) ]";
  Tensor d = t.to(kDouble).contiguous();
  const double* p = d.data_ptr<double>();
  std::vector<double> v(p, p + d.numel());
  Format f = choose_format(v, t.dtype());
  if (t.dim() == 0) {
    print_value(os, v[0], f, t.dtype());
    os << '\n';
  } else if (t.numel() == 0) {
    // libtorch prints only the footer for an empty tensor
  } else if (t.dim() == 1) {
    for (double x : v) {
      print_value(os, x, f, t.dtype());
      os << '\n';
    }
  } else if (t.dim() == 2) {
    print_matrix(os, v.data(), t.size(0), t.size(1), f, t.dtype());
  } else {
    int64_t rows = t.size(-2), cols = t.size(-1), mat = rows * cols;
    int64_t slices = t.numel() / mat;
    std::vector<int64_t> idx(t.dim() - 2, 0);
    for (int64_t s = 0; s < slices; ++s) {
      os << '(';
      for (int64_t i : idx) os << i + 1 << ',';
      os << ".,.) = \n";
      print_matrix(os, v.data() + s * mat, rows, cols, f, t.dtype());
      if (s + 1 < slices) os << '\n';
      for (int64_t k = static_cast<int64_t>(idx.size()) - 1; k >= 0; --k) {
        if (++idx[k] < t.size(k)) break;
        idx[k] = 0;
      }
    }
  }
  os << "[ " << t.toString() << "{" << fmt::format("{}", fmt::join(t.sizes(), ",")) << "} ]";
  return os;
}

}  // namespace kiln
