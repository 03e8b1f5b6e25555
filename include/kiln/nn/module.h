// kiln::nn::Module, the base of every layer (libtorch's torch::nn::Module): named parameters,
// buffers and submodules, train/eval, to(device/dtype), zero_grad, printing; ModuleHolder and
// KILN_MODULE (TORCH_MODULE) for the `Linear fc(3, 4); fc->weight` handle style; and Cloneable.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "kiln/autograd/grad_mode.h"
#include "kiln/nn/ordered_dict.h"
#include "kiln/tensor.h"

namespace kiln::serialize {
class OutputArchive;
class InputArchive;
}  // namespace kiln::serialize

namespace kiln::nn {

template <typename Contained>
class ModuleHolder;

namespace detail {
/// What Module::as<M>() returns a pointer to: M itself, or the Impl of a holder type M.
template <typename M, typename = void>
struct as_type {
  using type = M;
};
template <typename M>
struct as_type<M, std::void_t<typename M::ContainedType>> {
  using type = typename M::ContainedType;
};
}  // namespace detail

/// The base class of all modules. Subclasses register their parameters, buffers and submodules
/// in their constructor (or reset()) and define forward().
class Module : public std::enable_shared_from_this<Module> {
 public:
  using ModuleApplyFunction = std::function<void(Module&)>;
  using ConstModuleApplyFunction = std::function<void(const Module&)>;
  using NamedModuleApplyFunction = std::function<void(const std::string&, Module&)>;

  /// name is what printing and errors call this module; by default the demangled class name.
  explicit Module(std::string name);
  Module();
  Module(const Module&) = default;
  Module& operator=(const Module&) = default;
  Module(Module&&) noexcept = default;
  Module& operator=(Module&&) noexcept = default;
  virtual ~Module() = default;

  /// "kiln::nn::LinearImpl" (the class name unless given to the constructor).
  const std::string& name() const noexcept;

  /// A deep copy with its own parameters (modules derived from Cloneable); device moves the
  /// copy there.
  virtual std::shared_ptr<Module> clone(const std::optional<Device>& device = std::nullopt) const;

  /// Calls function on this module and every descendant (pre-order).
  void apply(const ModuleApplyFunction& function);
  void apply(const ConstModuleApplyFunction& function) const;
  /// Like apply, with each module's dotted name relative to this one ("" for this one).
  void apply(const NamedModuleApplyFunction& function, const std::string& name_prefix = "");

  /// Parameters of this module and (recurse) its descendants, in registration order.
  std::vector<Tensor> parameters(bool recurse = true) const;
  /// The same with dotted names: "weight", "0.bias", "encoder.layers.1.weight".
  OrderedDict<std::string, Tensor> named_parameters(bool recurse = true) const;
  std::vector<Tensor> buffers(bool recurse = true) const;
  OrderedDict<std::string, Tensor> named_buffers(bool recurse = true) const;
  /// This module (include_self) and every descendant, pre-order.
  std::vector<std::shared_ptr<Module>> modules(bool include_self = true) const;
  OrderedDict<std::string, std::shared_ptr<Module>> named_modules(
      const std::string& name_prefix = "", bool include_self = true) const;
  /// Direct submodules.
  std::vector<std::shared_ptr<Module>> children() const;
  OrderedDict<std::string, std::shared_ptr<Module>> named_children() const;

  /// Training mode for this module and its descendants (Dropout and BatchNorm behave
  /// differently in training).
  virtual void train(bool on = true);
  /// train(false).
  void eval();
  virtual bool is_training() const noexcept;

  /// Moves and/or converts every parameter and buffer in place (tensor handles held elsewhere
  /// see the change). A dtype converts only floating-point tensors.
  virtual void to(Device device, ScalarType dtype, bool non_blocking = false);
  virtual void to(ScalarType dtype, bool non_blocking = false);
  virtual void to(Device device, bool non_blocking = false);

  /// Clears the gradients of every parameter (set_to_none: undefined, else zero-filled).
  virtual void zero_grad(bool set_to_none = true);

  /// Writes parameters and buffers (recursively, by name) to an archive (src/serialize).
  virtual void save(serialize::OutputArchive& archive) const;
  /// Reads them back into the existing tensors; names and shapes must match.
  virtual void load(serialize::InputArchive& archive);

  /// One line describing this module: "kiln::nn::Linear(in_features=3, out_features=4, ...)".
  virtual void pretty_print(std::ostream& stream) const;
  /// False for modules whose state cannot be saved.
  virtual bool is_serializable() const;

  /// The module as ModuleType (an Impl class or a holder's Impl), or null.
  template <typename ModuleType>
  typename detail::as_type<ModuleType>::type* as() noexcept {
    return dynamic_cast<typename detail::as_type<ModuleType>::type*>(this);
  }
  template <typename ModuleType>
  const typename detail::as_type<ModuleType>::type* as() const noexcept {
    return dynamic_cast<const typename detail::as_type<ModuleType>::type*>(this);
  }

