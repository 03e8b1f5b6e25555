// Executor: lowers an optimised graph to steps over value slots and runs them. Fusion groups
// become generated kernels (from the process-wide kernel cache: memory, then disk, then LLVM);
// groups the code generator cannot take run their nodes eagerly and are reported; every other
// primitive (library calls included) runs through ops::call, except matrix products whose result
// lives in a workspace buffer (their _out variants write it). Slots are released after their
// last use; kernel outputs and products that never escape the graph live in buffers reused call
// after call.
#include "runtime/executor.h"

#include <llvm/Config/llvm-config.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <exception>
#include <thread>
#include <unordered_map>

#include "core/sha256.h"
#include "kiln/functions.h"
#include "kiln/ir/interpreter.h"
#include "kiln/ir/printer.h"
#include "kiln/ops/call.h"
#include "kiln/version.h"

namespace kiln::runtime {

using codegen::llvm::FusedKernel;
using codegen::llvm::GroupLowering;
using codegen::llvm::KernelSpec;

namespace {
double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}
constexpr size_t kMaxCachedKernels = 1024;
}  // namespace

// ---- the kernel cache ----------------------------------------------------------------------

KernelCache& KernelCache::get() {
  static KernelCache* c = new KernelCache();  // never destroyed: kernels may outlive main()
  return *c;
}

std::string KernelCache::disk_key(const KernelSpec& spec) {
  detail::Sha256 h;
  h.update("kiln-fused-kernel\n");
  h.update(kiln::version());
  h.update("\ncodegen " + std::to_string(codegen::llvm::kCodegenRevision));
  h.update("\nllvm " LLVM_VERSION_STRING "\n");
  h.update(codegen::llvm::Jit::get().target().key());
  h.update("\n");
  h.update(spec.key());
  return h.hex();
}

std::shared_ptr<FusedKernel> KernelCache::kernel(const KernelSpec& spec,
                                                 const ExecutorOptions& options, int* source,
                                                 double* ms) {
  const std::string key = spec.key();
  {
    std::lock_guard<std::mutex> lk(mutex_);
    for (size_t i = 0; i < lru_.size(); ++i)
      if (lru_[i].first == key) {
        auto k = lru_[i].second;
        std::rotate(lru_.begin() + i, lru_.begin() + i + 1, lru_.end());  // most recent last
        *source = 0;
        return k;
      }
  }
  const auto t0 = std::chrono::steady_clock::now();
  std::shared_ptr<FusedKernel> k;
  const std::string dkey = options.disk_cache ? disk_key(spec) : std::string();
  if (options.disk_cache) {
    if (auto bytes = options.disk_cache->get(dkey)) {
      try {
        codegen::llvm::ObjectCode obj;
        obj.bytes = std::move(*bytes);
        obj.target = codegen::llvm::Jit::get().target().key();
        k = FusedKernel::load(spec, obj);
        *source = 1;
      } catch (const Error&) {
        k.reset();  // unloadable: rebuilt below (the entry is overwritten)
      }
    }
  }
  if (!k) {
    codegen::llvm::CompileOptions co = options.llvm;
    co.emit_asm = co.emit_asm || options.dump_asm;
    if (options.dump_llvm) {
      ::llvm::LLVMContext ctx;
      auto m = codegen::llvm::emit_fused(ctx, spec);
      codegen::llvm::Jit::get().optimize(*m, co.opt_level);
      std::fprintf(stderr, "=== KILN_DUMP_IR=llvm: fused kernel\n%s\n",
                   codegen::llvm::print_ir(*m).c_str());
    }
    k = FusedKernel::compile(spec, co);
    if (options.dump_asm)
      std::fprintf(stderr, "=== KILN_DUMP_IR=asm: fused kernel\n%s\n", k->object().assembly.c_str());
    *source = 2;
    if (options.disk_cache) options.disk_cache->put(dkey, k->object().bytes);
  }
  *ms = ms_since(t0);
  std::lock_guard<std::mutex> lk(mutex_);
  lru_.emplace_back(key, k);
  if (lru_.size() > kMaxCachedKernels) lru_.erase(lru_.begin());
  return k;
}

size_t KernelCache::size() const {
  std::lock_guard<std::mutex> lk(mutex_);
  return lru_.size();
}

