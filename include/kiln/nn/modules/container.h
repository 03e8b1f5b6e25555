// Containers: AnyModule (a type-erased module with Tensor forward(Tensor)), Sequential (a chain,
// children named "0", "1", ... or given names), ModuleList (an indexable list) and Functional
// (a function as a module), with libtorch's spelling.
#pragma once

#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "kiln/nn/module.h"

namespace kiln::nn {

namespace detail {
template <typename M>
concept TensorForward = requires(M& m, const Tensor& x) {
  { m.forward(x) } -> std::convertible_to<Tensor>;
};
}  // namespace detail

/// Any module whose forward maps one Tensor to a Tensor, behind one type (libtorch's AnyModule;
/// Kiln's is limited to that signature). Copies share the module.
class AnyModule {
 public:
  AnyModule() = default;
  template <typename M, std::enable_if_t<std::is_base_of_v<Module, M>, int> = 0>
  explicit AnyModule(std::shared_ptr<M> module) : content_(make_content(std::move(module))) {}
  template <typename M>
  explicit AnyModule(const ModuleHolder<M>& holder) : AnyModule(holder.ptr()) {}
  template <typename M, std::enable_if_t<std::is_base_of_v<Module, std::decay_t<M>>, int> = 0>
  explicit AnyModule(M&& module)
      : AnyModule(std::make_shared<std::decay_t<M>>(std::forward<M>(module))) {}

  /// Runs the module's forward.
  Tensor forward(const Tensor& input) const {
    check();
    return content_->forward(input);
  }
  /// A deep copy (Cloneable modules).
  AnyModule clone(const std::optional<Device>& device = std::nullopt) const {
    check();
    AnyModule copy;
    copy.content_ = content_->clone(device);
    return copy;
  }
  std::shared_ptr<Module> ptr() const {
    check();
    return content_->module();
  }
  /// The module as T (an Impl type); throws on the wrong type.
  template <typename T>
  std::shared_ptr<T> ptr() const {
    auto p = std::dynamic_pointer_cast<T>(ptr());
    KILN_CHECK(p != nullptr, "[AnyModule] the module is a {}, not the requested type",
               ptr()->name());
    return p;
  }
  template <typename T>
  T& get() const {
    return *ptr<T>();
  }
  bool is_empty() const noexcept { return content_ == nullptr; }

 private:
  struct Content {
    virtual ~Content() = default;
    virtual Tensor forward(const Tensor& input) = 0;
    virtual std::shared_ptr<Content> clone(const std::optional<Device>& device) const = 0;
    virtual std::shared_ptr<Module> module() const = 0;
  };
  template <typename M>
  struct ContentImpl final : Content {
    explicit ContentImpl(std::shared_ptr<M> m) : m_(std::move(m)) {}
    Tensor forward(const Tensor& input) override { return m_->forward(input); }
    std::shared_ptr<Content> clone(const std::optional<Device>& device) const override {
      return std::make_shared<ContentImpl>(std::dynamic_pointer_cast<M>(m_->clone(device)));
    }
    std::shared_ptr<Module> module() const override { return m_; }
    std::shared_ptr<M> m_;
  };
  template <typename M>
  static std::shared_ptr<Content> make_content(std::shared_ptr<M> module) {
    static_assert(detail::TensorForward<M>,
                  "AnyModule/Sequential hold modules with `Tensor forward(const Tensor&)`");
    KILN_CHECK(module != nullptr, "[AnyModule] got a null module");
    return std::make_shared<ContentImpl<M>>(std::move(module));
  }
  void check() const {
    KILN_CHECK(content_ != nullptr, "[AnyModule] the AnyModule is empty (holds no module)");
  }

  std::shared_ptr<Content> content_;
};

/// A name and a module, for `Sequential({{"fc", Linear(2, 3)}, {"act", ReLU()}})`.
struct NamedAnyModule {
  template <typename M>
  NamedAnyModule(std::string name, M&& module)  // NOLINT
      : name(std::move(name)), module(std::forward<M>(module)) {}
  NamedAnyModule(std::string name, AnyModule module)
      : name(std::move(name)), module(std::move(module)) {}
  std::string name;
  AnyModule module;
};

/// Runs its modules in order, each one's output the next one's input.
class SequentialImpl : public Cloneable<SequentialImpl> {
 public:
  using Iterator = std::vector<AnyModule>::iterator;
  using ConstIterator = std::vector<AnyModule>::const_iterator;

  SequentialImpl() = default;
  /// Modules (holders, shared_ptrs or AnyModules) named "0", "1", ...
  template <typename First, typename... Rest,
            std::enable_if_t<!std::is_same_v<std::decay_t<First>, SequentialImpl>, int> = 0>
  explicit SequentialImpl(First&& first, Rest&&... rest) {
    push_back(std::forward<First>(first));
    (push_back(std::forward<Rest>(rest)), ...);
  }
  /// Named modules.
  explicit SequentialImpl(std::initializer_list<NamedAnyModule> named_modules);
  SequentialImpl(const SequentialImpl&) = default;
  SequentialImpl& operator=(const SequentialImpl&) = default;

  std::shared_ptr<Module> clone(const std::optional<Device>& device = std::nullopt) const override;
  void reset() override {}
  void pretty_print(std::ostream& stream) const override;

  /// The modules applied in order (the input itself when empty).
  Tensor forward(const Tensor& input);

