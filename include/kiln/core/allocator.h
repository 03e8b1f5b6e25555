// Allocators and storage. A Storage is a refcounted byte buffer on one device; views of a tensor
// share it. Each device type registers one Allocator (CPU here; CUDA's caching allocator later).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

#include "kiln/core/device.h"

namespace kiln {

/// Owns a block of device memory; the deleter returns it to whoever handed it out.
struct DataPtr {
  void* ptr = nullptr;
  std::function<void(void*)> deleter;
};

/// Allocates device memory. Implementations must be thread-safe.
class Allocator {
 public:
  virtual ~Allocator() = default;
  /// Returns memory aligned to at least 64 bytes; throws kiln::Error when out of memory.
  virtual DataPtr allocate(size_t nbytes) = 0;
};

/// The allocator registered for a device type; throws kiln::Error if the device has none.
Allocator* get_allocator(DeviceType t);
/// Registers (or replaces) the allocator of a device type. The allocator must outlive all tensors.
void set_allocator(DeviceType t, Allocator* allocator);

/// A refcounted buffer shared by a tensor and its views.
class StorageImpl {
 public:
  StorageImpl(size_t nbytes, Device device);                        // allocates
  StorageImpl(DataPtr data, size_t nbytes, Device device);          // adopts external memory
  ~StorageImpl();
  StorageImpl(const StorageImpl&) = delete;
  StorageImpl& operator=(const StorageImpl&) = delete;

  void* data() const { return data_.ptr; }
  size_t nbytes() const { return nbytes_; }
  const Device& device() const { return device_; }

  /// Counts in-place writes to this memory (see TensorImpl::version).
  uint32_t version() const { return version_.load(std::memory_order_relaxed); }
  void bump_version() { version_.fetch_add(1, std::memory_order_relaxed); }

 private:
  std::atomic<uint32_t> version_{0};
  DataPtr data_;
  size_t nbytes_;
  Device device_;
};

using Storage = std::shared_ptr<StorageImpl>;

}  // namespace kiln
