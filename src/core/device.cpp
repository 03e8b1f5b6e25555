// Device parsing and printing ("cpu", "cuda:1"), shape formatting and Scalar printing.
#include "kiln/core/device.h"

#include <charconv>

#include "kiln/core/array_ref.h"
#include "kiln/core/error.h"
#include "kiln/core/scalar.h"
#include "kiln/version.h"

namespace kiln {

Device::Device(const std::string& spec) : type_(DeviceType::CPU), index_(-1) {
  std::string kind = spec.substr(0, spec.find(':'));
  if (kind == "cpu") type_ = DeviceType::CPU;
  else if (kind == "cuda") type_ = DeviceType::CUDA;
  else KILN_FAIL("[Device] got device string '{}', expected 'cpu', 'cuda' or 'cuda:<index>'", spec);
  if (kind.size() < spec.size()) {
    std::string idx = spec.substr(kind.size() + 1);
    int value = -1;
    auto [ptr, ec] = std::from_chars(idx.data(), idx.data() + idx.size(), value);
    KILN_CHECK(ec == std::errc() && ptr == idx.data() + idx.size() && value >= 0 && value < 32768,
               "[Device] got device string '{}', expected a non-negative index after ':'", spec);
    index_ = static_cast<int16_t>(value);
    KILN_CHECK(type_ != DeviceType::CPU || index_ == 0,
               "[Device] got '{}': CPU device index must be -1 or zero", spec);
  }
}

std::string Device::str() const {
  const char* kind = type_ == DeviceType::CPU ? "cpu" : "cuda";
  return index_ >= 0 ? fmt::format("{}:{}", kind, index_) : std::string(kind);
}

std::ostream& operator<<(std::ostream& os, DeviceType t) {
  return os << (t == DeviceType::CPU ? "cpu" : "cuda");
}
std::ostream& operator<<(std::ostream& os, const Device& d) { return os << d.str(); }

std::string shape_str(IntArrayRef sizes) { return fmt::format("[{}]", fmt::join(sizes, ", ")); }

std::ostream& operator<<(std::ostream& os, const Scalar& s) {
  if (s.is_floating_point()) return os << s.toDouble();
  if (s.is_boolean()) return os << (s.toBool() ? "true" : "false");
  return os << s.toLong();
}

const char* version() { return "0.1.0"; }

}  // namespace kiln