void KernelCache::clear() {
  std::lock_guard<std::mutex> lk(mutex_);
  lru_.clear();
}

// ---- the plan ------------------------------------------------------------------------------

struct Executor::Plan {
  struct Step {
    enum class Kind { Kernel, Group, Op, Prim, If, Loop } kind = Kind::Op;
    const ir::Node* node = nullptr;
    std::vector<int> in, out;
    std::vector<int> frees;  // slots whose last use (in this block) is this step
    // kernels
    std::shared_ptr<FusedKernel> kernel;
    int pending = -1;  // while lowering: index into Lowerer::pending (kernel not built yet)
    std::shared_ptr<GroupLowering> lowering;
    std::vector<int> buffers;  // per output: workspace buffer id, or -1 (fresh each call)
    int memo = -1;             // kernels: index of the launch memo in each workspace
    // nested blocks (if: then, else; loop: body)
    std::vector<std::unique_ptr<Plan>> blocks;
  };
  std::vector<Step> steps;
  std::vector<int> inputs, outputs;  // slots of the block's inputs / outputs
};

namespace {

struct Lowerer {
  std::unordered_map<const ir::Value*, int> slot;
  std::vector<IValue> constants;  // slot -> constant (None where not constant)
  std::vector<bool> is_const;
  const ExecutorOptions& options;
  KernelStats& stats;
  std::unordered_map<const ir::Value*, IValue> examples;  // for autotuning
  int num_buffers = 0;
  int num_memos = 0;
  std::vector<std::pair<std::vector<int64_t>, ScalarType>> buffer_types;

  Lowerer(const ExecutorOptions& o, KernelStats& s) : options(o), stats(s) {}

  int slot_of(const ir::Value* v) {
    auto it = slot.find(v);
    if (it != slot.end()) return it->second;
    const int s = static_cast<int>(constants.size());
    slot[v] = s;
    constants.emplace_back();
    is_const.push_back(false);
    return s;
  }

  std::unique_ptr<Executor::Plan> block(const ir::Block* b, const ir::Graph& g) {
    auto plan = std::make_unique<Executor::Plan>();
    for (const ir::Value* v : b->inputs()) plan->inputs.push_back(slot_of(v));
    for (const ir::Node* n : b->nodes()) {
      if (n->kind().is(ir::Prim::Constant)) {
        const int s = slot_of(n->output());
        constants[s] = n->attr("value");
        is_const[s] = true;
        continue;
      }
      Executor::Plan::Step st;
      st.node = n;
      for (const ir::Value* v : n->inputs()) st.in.push_back(slot_of(v));
      for (const ir::Value* v : n->outputs()) st.out.push_back(slot_of(v));
      if (n->kind().is_op()) {
        st.kind = Executor::Plan::Step::Kind::Op;
        if (ops::op_info(n->kind().op()).is_library_call()) ++stats.library_calls;
        else ++stats.eager_ops;
      } else {
        switch (n->kind().prim()) {
          case ir::Prim::FusionGroup:
            lower_group(n, st, g);
            break;
          case ir::Prim::Call:
            st.kind = Executor::Plan::Step::Kind::Group;
            break;
          case ir::Prim::If:
            st.kind = Executor::Plan::Step::Kind::If;
            st.blocks.push_back(block(n->block(0), g));
            st.blocks.push_back(block(n->block(1), g));
            break;
          case ir::Prim::Loop:
            st.kind = Executor::Plan::Step::Kind::Loop;
            st.blocks.push_back(block(n->block(0), g));
            break;
          default:
            st.kind = Executor::Plan::Step::Kind::Prim;
            break;
        }
      }
      plan->steps.push_back(std::move(st));
    }
    for (const ir::Value* v : b->outputs()) plan->outputs.push_back(slot_of(v));
    free_after_last_use(*plan, b);
    return plan;
  }

