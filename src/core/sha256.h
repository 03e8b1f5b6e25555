// SHA-256 (FIPS 180-4): content addresses of compiled kernels in the disk cache and integrity
// checks of their payloads. Internal; not installed.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace kiln::detail {

/// Incremental SHA-256.
class Sha256 {
 public:
  Sha256();
  Sha256& update(const void* data, size_t n);
  Sha256& update(std::string_view s) { return update(s.data(), s.size()); }
  /// The 32-byte digest; the object must not be updated afterwards.
  std::array<uint8_t, 32> digest();
  /// The digest as 64 lower-case hex digits.
  std::string hex();

 private:
  void block(const uint8_t* p);
  std::array<uint32_t, 8> h_;
  std::array<uint8_t, 64> buf_{};
  size_t fill_ = 0;
  uint64_t total_ = 0;
};

inline std::string sha256_hex(std::string_view s) { return Sha256().update(s).hex(); }

}  // namespace kiln::detail
