// The umbrella header: #include <kiln/kiln.h> brings in the whole public API of Kiln.
#pragma once

#include "kiln/accessor.h"
#include "kiln/core/allocator.h"
#include "kiln/core/device.h"
#include "kiln/core/dtype.h"
#include "kiln/core/error.h"
#include "kiln/core/scalar.h"
#include "kiln/core/thread_pool.h"
#include "kiln/functions.h"
#include "kiln/indexing.h"
#include "kiln/ir/ir.h"
#include "kiln/jit/trace.h"
#include "kiln/nn/functional.h"
#include "kiln/ops/op_kind.h"
#include "kiln/tensor.h"
#include "kiln/tensor_options.h"
#include "kiln/version.h"