  // A value's last use in this block: the step that uses it (directly or inside a nested
  // block) last. Block outputs and constants are never freed.
  void free_after_last_use(Executor::Plan& plan, const ir::Block* b) {
    std::unordered_map<int, size_t> last;
    for (size_t i = 0; i < plan.steps.size(); ++i) {
      std::vector<int> used = plan.steps[i].in;
      collect_nested(plan.steps[i], &used);
      for (int s : used) last[s] = i;
    }
    for (int s : plan.outputs) last.erase(s);
    for (const auto& [s, i] : last)
      if (!is_const[s]) plan.steps[i].frees.push_back(s);
  }
  void collect_nested(const Executor::Plan::Step& st, std::vector<int>* used) {
    for (const auto& p : st.blocks) {
      for (const auto& s : p->steps) {
        used->insert(used->end(), s.in.begin(), s.in.end());
        collect_nested(s, used);
      }
      used->insert(used->end(), p->outputs.begin(), p->outputs.end());
    }
  }

  void lower_group(const ir::Node* n, Executor::Plan::Step& st, const ir::Graph& g) {
    std::string why;
    auto low = codegen::llvm::lower_group(*n, &why);
    if (low) {
      // amax/amin over an empty dim must raise the eager error: leave that to the eager path.
      int64_t numel = 1;
      for (int64_t s : low->shape) numel *= s;
      for (const auto& o : low->program.outputs)
        if (numel == 0 && o.reduce &&
            (*o.reduce == ops::OpKind::Amax || *o.reduce == ops::OpKind::Amin)) {
          low.reset();
          why = "amax/amin over an empty dim (the eager kernel reports it)";
          break;
        }
    }
    if (!low) {
      st.kind = Executor::Plan::Step::Kind::Group;
      ++stats.fallback_groups;
      stats.fallback_reasons.push_back(why);
      return;
    }
    st.kind = Executor::Plan::Step::Kind::Kernel;
    st.memo = num_memos++;
    st.lowering = std::make_shared<GroupLowering>(std::move(*low));
    // The access pattern of the example inputs (their strides) picks the kernel's fast path.
    std::vector<Tensor> ex;
    for (const ir::Value* v : n->inputs()) {
      auto it = examples.find(v);
      ex.push_back(it != examples.end() && it->second.is_tensor() ? it->second.toTensor()
                                                                  : Tensor());
    }
    bool have_examples = true;
    for (const Tensor& t : ex) have_examples = have_examples && t.defined();
    KernelSpec spec;
    if (have_examples) {
      spec = codegen::llvm::spec_for(st.lowering->program,
                                     codegen::llvm::launch_args(*st.lowering, ex));
    } else {
      spec.program = st.lowering->program;
      // Without examples assume contiguous operands, and products' operands as the products
      // pass lays them out: A [M, K] constant along a row of the result, B [K, N] contiguous.
      const size_t nout = spec.program.outputs.size();
      spec.access.assign(nout + spec.program.inputs.size(), codegen::llvm::Access::Contiguous);
      const std::vector<int> roles = spec.program.dot_roles();
      for (size_t i = 0; i < roles.size(); ++i)
        if (roles[i] == 1) spec.access[nout + i] = codegen::llvm::Access::Broadcast;
    }
    ++stats.fused_kernels;
    if (!(options.autotune && have_examples)) {
      // Built later, all at once and in parallel (build_pending).
      st.pending = static_cast<int>(pending.size());
      pending.push_back(std::move(spec));
      return;
    }
    int source = 0;
    double ms = 0;
    st.kernel = autotune(spec, *st.lowering, ex, &source, &ms);
    count_kernel(source, ms);
    (void)g;
  }

