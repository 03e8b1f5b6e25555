// The pass manager (see pass_manager.h): runs named passes in order with per-pass timing,
// optional verification after each, and KILN_DUMP_IR dumps. kiln-opt, the tests and the JIT run
// the pipeline of pipeline.cpp through it.
#include "kiln/passes/pass_manager.h"

#include <chrono>
#include <cstdlib>
#include <iostream>

#include "kiln/core/error.h"
#include "kiln/ir/printer.h"
#include "kiln/ir/verifier.h"
#include "kiln/passes/pipeline.h"

namespace kiln::passes {

std::string PassStats::str() const {
  std::string s;
  for (const Entry& e : passes)
    s += fmt::format("  {:<14} {:>9.3f} ms  {:<9} {} -> {} nodes\n", e.name, e.milliseconds,
                     e.changed ? "changed" : "unchanged", e.nodes_before, e.nodes_after);
  s += fmt::format("  {:<14} {:>9.3f} ms\n", "total", total_milliseconds);
  return s;
}

PassManager::PassManager(PassManagerOptions options) : options_(std::move(options)) {
  if (!options_.dump)
    if (const char* env = std::getenv("KILN_DUMP_IR")) options_.dump = env;
}

PassManager& PassManager::add(std::string_view name) {
  const PassInfo* p = find_pass(name);
  if (p == nullptr) {
    std::vector<std::string_view> names;
    for (const PassInfo& info : registered_passes()) names.push_back(info.name);
    KILN_FAIL("[passes] unknown pass '{}': expected one of {}", name, fmt::join(names, ", "));
  }
  return add(std::string(p->name), p->run);
}

PassManager& PassManager::add(std::string name, PassFn fn) {
  passes_.push_back({std::move(name), std::move(fn)});
  return *this;
}

bool PassManager::dumps(std::string_view name) const {
  if (!options_.dump || options_.dump->empty()) return false;
  std::string_view spec = *options_.dump;
  while (!spec.empty()) {
    const size_t comma = spec.find(',');
    std::string_view item = spec.substr(0, comma);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (item == "all" || item == name) return true;
    if (comma == std::string_view::npos) break;
    spec.remove_prefix(comma + 1);
  }
  return false;
}

PassStats PassManager::run(ir::Graph& g) const {
  using Clock = std::chrono::steady_clock;
  PassStats stats;
  std::ostream& dump = options_.dump_stream != nullptr ? *options_.dump_stream : std::cerr;
  for (const Pass& p : passes_) {
    PassStats::Entry e;
    e.name = p.name;
    e.nodes_before = g.num_nodes();
    const auto t0 = Clock::now();
    try {
      e.changed = p.run(g);
    } catch (const InternalError& err) {
      throw InternalError(fmt::format("[passes] {}: {}", p.name, err.what()));
    } catch (const Error& err) {
      throw Error(fmt::format("[passes] {}: {}", p.name, err.what()));
    }
    e.milliseconds = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    e.nodes_after = g.num_nodes();
    stats.total_milliseconds += e.milliseconds;
    if (options_.verify_each) {
      try {
        ir::verify(g);
      } catch (const Error& err) {
        throw InternalError(
            fmt::format("[passes] {}: the pass left invalid IR: {}", p.name, err.what()));
      }
    }
    if (dumps(p.name))
      dump << "# ---- IR after " << p.name << (e.changed ? "" : " (unchanged)") << "\n"
           << ir::print(g) << "\n"
           << std::flush;
    stats.passes.push_back(std::move(e));
  }
  return stats;
}

}  // namespace kiln::passes
