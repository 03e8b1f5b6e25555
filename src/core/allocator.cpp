// The allocator registry and the CPU allocator (64-byte aligned, so kernels can use aligned
// vector loads at the start of a buffer), plus StorageImpl.
#include "kiln/core/allocator.h"

#include <array>
#include <atomic>
#include <cstdlib>

#include "kiln/core/error.h"

namespace kiln {
namespace {

class CpuAllocator final : public Allocator {
 public:
  DataPtr allocate(size_t nbytes) override {
    if (nbytes == 0) return DataPtr{nullptr, [](void*) {}};
    size_t rounded = (nbytes + 63) & ~size_t{63};
    void* p = std::aligned_alloc(64, rounded);
    KILN_CHECK(p != nullptr, "[CPU allocator] out of memory: could not allocate {} bytes", nbytes);
    return DataPtr{p, [](void* q) { std::free(q); }};
  }
};

CpuAllocator g_cpu_allocator;
std::array<std::atomic<Allocator*>, kNumDeviceTypes> g_allocators{&g_cpu_allocator, nullptr};

}  // namespace

Allocator* get_allocator(DeviceType t) {
  Allocator* a = g_allocators[static_cast<int>(t)].load(std::memory_order_acquire);
  KILN_CHECK(a != nullptr, "[allocator] no allocator registered for device type {}; "
             "is Kiln built with support for it and is a device present?", t == kCPU ? "cpu" : "cuda");
  return a;
}

void set_allocator(DeviceType t, Allocator* allocator) {
  g_allocators[static_cast<int>(t)].store(allocator, std::memory_order_release);
}

StorageImpl::StorageImpl(size_t nbytes, Device device)
    : data_(get_allocator(device.type())->allocate(nbytes)), nbytes_(nbytes), device_(device) {}

StorageImpl::StorageImpl(DataPtr data, size_t nbytes, Device device)
    : data_(std::move(data)), nbytes_(nbytes), device_(device) {}

StorageImpl::~StorageImpl() {
  if (data_.deleter) data_.deleter(data_.ptr);
}

}  // namespace kiln
