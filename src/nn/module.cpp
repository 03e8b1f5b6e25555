// nn::Module: registration of parameters, buffers and submodules, the recursive walks
// (named_parameters, modules, apply), train/eval, to(), zero_grad and printing.
#include "kiln/nn/module.h"

#include <cxxabi.h>

#include <cstdlib>
#include <typeinfo>

#include "kiln/functions.h"

namespace kiln::nn {

namespace {
std::string demangle(const char* name) {
  int status = 0;
  char* out = abi::__cxa_demangle(name, nullptr, nullptr, &status);
  std::string s = status == 0 && out != nullptr ? std::string(out) : std::string(name);
  std::free(out);
  return s;
}
std::string join(const std::string& prefix, const std::string& name) {
  return prefix.empty() ? name : prefix + "." + name;
}
}  // namespace

Module::Module(std::string name) : name_(std::move(name)) {}
Module::Module() = default;

const std::string& Module::name() const noexcept {
  // Computed lazily: in the constructor the dynamic type is still Module.
  if (!name_) name_ = demangle(typeid(*this).name());
  return *name_;
}

std::shared_ptr<Module> Module::clone(const std::optional<Device>&) const {
  KILN_FAIL(
      "[{}::clone] clone() is not implemented for this module: derive it from "
      "kiln::nn::Cloneable<{}> (and implement reset()) instead of kiln::nn::Module",
      name(), name());
}

void Module::clone_(Module&, const std::optional<Device>&) {
  KILN_FAIL("[{}::clone] this submodule is not Cloneable, so its parent cannot be cloned", name());
}

void Module::apply(const ModuleApplyFunction& function) {
  function(*this);
  for (auto& child : children_) child.value()->apply(function);
}

void Module::apply(const ConstModuleApplyFunction& function) const {
  function(*this);
  for (const auto& child : children_) static_cast<const Module&>(*child.value()).apply(function);
}

void Module::apply(const NamedModuleApplyFunction& function, const std::string& name_prefix) {
  function(name_prefix, *this);
  for (auto& child : children_) child.value()->apply(function, join(name_prefix, child.key()));
}

std::vector<Tensor> Module::parameters(bool recurse) const {
  return named_parameters(recurse).values();
}

OrderedDict<std::string, Tensor> Module::named_parameters(bool recurse) const {
  OrderedDict<std::string, Tensor> result("Parameter");
  for (const auto& p : parameters_)
    if (p.value().defined()) result.insert(p.key(), p.value());
  if (recurse) {
    for (const auto& child : children_)
      for (const auto& p : child.value()->named_parameters(true))
        result.insert(join(child.key(), p.key()), p.value());
  }
  return result;
}

std::vector<Tensor> Module::buffers(bool recurse) const { return named_buffers(recurse).values(); }

OrderedDict<std::string, Tensor> Module::named_buffers(bool recurse) const {
  OrderedDict<std::string, Tensor> result("Buffer");
  for (const auto& b : buffers_)
    if (b.value().defined()) result.insert(b.key(), b.value());
  if (recurse) {
    for (const auto& child : children_)
      for (const auto& b : child.value()->named_buffers(true))
        result.insert(join(child.key(), b.key()), b.value());
  }
  return result;
}

std::vector<std::shared_ptr<Module>> Module::modules(bool include_self) const {
  return named_modules("", include_self).values();
}

OrderedDict<std::string, std::shared_ptr<Module>> Module::named_modules(
    const std::string& name_prefix, bool include_self) const {
  OrderedDict<std::string, std::shared_ptr<Module>> result("Module");
  if (include_self) {
    // const_pointer_cast: libtorch hands out mutable children from a const module too.
    auto self = std::const_pointer_cast<Module>(weak_from_this().lock());
    KILN_CHECK(self != nullptr,
               "[{}::named_modules] a module can only list itself when it is owned by a "
               "shared_ptr (a ModuleHolder or std::make_shared); use include_self=false",
               name());
    result.insert(name_prefix, self);
  }
  for (const auto& child : children_)
    for (const auto& m : child.value()->named_modules(join(name_prefix, child.key()), true))
      result.insert(m.key(), m.value());
  return result;
}

std::vector<std::shared_ptr<Module>> Module::children() const { return children_.values(); }

OrderedDict<std::string, std::shared_ptr<Module>> Module::named_children() const {
  return children_;
}

void Module::train(bool on) {
  for (auto& child : children_) child.value()->train(on);
  is_training_ = on;
}

void Module::eval() { train(false); }

bool Module::is_training() const noexcept { return is_training_; }

void Module::to_impl(std::optional<Device> device, std::optional<ScalarType> dtype) {
  NoGradGuard no_grad;
  for (auto& child : children_) child.value()->to_impl(device, dtype);
  auto convert = [&](Tensor& t) {
    if (!t.defined()) return;
    Device d = device.value_or(t.device());
    ScalarType s = dtype && t.is_floating_point() ? *dtype : t.dtype();
    if (d == t.device() && s == t.dtype()) return;
    t.set_data(t.to(d, s));
    Tensor& g = t.mutable_grad();
    if (g.defined()) g = g.to(d, s);
  };
  for (auto& p : parameters_) convert(p.value());
  for (auto& b : buffers_) convert(b.value());
}

void Module::to(Device device, ScalarType dtype, bool) { to_impl(device, dtype); }
void Module::to(ScalarType dtype, bool) { to_impl(std::nullopt, dtype); }
void Module::to(Device device, bool) { to_impl(device, std::nullopt); }

void Module::zero_grad(bool set_to_none) {
  for (auto& child : children_) child.value()->zero_grad(set_to_none);
  for (auto& p : parameters_) {
    if (!p.value().defined()) continue;
    Tensor& grad = p.value().mutable_grad();
    if (!grad.defined()) continue;
    if (set_to_none) {
      grad = Tensor();
    } else {
      NoGradGuard no_grad;
      grad = grad.detach();
      grad.zero_();
    }
  }
}

void Module::pretty_print(std::ostream& stream) const { stream << name(); }

bool Module::is_serializable() const { return true; }

void Module::check_new_name(const std::string& name, const char* what) const {
  KILN_CHECK(!name.empty(), "[{}::register_{}] the name must not be empty", this->name(), what);
  KILN_CHECK(name.find('.') == std::string::npos,
             "[{}::register_{}] the name must not contain a dot: got '{}'", this->name(), what,
             name);
  KILN_CHECK(!parameters_.contains(name) && !buffers_.contains(name) && !children_.contains(name),
             "[{}::register_{}] '{}' is already registered (as a parameter, buffer or "
             "submodule)",
             this->name(), what, name);
}

Tensor& Module::register_parameter(std::string name, Tensor tensor, bool requires_grad) {
  check_new_name(name, "parameter");
  if (tensor.defined()) {
    KILN_CHECK(!requires_grad || tensor.is_floating_point(),
               "[{}::register_parameter] parameter '{}' requires grad, so it must be floating "
               "point: got {}",
               this->name(), name, dtype_name(tensor.dtype()));
    tensor.set_requires_grad(requires_grad);
  }
  return parameters_.insert(std::move(name), std::move(tensor));
}

Tensor& Module::register_buffer(std::string name, Tensor tensor) {
  check_new_name(name, "buffer");
  return buffers_.insert(std::move(name), std::move(tensor));
}

void Module::register_module_ptr(std::string name, std::shared_ptr<Module> module) {
  check_new_name(name, "module");
  KILN_CHECK(module != nullptr, "[{}::register_module] got a null module for '{}'", this->name(),
             name);
  children_.insert(std::move(name), std::move(module));
}

void Module::unregister_module(const std::string& name) {
  KILN_CHECK(children_.contains(name), "[{}::unregister_module] there is no submodule named '{}'",
             this->name(), name);
  children_.erase(name);
}

void Module::pretty_print_recursive(std::ostream& stream, const std::string& indentation) const {
  pretty_print(stream);
  if (children_.is_empty()) return;
  stream << "(\n";
  const std::string next = indentation + "  ";
  for (const auto& child : children_) {
    stream << next << "(" << child.key() << "): ";
    child.value()->pretty_print_recursive(stream, next);
    stream << "\n";
  }
  stream << indentation << ")";
}

std::ostream& operator<<(std::ostream& stream, const Module& module) {
  module.pretty_print_recursive(stream, "");
  return stream;
}

}  // namespace kiln::nn