  // The kernels of every group, compiled (or loaded) concurrently, one thread per core: LLVM
  // is the bulk of a first compile and kernels are independent. A spec appearing several times
  // (an unrolled loop's body) is built once. The stage times are wall times of the phase.
  std::vector<KernelSpec> pending;
  void build_pending(Executor::Plan& plan) {
    if (pending.empty()) return;
    std::vector<size_t> first_of(pending.size());
    std::vector<size_t> unique;
    {
      std::unordered_map<std::string, size_t> seen;
      for (size_t i = 0; i < pending.size(); ++i) {
        auto [it, inserted] = seen.emplace(pending[i].key(), i);
        first_of[i] = it->second;
        if (inserted) unique.push_back(i);
      }
    }
    std::vector<std::shared_ptr<FusedKernel>> built(pending.size());
    std::vector<int> source(pending.size(), 0);
    std::vector<std::exception_ptr> errors(pending.size());
    std::atomic<size_t> next{0};
    auto work = [&] {
      for (size_t j; (j = next.fetch_add(1)) < unique.size();) {
        const size_t i = unique[j];
        double ms = 0;
        try {
          built[i] = KernelCache::get().kernel(pending[i], options, &source[i], &ms);
        } catch (...) {
          errors[i] = std::current_exception();
        }
      }
    };
    const auto t0 = std::chrono::steady_clock::now();
    const size_t nthreads =
        std::min<size_t>(unique.size(), std::max(1u, std::thread::hardware_concurrency()));
    std::vector<std::thread> threads;
    for (size_t t = 1; t < nthreads; ++t) threads.emplace_back(work);
    work();
    for (std::thread& t : threads) t.join();
    const double wall = ms_since(t0);
    for (const std::exception_ptr& e : errors)
      if (e) std::rethrow_exception(e);
    bool compiled = false;
    for (size_t i = 0; i < pending.size(); ++i) {
      if (first_of[i] != i) {
        built[i] = built[first_of[i]];
        source[i] = 0;  // the same kernel again
      }
      compiled = compiled || source[i] == 2;
      count_kernel(source[i], 0);
    }
    (compiled ? stats.codegen_ms : stats.load_ms) += wall;
    assign_pending(plan, built);
    pending.clear();
  }
  static void assign_pending(Executor::Plan& plan,
                             const std::vector<std::shared_ptr<FusedKernel>>& built) {
    for (Executor::Plan::Step& st : plan.steps) {
      if (st.pending >= 0) {
        st.kernel = built[static_cast<size_t>(st.pending)];
        st.pending = -1;
      }
      for (auto& b : st.blocks) assign_pending(*b, built);
    }
  }

  void count_kernel(int source, double ms) {
    if (source == 0) ++stats.kernels_from_memory;
    if (source == 1) {
      ++stats.kernels_from_disk;
      stats.load_ms += ms;
    }
    if (source == 2) {
      ++stats.kernels_compiled;
      stats.codegen_ms += ms;
    }
  }

  // max-autotune: candidate vector widths, each timed on the example inputs; the winner is
  // remembered in the disk cache (keyed by the spec without its width).
  std::shared_ptr<FusedKernel> autotune(KernelSpec spec, const GroupLowering& low,
                                        const std::vector<Tensor>& ex, int* source, double* ms) {
    std::string choice_key;
    if (options.disk_cache) {
      spec.lanes = 0;
      choice_key = detail::sha256_hex("autotune\n" + KernelCache::disk_key(spec));
      if (auto rec = options.disk_cache->get(choice_key)) {
        spec.lanes = std::atoi(rec->c_str());
        if (spec.lanes > 0) return KernelCache::get().kernel(spec, options, source, ms);
      }
    }
    const int base = codegen::llvm::Jit::get().target().lanes(4);
    std::shared_ptr<FusedKernel> best;
    double best_t = 1e300;
    int best_lanes = 0;
    double total = 0;
    auto args = codegen::llvm::launch_args(low, ex);
    for (int lanes : {base, 2 * base, 4 * base, 8 * base}) {
      spec.lanes = lanes;
      int src = 0;
      double m = 0;
      auto k = KernelCache::get().kernel(spec, options, &src, &m);
      total += m;
      codegen::llvm::launch(*k, args);  // warm up
      std::vector<double> t;
      for (int r = 0; r < 5; ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        codegen::llvm::launch(*k, args);
        t.push_back(ms_since(t0));
      }
      std::sort(t.begin(), t.end());
      if (t[2] < best_t) {
        best_t = t[2];
        best = k;
        best_lanes = lanes;
        *source = src;
      }
    }
    if (options.disk_cache) options.disk_cache->put(choice_key, std::to_string(best_lanes));
    *ms = total;
    return best;
  }

  // Library calls with an out= variant (the matrix products) whose result type is exact: the
  // step writes into a workspace buffer instead of allocating.
  static bool writes_into(const ir::Node* n) {
    if (!n->kind().is_op()) return false;
    const ops::OpKind k = n->kind().op();
    if (k != ops::OpKind::Mm && k != ops::OpKind::Bmm && k != ops::OpKind::Addmm) return false;
    const ir::Type& t = n->output()->type();
    return t.is_tensor() && t.tensor().static_sizes() && t.tensor().dtype;
  }

