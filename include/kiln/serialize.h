// kiln::save / kiln::load (libtorch's torch::save / torch::load): tensors, lists of tensors,
// modules (parameters and buffers by dotted name) and optimizers (options and state) to and
// from Kiln's versioned, checksummed archive format (docs/serialization.md).
#pragma once

#include <memory>
#include <type_traits>
#include <utility>
#include <vector>

#include "kiln/nn/module.h"
#include "kiln/optim/optimizer.h"
#include "kiln/serialize/archive.h"

namespace kiln::serialize {

/// A single tensor, under key "0".
OutputArchive& operator<<(OutputArchive& archive, const Tensor& tensor);
/// Replaces tensor with the one under key "0".
InputArchive& operator>>(InputArchive& archive, Tensor& tensor);
/// A module's parameters and buffers, nested by submodule (Module::save).
OutputArchive& operator<<(OutputArchive& archive, const nn::Module& module);
/// Copies parameters and buffers into the module; every name must be present with the same
/// sizes (Module::load).
InputArchive& operator>>(InputArchive& archive, nn::Module& module);
template <typename M, std::enable_if_t<std::is_base_of_v<nn::Module, M>, int> = 0>
OutputArchive& operator<<(OutputArchive& archive, const std::shared_ptr<M>& module) {
  return archive << static_cast<const nn::Module&>(*module);
}
template <typename M, std::enable_if_t<std::is_base_of_v<nn::Module, M>, int> = 0>
InputArchive& operator>>(InputArchive& archive, const std::shared_ptr<M>& module) {
  return archive >> static_cast<nn::Module&>(*module);
}
template <typename M>
OutputArchive& operator<<(OutputArchive& archive, const nn::ModuleHolder<M>& module) {
  return archive << *module.ptr();
}
template <typename M>
InputArchive& operator>>(InputArchive& archive, nn::ModuleHolder<M>& module) {
  return archive >> static_cast<nn::Module&>(*module.ptr());
}
/// Every group's options and every parameter's state (Optimizer::save).
OutputArchive& operator<<(OutputArchive& archive, const optim::Optimizer& optimizer);
InputArchive& operator>>(InputArchive& archive, optim::Optimizer& optimizer);

}  // namespace kiln::serialize

namespace kiln {

/// Saves value (a Tensor, module holder, module shared_ptr or reference, or optimizer) to
/// args: a file path or a std::ostream.
template <typename Value, typename... SaveToArgs>
void save(const Value& value, SaveToArgs&&... args) {
  serialize::OutputArchive archive;
  archive << value;
  archive.save_to(std::forward<SaveToArgs>(args)...);
}

/// Saves tensors under keys "0", "1", ...
template <typename... SaveToArgs>
void save(const std::vector<Tensor>& tensors, SaveToArgs&&... args) {
  serialize::OutputArchive archive;
  for (size_t i = 0; i < tensors.size(); ++i) archive.write(std::to_string(i), tensors[i]);
  archive.save_to(std::forward<SaveToArgs>(args)...);
}

/// Loads into value from args: a file path or std::istream (then optionally a Device).
/// Modules and optimizers must have the structure that was saved; kiln::Error says what
/// differs.
template <typename Value, typename... LoadFromArgs>
void load(Value& value, LoadFromArgs&&... args) {
  serialize::InputArchive archive;
  archive.load_from(std::forward<LoadFromArgs>(args)...);
  archive >> value;
}

/// Loads the tensors saved by save(std::vector<Tensor>).
template <typename... LoadFromArgs>
void load(std::vector<Tensor>& tensors, LoadFromArgs&&... args) {
  serialize::InputArchive archive;
  archive.load_from(std::forward<LoadFromArgs>(args)...);
  tensors.clear();
  for (size_t i = 0;; ++i) {
    Tensor t;
    if (!archive.try_read(std::to_string(i), t)) break;
    tensors.push_back(std::move(t));
  }
}

}  // namespace kiln
