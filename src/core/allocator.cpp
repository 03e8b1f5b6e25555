// The allocator registry and the CPU allocator (64-byte aligned, so kernels can use aligned
// vector loads at the start of a buffer), plus StorageImpl.
#include "kiln/core/allocator.h"

#include <array>
#include <atomic>
#include <cstdlib>
#include <map>
#include <mutex>

#include <sys/mman.h>

#include "kiln/core/error.h"

namespace kiln {
namespace {

// Small blocks go straight to aligned_alloc. Blocks of 1 MiB and more are rounded to 2 MiB, backed
// by transparent huge pages where the kernel allows, and kept in a size-keyed cache after free
// (up to kMaxCachedBytes): a fresh 64 MiB output otherwise costs ~16k page faults per call,
// which measured here as more time than the 16M-element kernel itself.
class CpuAllocator final : public Allocator {
 public:
  static constexpr size_t kLargeBlock = size_t{1} << 20;
  static constexpr size_t kRound = size_t{2} << 20;
  static constexpr size_t kMaxCachedBytes = size_t{1} << 30;

  DataPtr allocate(size_t nbytes) override {
    if (nbytes == 0) return DataPtr{nullptr, [](void*) {}};
    if (nbytes < kLargeBlock) {
      void* p = std::aligned_alloc(64, (nbytes + 63) & ~size_t{63});
      KILN_CHECK(p != nullptr, "[CPU allocator] out of memory: could not allocate {} bytes", nbytes);
      return DataPtr{p, [](void* q) { std::free(q); }};
    }
    size_t rounded = (nbytes + kRound - 1) / kRound * kRound;
    void* p = take_cached(rounded);
    if (p == nullptr) {
      p = std::aligned_alloc(kRound, rounded);
      KILN_CHECK(p != nullptr, "[CPU allocator] out of memory: could not allocate {} bytes", nbytes);
      madvise(p, rounded, MADV_HUGEPAGE);
    }
    return DataPtr{p, [this, rounded](void* q) { give_back(q, rounded); }};
  }

 private:
  void* take_cached(size_t size) {
    std::lock_guard<std::mutex> lk(mutex_);
    auto it = cache_.find(size);
    if (it == cache_.end()) return nullptr;
    void* p = it->second;
    cache_.erase(it);
    cached_bytes_ -= size;
    return p;
  }
  void give_back(void* p, size_t size) {
    {
      std::lock_guard<std::mutex> lk(mutex_);
      if (cached_bytes_ + size <= kMaxCachedBytes) {
        cache_.emplace(size, p);
        cached_bytes_ += size;
        return;
      }
    }
    std::free(p);
  }

  std::mutex mutex_;
  std::multimap<size_t, void*> cache_;
  size_t cached_bytes_ = 0;
};

// Never destroyed: tensors held in static objects may be freed after static destructors ran.
CpuAllocator* const g_cpu_allocator = new CpuAllocator();
std::array<std::atomic<Allocator*>, kNumDeviceTypes> g_allocators{g_cpu_allocator, nullptr};

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