  // Outputs of kernels and of the matrix products that never escape (not a graph output, no
  // view or other alias of them, only read by steps that make fresh tensors) get a workspace
  // buffer; values whose lifetimes do not overlap share one when their sizes and dtypes are
  // equal.
  void plan_buffers(Executor::Plan& plan, const ir::Block* top) {
    std::unordered_map<const ir::Value*, size_t> last_use;
    std::unordered_map<const ir::Value*, bool> escapes;
    for (const ir::Value* v : top->outputs()) escapes[v] = true;
    for (size_t i = 0; i < plan.steps.size(); ++i) {
      const ir::Node* n = plan.steps[i].node;
      const bool views = n->kind().is_op() && ops::op_info(n->kind().op()).is_view();
      const bool nested = !n->blocks().empty() && !n->kind().is(ir::Prim::FusionGroup);
      for (const ir::Value* v : n->inputs()) {
        last_use[v] = i;
        if (views || nested || !(n->kind().is_op() || n->kind().is(ir::Prim::FusionGroup)))
          escapes[v] = true;
      }
    }
    // Free lists of buffers by (sizes, dtype): buffer id -> step after which it is free.
    struct Free {
      size_t after;
      int id;
    };
    std::vector<Free> free_list;
    for (size_t i = 0; i < plan.steps.size(); ++i) {
      Executor::Plan::Step& st = plan.steps[i];
      // release buffers of values whose last use was before this step
      const bool product = st.kind == Executor::Plan::Step::Kind::Op && writes_into(st.node);
      if (st.kind != Executor::Plan::Step::Kind::Kernel && !product) continue;
      st.buffers.assign(st.out.size(), -1);
      for (size_t k = 0; k < st.out.size(); ++k) {
        const ir::Value* v = st.node->output(k);
        if (escapes[v] || !last_use.count(v)) continue;
        std::vector<int64_t> sizes;
        ScalarType dt;
        if (product) {
          sizes = *v->type().tensor().static_sizes();
          dt = *v->type().tensor().dtype;
        } else {
          if (st.lowering->program.outputs[k].reduce &&
              st.lowering->program.outputs[k].acc != st.lowering->program.outputs[k].dtype)
            continue;  // converted from a wider accumulator: a fresh tensor anyway
          sizes = st.lowering->output_sizes[k];
          dt = st.lowering->program.outputs[k].dtype;
          if (st.lowering->program.outputs[k].reduce) {
            sizes = st.lowering->shape;
            for (int64_t d : st.lowering->reduce_dims) sizes[d] = 1;
          }
        }
        int id = -1;
        for (size_t f = 0; f < free_list.size(); ++f)
          if (free_list[f].after < i && buffer_types[free_list[f].id].first == sizes &&
              buffer_types[free_list[f].id].second == dt) {
            id = free_list[f].id;
            free_list.erase(free_list.begin() + f);
            break;
          }
        if (id < 0) {
          id = num_buffers++;
          buffer_types.emplace_back(sizes, dt);
        }
        st.buffers[k] = id;
        free_list.push_back({last_use[v], id});
      }
    }
  }
};

// One concurrent run's buffers, and what its kernel launches remember of their input layouts.
struct Workspace {
  std::vector<Tensor> buffers;
  std::vector<codegen::llvm::LaunchMemo> memos;
};

}  // namespace

struct ExecutorState {
  std::vector<IValue> constants;
  std::vector<bool> is_const;
  int num_slots = 0;
  std::vector<std::pair<std::vector<int64_t>, ScalarType>> buffer_types;
  int num_memos = 0;
  std::mutex mutex;
  std::vector<std::unique_ptr<Workspace>> free_workspaces;
};