  /// Appends a module named by its position.
  template <typename M>
  void push_back(M&& module) {
    push_back(std::to_string(modules_.size()), std::forward<M>(module));
  }
  template <typename M>
  void push_back(std::string name, M&& module) {
    if constexpr (std::is_same_v<std::decay_t<M>, AnyModule>)
      push_back_any(std::move(name), module);
    else
      push_back_any(std::move(name), AnyModule(std::forward<M>(module)));
  }
  /// Appends the modules of other (sharing them).
  void extend(const SequentialImpl& other);

  Iterator begin() { return modules_.begin(); }
  ConstIterator begin() const { return modules_.begin(); }
  Iterator end() { return modules_.end(); }
  ConstIterator end() const { return modules_.end(); }
  size_t size() const noexcept { return modules_.size(); }
  bool is_empty() const noexcept { return modules_.empty(); }

  /// The module at index as T.
  template <typename T>
  T& at(size_t index) {
    return *ptr<T>(index);
  }
  template <typename T>
  std::shared_ptr<T> ptr(size_t index) const {
    return at_index(index).ptr<T>();
  }
  std::shared_ptr<Module> ptr(size_t index) const { return at_index(index).ptr(); }
  std::shared_ptr<Module> operator[](size_t index) const { return ptr(index); }

 private:
  void push_back_any(std::string name, AnyModule module);
  const AnyModule& at_index(size_t index) const;
  std::vector<AnyModule> modules_;
};

/// The holder of SequentialImpl; also constructible from named modules.
class Sequential : public ModuleHolder<SequentialImpl> {
 public:
  using ModuleHolder<SequentialImpl>::ModuleHolder;
  using Impl = SequentialImpl;
  Sequential() : ModuleHolder() {}
  Sequential(std::initializer_list<NamedAnyModule> named_modules)  // NOLINT
      : ModuleHolder(std::make_shared<SequentialImpl>(named_modules)) {}
  /// From the holder register_module returns.
  Sequential(const ModuleHolder<SequentialImpl>& holder) : ModuleHolder(holder.ptr()) {}  // NOLINT
};

/// An indexable list of submodules (named "0", "1", ...) with no forward of its own.
class ModuleListImpl : public Cloneable<ModuleListImpl> {
 public:
  using Iterator = std::vector<std::shared_ptr<Module>>::iterator;
  using ConstIterator = std::vector<std::shared_ptr<Module>>::const_iterator;

  ModuleListImpl() = default;
  template <typename First, typename... Rest,
            std::enable_if_t<!std::is_same_v<std::decay_t<First>, ModuleListImpl>, int> = 0>
  explicit ModuleListImpl(First&& first, Rest&&... rest) {
    push_back(std::forward<First>(first));
    (push_back(std::forward<Rest>(rest)), ...);
  }
  ModuleListImpl(const ModuleListImpl&) = default;
  ModuleListImpl& operator=(const ModuleListImpl&) = default;

  std::shared_ptr<Module> clone(const std::optional<Device>& device = std::nullopt) const override;
  void reset() override {}
  void pretty_print(std::ostream& stream) const override;

  void push_back(std::shared_ptr<Module> module);
  template <typename M>
  void push_back(const ModuleHolder<M>& holder) {
    push_back(std::static_pointer_cast<Module>(holder.ptr()));
  }
  template <typename M, std::enable_if_t<std::is_base_of_v<Module, std::decay_t<M>>, int> = 0>
  void push_back(M&& module) {
    push_back(std::static_pointer_cast<Module>(
        std::make_shared<std::decay_t<M>>(std::forward<M>(module))));
  }
  /// Inserts before index (renumbering the rest).
  void insert(size_t index, std::shared_ptr<Module> module);
  template <typename M>
  void insert(size_t index, const ModuleHolder<M>& holder) {
    insert(index, std::static_pointer_cast<Module>(holder.ptr()));
  }
  void extend(const ModuleListImpl& other);

  Iterator begin() { return modules_.begin(); }
  ConstIterator begin() const { return modules_.begin(); }
  Iterator end() { return modules_.end(); }
  ConstIterator end() const { return modules_.end(); }
  size_t size() const noexcept { return modules_.size(); }
  bool is_empty() const noexcept { return modules_.empty(); }

  std::shared_ptr<Module> ptr(size_t index) const;
  std::shared_ptr<Module> operator[](size_t index) const { return ptr(index); }
  template <typename T>
  std::shared_ptr<T> ptr(size_t index) const {
    auto p = std::dynamic_pointer_cast<T>(ptr(index));
    KILN_CHECK(p != nullptr, "[ModuleList] module {} is a {}, not the requested type", index,
               ptr(index)->name());
    return p;
  }
  template <typename T>
  T& at(size_t index) {
    return *ptr<T>(index);
  }

 private:
  std::vector<std::shared_ptr<Module>> modules_;
};
KILN_MODULE(ModuleList);

/// A function as a module (for Sequential): Functional(kiln::relu), or with extra arguments
/// bound after the input: Functional(kiln::clamp_min, 0.5).
class FunctionalImpl : public Cloneable<FunctionalImpl> {
 public:
  using Function = std::function<Tensor(Tensor)>;
  explicit FunctionalImpl(Function function);
  template <typename F, typename Arg, typename... Args>
  explicit FunctionalImpl(F function, Arg&& arg, Args&&... args)
      : FunctionalImpl(Function(
            [function, arg, args...](Tensor input) { return function(input, arg, args...); })) {}
  void reset() override {}
  void pretty_print(std::ostream& stream) const override;
  Tensor forward(const Tensor& input);
  bool is_serializable() const override { return false; }

 private:
  Function function_;
};
KILN_MODULE(Functional);

}  // namespace kiln::nn
