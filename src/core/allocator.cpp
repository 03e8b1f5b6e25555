// The allocator registry and the CPU allocator (64-byte aligned, so kernels can use aligned
// vector loads at the start of a buffer), plus StorageImpl.
#include "kiln/core/allocator.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cstdlib>
#include <map>
#include <mutex>
#include <vector>

#include <sys/mman.h>

#include "kiln/core/error.h"

namespace kiln {
namespace {

// Three regimes, so that a training step that allocates the same sizes every iteration reuses
// its memory instead of faulting it in again each time:
// - below 64 KiB: aligned_alloc (glibc's bins serve these without system calls);
// - 64 KiB .. 1 MiB: rounded up to a size class (four per power of two, so at most 25% waste)
//   and kept in a per-class free list after free, up to kMaxMidCachedBytes in all. glibc hands
//   such blocks out by mmap or from the top of the heap and returns them with munmap / a heap
//   trim on free, so without the cache every step page-faults them in again (measured: ~15% of
//   the digits MLP training step);
// - 1 MiB and more: rounded to 2 MiB, backed by transparent huge pages where the kernel allows,
//   and kept in a size-keyed cache after free (up to kMaxCachedBytes): a fresh 64 MiB output
//   otherwise costs ~16k page faults per call, more than the 16M-element kernel itself.
class CpuAllocator final : public Allocator {
 public:
  static constexpr size_t kMidBlock = size_t{64} << 10;
  static constexpr size_t kLargeBlock = size_t{1} << 20;
  static constexpr size_t kRound = size_t{2} << 20;
  static constexpr size_t kMaxCachedBytes = size_t{1} << 30;
  static constexpr size_t kMaxMidCachedBytes = size_t{256} << 20;
  // Size classes below 1 MiB: 16 KiB * (4 + q) * 2^e for octaves e = 0..3 and q = 0..3 (64,
  // 80, 96, 112, 128, 160, ... 896 KiB), then 1 MiB itself.
  static constexpr int kClassesPerOctave = 4;
  static constexpr int kMidClasses = 4 * kClassesPerOctave + 1;
  static constexpr size_t kUnit = kMidBlock / kClassesPerOctave;

  DataPtr allocate(size_t nbytes) override {
    if (nbytes == 0) return DataPtr{nullptr, [](void*) {}};
    if (nbytes < kMidBlock) {
      void* p = std::aligned_alloc(64, (nbytes + 63) & ~size_t{63});
      KILN_CHECK(p != nullptr, "[CPU allocator] out of memory: could not allocate {} bytes", nbytes);
      return DataPtr{p, [](void* q) { std::free(q); }};
    }
    if (nbytes < kLargeBlock) {
      const int c = mid_class(nbytes);
      void* p = take_mid(c);
      if (p == nullptr) {
        p = std::aligned_alloc(64, mid_class_size(c));
        KILN_CHECK(p != nullptr, "[CPU allocator] out of memory: could not allocate {} bytes",
                   nbytes);
      }
      return DataPtr{p, [this, c](void* q) { give_back_mid(q, c); }};
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

  // The smallest class holding n bytes, kMidBlock <= n < kLargeBlock.
  static int mid_class(size_t n) {
    const size_t units = (n + kUnit - 1) / kUnit;  // 4 .. 64
    int e = static_cast<int>(std::bit_width(units)) - 3;  // units in [4 * 2^e, 8 * 2^e)
    int q = static_cast<int>((units + (size_t{1} << e) - 1) >> e) - 4;  // 0 .. 4
    if (q == kClassesPerOctave) {
      ++e;
      q = 0;
    }
    return e * kClassesPerOctave + q;
  }
  static size_t mid_class_size(int c) {
    const int e = c / kClassesPerOctave, q = c % kClassesPerOctave;
    return (kUnit * static_cast<size_t>(4 + q)) << e;
  }

 private:
  void* take_mid(int c) {
    std::lock_guard<std::mutex> lk(mutex_);
    std::vector<void*>& list = mid_free_[c];
    if (list.empty()) return nullptr;
    void* p = list.back();
    list.pop_back();
    mid_cached_bytes_ -= mid_class_size(c);
    return p;
  }
  void give_back_mid(void* p, int c) {
    {
      std::lock_guard<std::mutex> lk(mutex_);
      const size_t size = mid_class_size(c);
      if (mid_cached_bytes_ + size <= kMaxMidCachedBytes) {
        mid_free_[c].push_back(p);
        mid_cached_bytes_ += size;
        return;
      }
    }
    std::free(p);
  }
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
  std::array<std::vector<void*>, kMidClasses> mid_free_;
  size_t mid_cached_bytes_ = 0;
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