namespace {

using Step = Executor::Plan::Step;

// Runs the nodes of a block eagerly (fusion groups the code generator refused, calls).
std::vector<IValue> run_block_eagerly(const ir::Block* b, std::vector<IValue> inputs) {
  std::unordered_map<const ir::Value*, IValue> env;
  for (size_t i = 0; i < inputs.size(); ++i) env[b->inputs()[i]] = std::move(inputs[i]);
  for (const ir::Node* n : b->nodes()) {
    if (n->kind().is(ir::Prim::Constant)) {
      env[n->output()] = n->attr("value");
      continue;
    }
    KILN_ASSERT(n->kind().is_op(), "eager group run: {} inside a group", n->kind().name());
    std::vector<IValue> args;
    for (const ir::Value* v : n->inputs()) args.push_back(env.at(v));
    std::vector<IValue> outs = ops::call(n->kind().op(), args);
    for (size_t i = 0; i < outs.size(); ++i) env[n->output(i)] = std::move(outs[i]);
  }
  std::vector<IValue> outs;
  for (const ir::Value* v : b->outputs()) outs.push_back(env.at(v));
  return outs;
}

struct Runner {
  std::vector<IValue>& frame;
  Workspace& ws;
  const ExecutorState& state;

  void run(const Executor::Plan& plan) {
    for (const Step& st : plan.steps) {
      try {
        step(st);
      } catch (const InternalError&) {
        throw;
      } catch (const Error& e) {
        const std::string msg = e.what();
        if (msg.rfind("[jit.run]", 0) == 0) throw;
        throw Error(fmt::format("[jit.run] {} failed: {}\n  at: {}", st.node->kind().name(), msg,
                                ir::node_str(st.node)));
      }
      for (int s : st.frees) frame[s] = IValue();
    }
  }

  // Workspace buffer `id`, allocated on its first use.
  Tensor buffer(int id) {
    Tensor& b = ws.buffers[id];
    if (!b.defined()) {
      const auto& [sizes, dt] = state.buffer_types[id];
      b = empty(sizes, TensorOptions(dt));
    }
    return b;
  }

  // A matrix product (plan_buffers' writes_into) written into out.
  Tensor product_into(const Step& st, Tensor out) const {
    const auto t = [&](size_t i) -> const Tensor& { return frame[st.in[i]].toTensor(); };
    switch (st.node->kind().op()) {
      case ops::OpKind::Mm:
        return mm_out(out, t(0), t(1));
      case ops::OpKind::Bmm:
        return bmm_out(out, t(0), t(1));
      case ops::OpKind::Addmm:
        return addmm_out(out, t(0), t(1), t(2), frame[st.in[3]].toScalar(),
                         frame[st.in[4]].toScalar());
      default:
        KILN_ASSERT(false, "[jit.run] {} has no out= variant (writes_into)",
                    st.node->kind().name());
        return out;
    }
  }

  std::vector<IValue> args(const Step& st) const {
    std::vector<IValue> a;
    a.reserve(st.in.size());
    for (int s : st.in) a.push_back(frame[s]);
    return a;
  }

