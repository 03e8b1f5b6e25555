// kiln-opt: the IR driver. Reads a graph in the IR text form (a file or stdin), runs named passes
// or the default pipeline (src/passes/pipeline.cpp) and prints the result as IR text or DOT. The
// golden tests under tests/ir/ run it piped into FileCheck.
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "codegen/llvm/kernel_ir.h"
#include "kiln/core/error.h"
#include "kiln/ir/dot.h"
#include "kiln/ir/parser.h"
#include "kiln/ir/printer.h"
#include "kiln/ir/verifier.h"
#include "kiln/passes/pipeline.h"

namespace {

constexpr std::string_view kUsage = R"(usage: kiln-opt [options] [file]
Reads one graph in Kiln's IR text form (docs/ir.md) from file, or stdin when file is '-' or
missing, runs passes and prints the result.

  --passes=a,b,...      run these passes, in this order (see --list-passes)
  --pipeline            run the default pipeline
  --emit=ir|dot|llvm    print IR text (default), Graphviz DOT, or the LLVM IR of each
                        fusion group's kernel (operands contiguous)
  --lanes=N             vector elements per iteration for --emit=llvm (default 8; 0: the
                        target's default, else 2..64)
  --llvm-opt=N          optimisation level for --emit=llvm (default 0: as emitted)
  --no-verify           do not verify the input and the IR after each pass
  --stats               print each pass's time and node counts to stderr
  --source-locations    print each node's source location as a comment
  --list-passes         list the passes and the default pipeline, then exit
  -o FILE               write the result to FILE instead of stdout
  -h, --help            show this text
KILN_DUMP_IR=all|<pass>[,<pass>] prints the IR after those passes to stderr.
)";

struct Options {
  std::vector<std::string> passes;
  bool pipeline = false;
  std::string emit = "ir";
  int lanes = 8;
  int llvm_opt = 0;
  bool verify = true;
  bool stats = false;
  bool locations = false;
  std::string input = "-";
  std::string output;
};

[[noreturn]] void usage_error(const std::string& msg) {
  std::cerr << "kiln-opt: " << msg << "\n" << kUsage;
  std::exit(2);
}

std::vector<std::string> split(std::string_view s) {
  std::vector<std::string> out;
  while (!s.empty()) {
    const size_t comma = s.find(',');
    if (comma != 0) out.emplace_back(s.substr(0, comma));
    if (comma == std::string_view::npos) break;
    s.remove_prefix(comma + 1);
  }
  return out;
}

Options parse_args(int argc, char** argv) {
  Options o;
  bool have_input = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "-h" || a == "--help") {
      std::cout << kUsage;
      std::exit(0);
    } else if (a == "--list-passes") {
      for (const auto& p : kiln::passes::registered_passes())
        std::cout << "  " << p.name << std::string(14 - std::min<size_t>(13, p.name.size()), ' ')
                  << p.summary << "\n";
      std::cout << "default pipeline:";
      for (const std::string& p : kiln::passes::default_pipeline()) std::cout << " " << p;
      std::cout << "\n";
      std::exit(0);
    } else if (a.starts_with("--passes=")) {
      for (std::string& p : split(a.substr(9))) o.passes.push_back(std::move(p));
    } else if (a == "--pipeline") {
      o.pipeline = true;
    } else if (a.starts_with("--emit=")) {
      o.emit = a.substr(7);
      if (o.emit != "ir" && o.emit != "dot" && o.emit != "llvm")
        usage_error("--emit takes ir, dot or llvm, got " + o.emit);
    } else if (a.starts_with("--lanes=") || a.starts_with("--llvm-opt=")) {
      const bool lanes = a.starts_with("--lanes=");
      const std::string v(a.substr(lanes ? 8 : 11));
      char* end = nullptr;
      const long n = std::strtol(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0' || n < 0 || n > (lanes ? 64 : 3) || (lanes && n == 1))
        usage_error(std::string(lanes ? "--lanes takes 0 (the target's default) or 2..64"
                                      : "--llvm-opt takes 0..3") +
                    ", got " + v);
      (lanes ? o.lanes : o.llvm_opt) = static_cast<int>(n);
    } else if (a == "--no-verify") {
      o.verify = false;
    } else if (a == "--stats") {
      o.stats = true;
    } else if (a == "--source-locations") {
      o.locations = true;
    } else if (a == "-o") {
      if (++i == argc) usage_error("-o needs a file name");
      o.output = argv[i];
    } else if (a.size() > 1 && a[0] == '-') {
      usage_error("unknown option " + std::string(a));
    } else {
      if (have_input) usage_error("more than one input file");
      o.input = a;
      have_input = true;
    }
  }
  if (o.pipeline && !o.passes.empty()) usage_error("--pipeline and --passes exclude each other");
  for (const std::string& p : o.passes)
    if (kiln::passes::find_pass(p) == nullptr)
      usage_error("unknown pass '" + p + "' (see --list-passes)");
  return o;
}

std::string read_input(const std::string& path) {
  if (path == "-") return std::string(std::istreambuf_iterator<char>(std::cin), {});
  std::ifstream f(path);
  if (!f) {
    std::cerr << "kiln-opt: cannot open " << path << "\n";
    std::exit(1);
  }
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse_args(argc, argv);
  const std::string text = read_input(o.input);
  try {
    auto g = kiln::ir::parse(text, o.input == "-" ? "<stdin>" : o.input);
    if (o.verify) kiln::ir::verify(*g);
    kiln::passes::PassManagerOptions pmo;
    pmo.verify_each = o.verify;
    kiln::passes::PassManager pm(pmo);
    const std::vector<std::string>& names =
        o.pipeline ? kiln::passes::default_pipeline() : o.passes;
    for (const std::string& p : names) pm.add(p);
    const kiln::passes::PassStats stats = pm.run(*g);
    if (o.stats) std::cerr << stats.str();
    kiln::ir::PrintOptions po;
    po.source_locations = o.locations;
    std::string result;
    if (o.emit == "llvm") {
      int k = 0;
      for (const kiln::ir::Node* n : g->block()->nodes()) {
        if (!n->kind().is(kiln::ir::Prim::FusionGroup)) continue;
        result += "; ---- fusion group " + std::to_string(k++) + "\n";
        result += kiln::codegen::llvm::fused_kernel_ir(*n, o.lanes, o.llvm_opt);
      }
      if (k == 0) result = "; no fusion groups (run fuse first)\n";
    } else {
      result = o.emit == "dot" ? kiln::ir::to_dot(*g) : kiln::ir::print(*g, po);
    }
    if (!result.empty() && result.back() != '\n') result += '\n';
    if (o.output.empty()) {
      std::cout << result;
    } else {
      std::ofstream f(o.output);
      f << result;
      if (!f) {
        std::cerr << "kiln-opt: cannot write " << o.output << "\n";
        return 1;
      }
    }
  } catch (const kiln::Error& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
  return 0;
}
