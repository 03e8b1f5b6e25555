// The pass manager: runs a list of named passes over a graph, optionally verifying the IR after
// each, printing it after the passes KILN_DUMP_IR names, and timing every pass. The default
// list is in pipeline.h; kiln-opt and the JIT drive passes through this class.
#pragma once

#include <functional>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/ir/graph.h"

namespace kiln::passes {

/// A pass: rewrites a graph in place; returns true when it changed it.
using PassFn = std::function<bool(ir::Graph&)>;

/// One named pass.
struct Pass {
  std::string name;
  PassFn run;
};

/// What one run of a pass manager did, pass by pass (the JIT's `explain` shows it).
struct PassStats {
  struct Entry {
    std::string name;
    double milliseconds = 0;
    bool changed = false;
    size_t nodes_before = 0;  // Graph::num_nodes() before and after the pass
    size_t nodes_after = 0;
  };
  std::vector<Entry> passes;
  double total_milliseconds = 0;
  /// A table: one line per pass with its time, whether it changed the graph and node counts.
  std::string str() const;
};

struct PassManagerOptions {
  /// Runs ir::verify after every pass (a failure names the pass). On by default in debug
  /// builds; tests and kiln-opt turn it on.
#ifdef NDEBUG
  bool verify_each = false;
#else
  bool verify_each = true;
#endif
  /// Which passes to print the IR after: "all", or pass names separated by commas. nullopt
  /// reads the KILN_DUMP_IR environment variable (unset: none).
  std::optional<std::string> dump;
  /// Where dumps go (nullptr: stderr).
  std::ostream* dump_stream = nullptr;
};

class PassManager {
 public:
  explicit PassManager(PassManagerOptions options = {});
  /// Appends a registered pass by name (see pipeline.h); kiln::Error listing the known names
  /// when there is none of that name.
  PassManager& add(std::string_view name);
  /// Appends a pass of one's own.
  PassManager& add(std::string name, PassFn fn);
  const std::vector<Pass>& passes() const { return passes_; }

  /// Runs the passes in order on g. An error inside a pass, or a verifier failure after it,
  /// is rethrown as kiln::Error "[passes] <name>: ..." keeping the original message.
  PassStats run(ir::Graph& g) const;

 private:
  bool dumps(std::string_view name) const;
  PassManagerOptions options_;
  std::vector<Pass> passes_;
};

}  // namespace kiln::passes