  /// Adds a parameter under name (no dots) and returns a reference to the stored handle.
  /// An undefined tensor registers an absent optional parameter (e.g. bias=false).
  Tensor& register_parameter(std::string name, Tensor tensor, bool requires_grad = true);
  /// Adds a buffer: state that is saved and moved with the module but not trained.
  Tensor& register_buffer(std::string name, Tensor tensor);
  /// Adds a submodule; returns it (the same holder or pointer that was passed).
  template <typename ModuleType>
  std::shared_ptr<ModuleType> register_module(std::string name, std::shared_ptr<ModuleType> module);
  template <typename ModuleType>
  ModuleHolder<ModuleType> register_module(std::string name, ModuleHolder<ModuleType> holder);
  /// Replaces an already registered submodule.
  template <typename ModuleType>
  std::shared_ptr<ModuleType> replace_module(const std::string& name,
                                             std::shared_ptr<ModuleType> module);
  template <typename ModuleType>
  ModuleHolder<ModuleType> replace_module(const std::string& name, ModuleHolder<ModuleType> holder);
  void unregister_module(const std::string& name);

 protected:
  /// Used by Cloneable::clone: copy other's state into this module.
  virtual void clone_(Module& other, const std::optional<Device>& device);

  OrderedDict<std::string, Tensor> parameters_{"Parameter"};
  OrderedDict<std::string, Tensor> buffers_{"Buffer"};
  OrderedDict<std::string, std::shared_ptr<Module>> children_{"Submodule"};

 private:
  template <typename Derived>
  friend class Cloneable;
  friend std::ostream& operator<<(std::ostream& stream, const Module& module);

  void check_new_name(const std::string& name, const char* what) const;
  void register_module_ptr(std::string name, std::shared_ptr<Module> module);
  void pretty_print_recursive(std::ostream& stream, const std::string& indentation) const;
  void to_impl(std::optional<Device> device, std::optional<ScalarType> dtype);

  mutable std::optional<std::string> name_;
  bool is_training_ = true;
};

/// Prints the module and its children, indented, like libtorch.
std::ostream& operator<<(std::ostream& stream, const Module& module);

/// A module whose clone() deep-copies it: Derived must implement reset(), which (re)creates
/// every parameter, buffer and submodule; its constructor calls reset().
template <typename Derived>
class Cloneable : public Module {
 public:
  using Module::Module;

  /// (Re)initialises all state from the module's options.
  virtual void reset() = 0;

  std::shared_ptr<Module> clone(const std::optional<Device>& device = std::nullopt) const override {
    NoGradGuard no_grad;
    const auto& self = static_cast<const Derived&>(*this);
    auto copy = std::make_shared<Derived>(self);
    copy->parameters_.clear();
    copy->buffers_.clear();
    copy->children_.clear();
    copy->reset();
    KILN_CHECK(copy->parameters_.size() == parameters_.size() &&
                   copy->buffers_.size() == buffers_.size() &&
                   copy->children_.size() == children_.size(),
               "[{}::clone] reset() registered a different set of parameters, buffers or "
               "submodules than the original has: got {}/{}/{}, expected {}/{}/{}",
               name(), copy->parameters_.size(), copy->buffers_.size(), copy->children_.size(),
               parameters_.size(), buffers_.size(), children_.size());
    auto clone_tensor = [&](const Tensor& t) {
      if (!t.defined()) return Tensor();
      return device && t.device() != *device ? t.to(*device, false, true) : t.clone();
    };
    for (const auto& p : parameters_) {
      Tensor& dst = copy->parameters_[p.key()];
      if (dst.defined() && p.value().defined()) dst.set_data(clone_tensor(p.value()));
    }
    for (const auto& b : buffers_) {
      Tensor& dst = copy->buffers_[b.key()];
      if (dst.defined() && b.value().defined()) dst.set_data(clone_tensor(b.value()));
    }
    for (const auto& c : children_) copy->children_[c.key()]->clone_(*c.value(), device);
    return copy;
  }

 private:
  void clone_(Module& other, const std::optional<Device>& device) final {
    auto cloned = std::dynamic_pointer_cast<Derived>(other.clone(device));
    KILN_CHECK(cloned != nullptr, "[{}::clone] a submodule changed type while cloning: got {}",
               name(), other.name());
    static_cast<Derived&>(*this) = std::move(*cloned);
  }
};

// ---- ModuleHolder --------------------------------------------------------------------------

namespace detail {
template <typename T, typename Contained>
struct is_holder_of : std::false_type {};
template <typename Contained>
struct is_holder_of<ModuleHolder<Contained>, Contained> : std::true_type {};
}  // namespace detail

/// A shared handle to a module (libtorch's ModuleHolder): `Linear fc(3, 4); fc->weight;
/// fc(x)`. Constructor arguments are forwarded to the Impl; `Linear fc{nullptr}` is empty.
template <typename Contained>
class ModuleHolder {
 public:
  using ContainedType = Contained;