  void step(const Step& st) {
    using K = Step::Kind;
    switch (st.kind) {
      case K::Op: {
        if (!st.buffers.empty() && st.buffers[0] >= 0) {
          frame[st.out[0]] = product_into(st, buffer(st.buffers[0]));
          return;
        }
        std::vector<IValue> outs = ops::call(st.node->kind().op(), args(st));
        for (size_t i = 0; i < outs.size(); ++i) frame[st.out[i]] = std::move(outs[i]);
        return;
      }
      case K::Kernel: {
        std::vector<Tensor> ins;
        ins.reserve(st.in.size());
        for (int s : st.in) ins.push_back(frame[s].toTensor());
        std::vector<Tensor> bufs;
        bufs.reserve(st.buffers.size());
        for (size_t k = 0; k < st.buffers.size(); ++k)
          bufs.push_back(st.buffers[k] >= 0 ? buffer(st.buffers[k]) : Tensor());
        std::vector<Tensor> outs = codegen::llvm::launch_group(
            *st.kernel, *st.lowering, ins, bufs, codegen::llvm::LaunchArgs().grain,
            ws.memos[st.memo]);
        for (size_t i = 0; i < outs.size(); ++i) {
          const auto& want = st.lowering->output_sizes[i];
          Tensor t = outs[i];
          if (!t.sizes().equals(want)) t = t.view(want);
          frame[st.out[i]] = std::move(t);
        }
        return;
      }
      case K::Group: {
        std::vector<IValue> outs = run_block_eagerly(st.node->block(0), args(st));
        for (size_t i = 0; i < outs.size(); ++i) frame[st.out[i]] = std::move(outs[i]);
        return;
      }
      case K::If: {
        const bool c = frame[st.in[0]].toBool();
        const Executor::Plan& p = *st.blocks[c ? 0 : 1];
        run(p);
        for (size_t i = 0; i < p.outputs.size(); ++i) frame[st.out[i]] = frame[p.outputs[i]];
        return;
      }
      case K::Loop: {
        const Executor::Plan& p = *st.blocks[0];
        const int64_t trips = frame[st.in[0]].toInt();
        std::vector<IValue> carried;
        for (size_t i = 1; i < st.in.size(); ++i) carried.push_back(frame[st.in[i]]);
        for (int64_t t = 0; t < trips; ++t) {
          frame[p.inputs[0]] = IValue(t);
          for (size_t i = 0; i < carried.size(); ++i) frame[p.inputs[i + 1]] = carried[i];
          run(p);
          for (size_t i = 0; i < carried.size(); ++i) carried[i] = frame[p.outputs[i]];
        }
        for (size_t i = 0; i < carried.size(); ++i) frame[st.out[i]] = carried[i];
        return;
      }
      case K::Prim: {
        const ir::Node* n = st.node;
        switch (n->kind().prim()) {
          case ir::Prim::TupleConstruct:
            frame[st.out[0]] = IValue::tuple(args(st));
            return;
          case ir::Prim::TupleUnpack: {
            const auto& e = frame[st.in[0]].toTuple();
            for (size_t i = 0; i < st.out.size(); ++i) frame[st.out[i]] = e.at(i);
            return;
          }
          case ir::Prim::ListConstruct: {
            std::vector<IValue> a = args(st);
            const ir::Type& elem = n->output()->type().elem();
            if (elem.kind() == ir::TypeKind::Int) {
              std::vector<int64_t> v;
              for (const IValue& x : a) v.push_back(x.toInt());
              frame[st.out[0]] = IValue(std::move(v));
            } else if (elem.kind() == ir::TypeKind::Float) {
              std::vector<double> v;
              for (const IValue& x : a) v.push_back(x.toDouble());
              frame[st.out[0]] = IValue(std::move(v));
            } else {
              std::vector<Tensor> v;
              for (const IValue& x : a) v.push_back(x.toOptionalTensor());
              frame[st.out[0]] = IValue(std::move(v));
            }
            return;
          }
          case ir::Prim::ListUnpack: {
            const IValue& l = frame[st.in[0]];
            std::vector<IValue> e;
            if (l.is_int_list())
              for (int64_t v : l.toIntList()) e.emplace_back(v);
            else if (l.is_double_list())
              for (double v : l.toDoubleList()) e.emplace_back(v);
            else
              for (const Tensor& t : l.toTensorList()) e.push_back(t.defined() ? IValue(t) : IValue());
            KILN_CHECK(e.size() == st.out.size(), "got a list of {} elements, expected {}",
                       e.size(), st.out.size());
            for (size_t i = 0; i < e.size(); ++i) frame[st.out[i]] = e[i];
            return;
          }
          default:
            KILN_ASSERT(false, "executor: cannot run {}", n->kind().name());
        }
      }
    }
  }
};

}  // namespace

// The executor's state lives next to the plan.
struct ExecutorImpl {
  ExecutorState state;
};

Executor::Executor(std::unique_ptr<ir::Graph> g, const std::vector<IValue>& example_inputs,
                   const ExecutorOptions& options)
    : graph_(std::move(g)) {
  Lowerer lw(options, stats_);
  // Example values for the graph inputs (the access patterns of kernels reading them).
  for (size_t i = 0; i < example_inputs.size() && i < graph_->inputs().size(); ++i)
    lw.examples[graph_->inputs()[i]] = example_inputs[i];
  // Examples of intermediate values: run the graph once eagerly when some group reads one.
  bool needs_run = false;
  for (const ir::Node* n : graph_->block()->nodes())
    if (n->kind().is(ir::Prim::FusionGroup))
      for (const ir::Value* v : n->inputs())
        if (!lw.examples.count(v)) needs_run = true;
  if (needs_run && example_inputs.size() == graph_->inputs().size()) {
    ir::RunOptions ro;
    ro.check_types = false;
    ro.values = &lw.examples;
    ir::run(*graph_, example_inputs, ro);
  }
  plan_ = lw.block(graph_->block(), *graph_);
  lw.build_pending(*plan_);
  lw.plan_buffers(*plan_, graph_->block());
  auto* impl = new ExecutorImpl();  // freed in ~Executor
  impl->state.constants = std::move(lw.constants);
  impl->state.is_const = std::move(lw.is_const);
  impl->state.num_slots = static_cast<int>(impl->state.constants.size());
  impl->state.buffer_types = std::move(lw.buffer_types);
  impl->state.num_memos = lw.num_memos;
  impl_ = impl;
}

