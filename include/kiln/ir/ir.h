// The IR umbrella header: #include <kiln/ir/ir.h> for graphs, types, the builder, the printer and
// parser, the verifier, the DOT export and the reference interpreter.
#pragma once

#include "kiln/ir/builder.h"
#include "kiln/ir/dot.h"
#include "kiln/ir/graph.h"
#include "kiln/ir/interpreter.h"
#include "kiln/ir/node_kind.h"
#include "kiln/ir/parser.h"
#include "kiln/ir/printer.h"
#include "kiln/ir/type.h"
#include "kiln/ir/verifier.h"