  /// Default-constructs the Impl (only for Impls with a default constructor; otherwise
  /// write `Linear fc{nullptr};` and assign later).
  ModuleHolder() : impl_(default_construct()) {}
  /// The empty holder.
  ModuleHolder(std::nullptr_t) {}  // NOLINT
  /// Constructs the Impl from the arguments.
  template <typename Head, typename... Tail,
            typename = std::enable_if_t<!(std::is_base_of_v<ModuleHolder, std::decay_t<Head>> &&
                                          sizeof...(Tail) == 0)>>
  explicit ModuleHolder(Head&& head, Tail&&... tail)
      : impl_(std::make_shared<Contained>(std::forward<Head>(head), std::forward<Tail>(tail)...)) {}
  /// Wraps an existing Impl.
  ModuleHolder(std::shared_ptr<Contained> module) : impl_(std::move(module)) {}  // NOLINT

  explicit operator bool() const noexcept { return !is_empty(); }
  Contained* operator->() { return get(); }
  const Contained* operator->() const { return get(); }
  Contained& operator*() { return *get(); }
  const Contained& operator*() const { return *get(); }
  const std::shared_ptr<Contained>& ptr() const { return impl_; }
  Contained* get() {
    check_not_empty();
    return impl_.get();
  }
  const Contained* get() const {
    check_not_empty();
    return impl_.get();
  }
  /// Calls the Impl's forward.
  template <typename... Args, typename C = Contained>
  auto operator()(Args&&... args)
      -> decltype(std::declval<C&>().forward(std::forward<Args>(args)...)) {
    return get()->forward(std::forward<Args>(args)...);
  }
  /// Indexes containers (Sequential, ModuleList).
  template <typename Arg>
  decltype(auto) operator[](Arg&& arg) {
    return (*get())[std::forward<Arg>(arg)];
  }
  bool is_empty() const noexcept { return impl_ == nullptr; }

 protected:
  std::shared_ptr<Contained> impl_;

 private:
  static std::shared_ptr<Contained> default_construct() {
    if constexpr (std::is_default_constructible_v<Contained>) {
      return std::make_shared<Contained>();
    } else {
      static_assert(std::is_default_constructible_v<Contained>,
                    "This module has no default constructor: give it arguments, or use "
                    "`Name module{nullptr};` for an empty holder");
      return nullptr;
    }
  }
  void check_not_empty() const {
    KILN_CHECK(impl_ != nullptr,
               "[ModuleHolder] accessing an empty module holder of {} (constructed from "
               "nullptr); assign a module to it first",
               typeid(Contained).name());
  }
};

/// Prints the held module.
template <typename Contained>
std::ostream& operator<<(std::ostream& stream, const ModuleHolder<Contained>& holder) {
  return stream << *holder;
}

// ---- Module templates ------------------------------------------------------------------------

template <typename ModuleType>
std::shared_ptr<ModuleType> Module::register_module(std::string name,
                                                    std::shared_ptr<ModuleType> module) {
  register_module_ptr(std::move(name), module);
  return module;
}
template <typename ModuleType>
ModuleHolder<ModuleType> Module::register_module(std::string name,
                                                 ModuleHolder<ModuleType> holder) {
  register_module_ptr(std::move(name), holder.ptr());
  return holder;
}
template <typename ModuleType>
std::shared_ptr<ModuleType> Module::replace_module(const std::string& name,
                                                   std::shared_ptr<ModuleType> module) {
  KILN_CHECK(module != nullptr, "[{}::replace_module] got a null module for '{}'", this->name(),
             name);
  children_[name] = module;
  return module;
}
template <typename ModuleType>
ModuleHolder<ModuleType> Module::replace_module(const std::string& name,
                                                ModuleHolder<ModuleType> holder) {
  replace_module(name, holder.ptr());
  return holder;
}

}  // namespace kiln::nn

/// Defines Name as a ModuleHolder of ImplType (like TORCH_MODULE_IMPL).
#define KILN_MODULE_IMPL(Name, ImplType)                                \
  class Name : public ::kiln::nn::ModuleHolder<ImplType> {              \
   public:                                                              \
    using ::kiln::nn::ModuleHolder<ImplType>::ModuleHolder;             \
    using Impl = ImplType;                                              \
    Name() = default;                                                   \
    /** From the holder register_module returns. */                     \
    Name(const ::kiln::nn::ModuleHolder<ImplType>& holder) /* NOLINT */ \
        : ::kiln::nn::ModuleHolder<ImplType>(holder.ptr()) {}           \
  }

/// Defines Name as the holder of NameImpl: `KILN_MODULE(Net);` after `struct NetImpl : Module`.
#define KILN_MODULE(Name) KILN_MODULE_IMPL(Name, Name##Impl)