Executor::~Executor() { delete static_cast<ExecutorImpl*>(impl_); }

std::vector<IValue> Executor::run(const std::vector<IValue>& inputs) {
  auto* impl = static_cast<ExecutorImpl*>(impl_);
  ExecutorState& state = impl->state;
  KILN_CHECK(inputs.size() == plan_->inputs.size(), "[jit.run] the graph takes {} inputs, got {}",
             plan_->inputs.size(), inputs.size());
  std::unique_ptr<Workspace> ws;
  {
    std::lock_guard<std::mutex> lk(state.mutex);
    if (!state.free_workspaces.empty()) {
      ws = std::move(state.free_workspaces.back());
      state.free_workspaces.pop_back();
    }
  }
  if (!ws) {
    ws = std::make_unique<Workspace>();
    ws->buffers.resize(state.buffer_types.size());
    ws->memos.resize(state.num_memos);
  }
  std::vector<IValue> frame = state.constants;
  for (size_t i = 0; i < inputs.size(); ++i) frame[plan_->inputs[i]] = inputs[i];
  Runner r{frame, *ws, state};
  r.run(*plan_);
  std::vector<IValue> outs;
  for (int s : plan_->outputs) {
    // A constant output is the graph's own tensor: callers get a copy they may write.
    if (state.is_const[s] && frame[s].is_tensor()) outs.emplace_back(frame[s].toTensor().clone());
    else outs.push_back(frame[s]);
  }
  frame.clear();
  std::lock_guard<std::mutex> lk(state.mutex);
  state.free_workspaces.push_back(std::move(ws));
  return outs;
}

std::string Executor::describe() const {
  std::string s;
  int k = 0;
  for (const Plan::Step& st : plan_->steps) {
    switch (st.kind) {
      case Plan::Step::Kind::Kernel: {
        using Kind = codegen::llvm::KernelProgram::Instr::Kind;
        int nops = 0, dots = 0;
        for (const auto& in : st.lowering->program.instrs) {
          nops += in.kind == Kind::Op;
          dots += in.kind == Kind::Dot;
        }
        int reds = 0;
        for (const auto& o : st.lowering->program.outputs) reds += o.reduce.has_value();
        // How the kernel reads its operands, as specialised for the example inputs.
        std::string how;
        if (st.kernel) {
          const codegen::llvm::KernelSpec& spec = st.kernel->spec();
          how = spec.vector_loop() ? "; vector loop" : "; strided loop";
          if (spec.uniform_k) how += ", shared k strides";
        }
        s += fmt::format("  kernel #{}: {} elementwise ops{}{} over {} -> {} output(s){}\n", k++,
                         nops, dots ? fmt::format(" + {} product(s)", dots) : "",
                         reds ? fmt::format(" + {} reduction(s)", reds) : "",
                         shape_str(st.lowering->shape), st.out.size(), how);
        break;
      }
      case Plan::Step::Kind::Group:
      {
        int nodes = 0;
        for (const ir::Node* n : st.node->block(0)->nodes()) nodes += !n->kind().is(ir::Prim::Constant);
        s += fmt::format("  group of {} ops run eagerly (no kernel lowering)\n", nodes);
      }
        break;
      case Plan::Step::Kind::Op: {
        const ops::OpInfo& info = ops::op_info(st.node->kind().op());
        s += fmt::format("  {}: {}\n", info.is_library_call() ? "library call" : "eager op",
                         info.name);
        break;
      }
      default:
        s += fmt::format("  {}\n", st.node->kind().name());
        break;
    }
  }
  return s;
}

}  // namespace kiln::runtime
