// The default pass pipeline and the registry of named passes: the one place that lists, in
// order, what runs between tracing and code generation. src/passes/pipeline.cpp reads as the
// list; docs/ir.md explains the order.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "kiln/passes/pass_manager.h"

namespace kiln::passes {

/// A pass that can be named (kiln-opt --passes=..., PassManager::add).
struct PassInfo {
  std::string_view name;
  std::string_view summary;  // one line, for kiln-opt --list-passes
  bool (*run)(ir::Graph&);   // with the pass's default options
};
/// Every named pass, in pipeline order.
const std::vector<PassInfo>& registered_passes();
/// The registered pass of that name, or nullptr.
const PassInfo* find_pass(std::string_view name);

/// The names of the default pipeline, in order.
const std::vector<std::string>& default_pipeline();

/// Runs the default pipeline on g (see default_pipeline()) and returns the per-pass stats.
PassStats run_default_pipeline(ir::Graph& g, const PassManagerOptions& options = {});

}  // namespace kiln::passes
