// Devices a tensor can live on. CPU now; CUDA plugs in through the allocator and kernel registries.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>

namespace kiln {

enum class DeviceType : int8_t { CPU = 0, CUDA = 1 };
inline constexpr int kNumDeviceTypes = 2;
inline constexpr DeviceType kCPU = DeviceType::CPU;
inline constexpr DeviceType kCUDA = DeviceType::CUDA;

/// A device type plus an index (-1 = the current device of that type), like c10::Device.
class Device {
 public:
  Device(DeviceType type, int16_t index = -1) : type_(type), index_(index) {}  // NOLINT
  /// Parses "cpu", "cuda", "cuda:1".
  explicit Device(const std::string& spec);

  DeviceType type() const { return type_; }
  int16_t index() const { return index_; }
  bool has_index() const { return index_ >= 0; }
  bool is_cpu() const { return type_ == DeviceType::CPU; }
  bool is_cuda() const { return type_ == DeviceType::CUDA; }
  std::string str() const;

  bool operator==(const Device& o) const { return type_ == o.type_ && index_ == o.index_; }
  bool operator!=(const Device& o) const { return !(*this == o); }

 private:
  DeviceType type_;
  int16_t index_;
};

std::ostream& operator<<(std::ostream& os, DeviceType t);
std::ostream& operator<<(std::ostream& os, const Device& d);

}  // namespace kiln
