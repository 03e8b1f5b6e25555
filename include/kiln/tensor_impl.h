// TensorImpl: the state behind a Tensor handle - storage, sizes, strides, offset, dtype.
// Device-neutral: nothing here assumes CPU memory; kernels are picked by device at dispatch.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "kiln/core/allocator.h"
#include "kiln/core/array_ref.h"
#include "kiln/core/dtype.h"

namespace kiln {

namespace autograd {
struct AutogradMeta;  // defined by the autograd layer
}

class TensorImpl {
 public:
  TensorImpl(Storage storage, ScalarType dtype, std::vector<int64_t> sizes,
             std::vector<int64_t> strides, int64_t storage_offset);

  IntArrayRef sizes() const { return sizes_; }
  IntArrayRef strides() const { return strides_; }
  int64_t dim() const { return static_cast<int64_t>(sizes_.size()); }
  int64_t numel() const { return numel_; }
  ScalarType dtype() const { return dtype_; }
  const Device& device() const { return storage_->device(); }
  int64_t storage_offset() const { return storage_offset_; }
  const Storage& storage() const { return storage_; }
  bool is_contiguous() const { return is_contiguous_; }

  /// Address of element 0 (storage base + offset), untyped.
  void* data() const {
    return static_cast<char*>(storage_->data()) +
           storage_offset_ * static_cast<int64_t>(element_size(dtype_));
  }

  /// Replaces sizes/strides/offset (used by in-place view ops like squeeze_ and by resize).
  void set_sizes_and_strides(std::vector<int64_t> sizes, std::vector<int64_t> strides,
                             int64_t storage_offset);

  /// Points this tensor at other memory (used when an out= tensor is resized).
  void set_storage(Storage storage) { storage_ = std::move(storage); }

  /// Takes src's storage, dtype, sizes, strides and offset (Tensor::set_data); autograd state
  /// and requires_grad stay.
  void set_data_from(const TensorImpl& src);

  bool requires_grad() const { return requires_grad_; }
  void set_requires_grad(bool r) { requires_grad_ = r; }

  /// Version counter shared with every view of the same storage (it lives in the storage);
  /// bumped by in-place writes so autograd can tell when a tensor it saved was modified.
  uint32_t version() const { return storage_->version(); }
  void bump_version() { storage_->bump_version(); }

  /// Autograd's per-tensor state (grad, grad_fn, hooks); null until the autograd layer sets it.
  std::shared_ptr<autograd::AutogradMeta> autograd_meta;

 private:
  void refresh();

  Storage storage_;
  std::vector<int64_t> sizes_;
  std::vector<int64_t> strides_;
  int64_t storage_offset_;
  int64_t numel_ = 1;
  ScalarType dtype_;
  bool is_contiguous_ = true;
  bool requires_grad_ = false;
};

}  // namespace kiln
