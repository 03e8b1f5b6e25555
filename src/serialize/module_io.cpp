// Saving and loading modules and optimizers through archives: Module::save/load (parameters
// and buffers by name, one nested archive per submodule), Optimizer::save/load (options per
// group, state per parameter by position) and the fields of each optimizer's options and
// state. Declared in the nn and optim headers; defined here so those layers need no archive.
#include "kiln/optim/optimizers.h"
#include "kiln/serialize.h"

namespace kiln {

// ---- modules ---------------------------------------------------------------------------------

void nn::Module::save(serialize::OutputArchive& archive) const {
  KILN_CHECK(is_serializable(), "[kiln::save] {} cannot be serialized", name());
  for (const auto& p : named_parameters(/*recurse=*/false)) archive.write(p.key(), p.value());
  for (const auto& b : named_buffers(/*recurse=*/false))
    archive.write(b.key(), b.value(), /*is_buffer=*/true);
  for (const auto& child : children_) {
    if (!child.value()->is_serializable()) continue;
    serialize::OutputArchive nested;
    child.value()->save(nested);
    archive.write(child.key(), nested);
  }
}

void nn::Module::load(serialize::InputArchive& archive) {
  for (auto& p : named_parameters(/*recurse=*/false)) archive.read(p.key(), p.value());
  for (auto& b : named_buffers(/*recurse=*/false))
    archive.read(b.key(), b.value(), /*is_buffer=*/true);
  for (const auto& child : children_) {
    if (!child.value()->is_serializable()) continue;
    serialize::InputArchive nested;
    archive.read(child.key(), nested);
    child.value()->load(nested);
  }
}

namespace serialize {

OutputArchive& operator<<(OutputArchive& archive, const Tensor& tensor) {
  archive.write("0", tensor);
  return archive;
}

InputArchive& operator>>(InputArchive& archive, Tensor& tensor) {
  Tensor loaded;
  archive.read("0", loaded);
  tensor = loaded;
  return archive;
}

OutputArchive& operator<<(OutputArchive& archive, const nn::Module& module) {
  module.save(archive);
  return archive;
}

namespace {
// Every parameter and buffer present with the module's sizes, checked before anything is
// copied, so that a failed load leaves the module as it was.
void check_loadable(const nn::Module& module, const InputArchive& archive) {
  auto check = [&](const OrderedDict<std::string, Tensor>& tensors) {
    for (const auto& t : tensors) {
      KILN_CHECK(archive.contains(t.key()), "[kiln::load] {}: missing, expected a tensor there",
                 archive.where(t.key()));
      auto sizes = archive.tensor_sizes(t.key());
      KILN_CHECK(sizes.has_value(), "[kiln::load] {}: is not a tensor, expected one",
                 archive.where(t.key()));
      KILN_CHECK(t.value().sizes().equals(*sizes),
                 "[kiln::load] {}: the archive holds sizes {}, expected {} (the module's)",
                 archive.where(t.key()), shape_str(*sizes), shape_str(t.value().sizes()));
    }
  };
  check(module.named_parameters(/*recurse=*/false));
  check(module.named_buffers(/*recurse=*/false));
  for (const auto& child : module.named_children()) {
    if (!child.value()->is_serializable()) continue;
    InputArchive nested;
    InputArchive copy = archive;
    copy.read(child.key(), nested);
    check_loadable(*child.value(), nested);
  }
}
}  // namespace

InputArchive& operator>>(InputArchive& archive, nn::Module& module) {
  check_loadable(module, archive);
  module.load(archive);
  return archive;
}

OutputArchive& operator<<(OutputArchive& archive, const optim::Optimizer& optimizer) {
  optimizer.save(archive);
  return archive;
}

InputArchive& operator>>(InputArchive& archive, optim::Optimizer& optimizer) {
  optimizer.load(archive);
  return archive;
}

}  // namespace serialize

// ---- optimizers ------------------------------------------------------------------------------

namespace optim {

void Optimizer::save(serialize::OutputArchive& archive) const {
  archive.write("optimizer", IValue(std::string(kind())));
  archive.write("num_param_groups", IValue(static_cast<int64_t>(param_groups_.size())));
  int64_t index = 0;
  serialize::OutputArchive states;
  for (size_t g = 0; g < param_groups_.size(); ++g) {
    const OptimizerParamGroup& group = param_groups_[g];
    serialize::OutputArchive ga, options;
    ga.write("num_params", IValue(static_cast<int64_t>(group.params().size())));
    group.options().serialize(options);
    ga.write("options", options);
    archive.write("param_group_" + std::to_string(g), ga);
    for (const Tensor& p : group.params()) {
      auto it = state_.find(p.unsafeGetTensorImpl());
      if (it != state_.end()) {
        serialize::OutputArchive st;
        it->second->serialize(st);
        states.write(std::to_string(index), st);
      }
      ++index;
    }
  }
  archive.write("state", states);
}

void Optimizer::load(serialize::InputArchive& archive) {
  IValue v;
  archive.read("optimizer", v);
  KILN_CHECK(v.toStringRef() == kind(),
             "[kiln::load] {}: holds the state of a {} optimizer, expected {}", archive.where(),
             v.toStringRef(), kind());
  archive.read("num_param_groups", v);
  KILN_CHECK(v.toInt() == static_cast<int64_t>(param_groups_.size()),
             "[kiln::load] {}: has {} parameter groups, this {} optimizer has {}", archive.where(),
             v.toInt(), kind(), param_groups_.size());
  serialize::InputArchive states;
  archive.read("state", states);
  // Check everything before changing anything, so a failed load leaves the optimizer as it was.
  std::vector<std::unique_ptr<OptimizerOptions>> options;
  std::unordered_map<const TensorImpl*, std::unique_ptr<OptimizerParamState>> state;
  int64_t index = 0;
  for (size_t g = 0; g < param_groups_.size(); ++g) {
    serialize::InputArchive ga, oa;
    archive.read("param_group_" + std::to_string(g), ga);
    ga.read("num_params", v);
    const auto& params = param_groups_[g].params();
    KILN_CHECK(v.toInt() == static_cast<int64_t>(params.size()),
               "[kiln::load] {}: parameter group {} has {} parameters, this optimizer's has {}",
               archive.where(), g, v.toInt(), params.size());
    ga.read("options", oa);
    options.push_back(make_options());
    options.back()->serialize(oa);
    for (const Tensor& p : params) {
      const std::string key = std::to_string(index++);
      serialize::InputArchive sa;
      if (!states.try_read(key, sa)) continue;
      for (const std::string& field : sa.keys()) {
        auto sizes = sa.tensor_sizes(field);
        KILN_CHECK(!sizes || p.sizes().equals(*sizes),
                   "[kiln::load] {}: has sizes {}, expected {} (the sizes of parameter {})",
                   sa.where(field), shape_str(*sizes), shape_str(p.sizes()), key);
      }
      auto st = make_state();
      st->serialize(sa);
      state.emplace(p.unsafeGetTensorImpl(), std::move(st));
    }
  }
  for (size_t g = 0; g < param_groups_.size(); ++g)
    param_groups_[g].set_options(std::move(options[g]));
  state_ = std::move(state);
}

namespace {
using serialize::InputArchive;
using serialize::OutputArchive;

double read_double(InputArchive& a, const char* key) {
  IValue v;
  a.read(key, v);
  return v.toDouble();
}
int64_t read_int(InputArchive& a, const char* key) {
  IValue v;
  a.read(key, v);
  return v.toInt();
}
bool read_bool(InputArchive& a, const char* key) {
  IValue v;
  a.read(key, v);
  return v.toBool();
}
void write_opt(OutputArchive& a, const char* key, const Tensor& t) {
  if (t.defined()) a.write(key, t);
}
Tensor read_opt(InputArchive& a, const char* key) {
  Tensor t;
  a.try_read(key, t);
  return t;
}
}  // namespace

void SGDOptions::serialize(OutputArchive& a) const {
  a.write("lr", IValue(lr()));
  a.write("momentum", IValue(momentum()));
  a.write("dampening", IValue(dampening()));
  a.write("weight_decay", IValue(weight_decay()));
  a.write("nesterov", IValue(nesterov()));
}
void SGDOptions::serialize(InputArchive& a) {
  lr(read_double(a, "lr"));
  momentum(read_double(a, "momentum"));
  dampening(read_double(a, "dampening"));
  weight_decay(read_double(a, "weight_decay"));
  nesterov(read_bool(a, "nesterov"));
}
void SGDParamState::serialize(OutputArchive& a) const {
  write_opt(a, "momentum_buffer", momentum_buffer());
}
void SGDParamState::serialize(InputArchive& a) { momentum_buffer(read_opt(a, "momentum_buffer")); }

template <typename O>
void write_adam_options(OutputArchive& a, const O& o) {
  a.write("lr", IValue(o.lr()));
  a.write("beta1", IValue(std::get<0>(o.betas())));
  a.write("beta2", IValue(std::get<1>(o.betas())));
  a.write("eps", IValue(o.eps()));
  a.write("weight_decay", IValue(o.weight_decay()));
  a.write("amsgrad", IValue(o.amsgrad()));
}
template <typename O>
void read_adam_options(InputArchive& a, O& o) {
  o.lr(read_double(a, "lr"));
  o.betas(std::make_tuple(read_double(a, "beta1"), read_double(a, "beta2")));
  o.eps(read_double(a, "eps"));
  o.weight_decay(read_double(a, "weight_decay"));
  o.amsgrad(read_bool(a, "amsgrad"));
}
void AdamOptions::serialize(OutputArchive& a) const { write_adam_options(a, *this); }
void AdamOptions::serialize(InputArchive& a) { read_adam_options(a, *this); }
void AdamWOptions::serialize(OutputArchive& a) const { write_adam_options(a, *this); }
void AdamWOptions::serialize(InputArchive& a) { read_adam_options(a, *this); }

void AdamParamState::serialize(OutputArchive& a) const {
  a.write("step", IValue(step()));
  write_opt(a, "exp_avg", exp_avg());
  write_opt(a, "exp_avg_sq", exp_avg_sq());
  write_opt(a, "max_exp_avg_sq", max_exp_avg_sq());
}
void AdamParamState::serialize(InputArchive& a) {
  step(read_int(a, "step"));
  exp_avg(read_opt(a, "exp_avg"));
  exp_avg_sq(read_opt(a, "exp_avg_sq"));
  max_exp_avg_sq(read_opt(a, "max_exp_avg_sq"));
}

void RMSpropOptions::serialize(OutputArchive& a) const {
  a.write("lr", IValue(lr()));
  a.write("alpha", IValue(alpha()));
  a.write("eps", IValue(eps()));
  a.write("weight_decay", IValue(weight_decay()));
  a.write("momentum", IValue(momentum()));
  a.write("centered", IValue(centered()));
}
void RMSpropOptions::serialize(InputArchive& a) {
  lr(read_double(a, "lr"));
  alpha(read_double(a, "alpha"));
  eps(read_double(a, "eps"));
  weight_decay(read_double(a, "weight_decay"));
  momentum(read_double(a, "momentum"));
  centered(read_bool(a, "centered"));
}
void RMSpropParamState::serialize(OutputArchive& a) const {
  a.write("step", IValue(step()));
  write_opt(a, "square_avg", square_avg());
  write_opt(a, "momentum_buffer", momentum_buffer());
  write_opt(a, "grad_avg", grad_avg());
}
void RMSpropParamState::serialize(InputArchive& a) {
  step(read_int(a, "step"));
  square_avg(read_opt(a, "square_avg"));
  momentum_buffer(read_opt(a, "momentum_buffer"));
  grad_avg(read_opt(a, "grad_avg"));
}

}  // namespace optim
}  // namespace kiln
