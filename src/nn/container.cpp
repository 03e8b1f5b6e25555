// Sequential, ModuleList and Functional: registration of the held modules as children, cloning
// (containers have no reset() that recreates their children, so they clone each one), printing.
#include "kiln/nn/modules/container.h"

namespace kiln::nn {

// ---- Sequential ------------------------------------------------------------------------------

SequentialImpl::SequentialImpl(std::initializer_list<NamedAnyModule> named_modules) {
  for (const NamedAnyModule& m : named_modules) push_back_any(m.name, m.module);
}

void SequentialImpl::push_back_any(std::string name, AnyModule module) {
  KILN_CHECK(!module.is_empty(), "[Sequential] got an empty module for '{}'", name);
  register_module(name, module.ptr());
  modules_.push_back(std::move(module));
}

std::shared_ptr<Module> SequentialImpl::clone(const std::optional<Device>& device) const {
  auto copy = std::make_shared<SequentialImpl>();
  const auto names = children_.keys();
  for (size_t i = 0; i < modules_.size(); ++i)
    copy->push_back_any(names[i], modules_[i].clone(device));
  return copy;
}

void SequentialImpl::pretty_print(std::ostream& stream) const { stream << "kiln::nn::Sequential"; }

Tensor SequentialImpl::forward(const Tensor& input) {
  Tensor x = input;
  for (const AnyModule& m : modules_) x = m.forward(x);
  return x;
}

void SequentialImpl::extend(const SequentialImpl& other) {
  for (const AnyModule& m : other.modules_) push_back(m);
}

const AnyModule& SequentialImpl::at_index(size_t index) const {
  KILN_CHECK(index < modules_.size(), "[Sequential] index {} is out of range for {} modules", index,
             modules_.size());
  return modules_[index];
}

// ---- ModuleList ------------------------------------------------------------------------------

std::shared_ptr<Module> ModuleListImpl::clone(const std::optional<Device>& device) const {
  auto copy = std::make_shared<ModuleListImpl>();
  for (const auto& m : modules_) copy->push_back(m->clone(device));
  return copy;
}

void ModuleListImpl::pretty_print(std::ostream& stream) const { stream << "kiln::nn::ModuleList"; }

void ModuleListImpl::push_back(std::shared_ptr<Module> module) {
  KILN_CHECK(module != nullptr, "[ModuleList] got a null module");
  register_module(std::to_string(modules_.size()), module);
  modules_.push_back(std::move(module));
}

void ModuleListImpl::insert(size_t index, std::shared_ptr<Module> module) {
  KILN_CHECK(module != nullptr, "[ModuleList] got a null module");
  KILN_CHECK(index <= modules_.size(),
             "[ModuleList] insert index {} is out of range, expected at most {}", index,
             modules_.size());
  if (index == modules_.size()) return push_back(std::move(module));
  modules_.insert(modules_.begin() + static_cast<std::ptrdiff_t>(index), module);
  // Children are named by position: rename from index on.
  for (size_t i = index; i + 1 < modules_.size(); ++i)
    replace_module(std::to_string(i), modules_[i]);
  register_module(std::to_string(modules_.size() - 1), modules_.back());
}

void ModuleListImpl::extend(const ModuleListImpl& other) {
  for (const auto& m : other.modules_) push_back(m);
}

std::shared_ptr<Module> ModuleListImpl::ptr(size_t index) const {
  KILN_CHECK(index < modules_.size(), "[ModuleList] index {} is out of range for {} modules", index,
             modules_.size());
  return modules_[index];
}

// ---- Functional ------------------------------------------------------------------------------

FunctionalImpl::FunctionalImpl(Function function) : function_(std::move(function)) {
  KILN_CHECK(static_cast<bool>(function_), "[Functional] got an empty function");
}

void FunctionalImpl::pretty_print(std::ostream& stream) const {
  stream << "kiln::nn::Functional()";
}

Tensor FunctionalImpl::forward(const Tensor& input) { return function_(input); }

}  // namespace kiln::nn
