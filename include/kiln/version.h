// Kiln's version, for on-disk formats and cache keys.
#pragma once

#define KILN_VERSION_MAJOR 0
#define KILN_VERSION_MINOR 1
#define KILN_VERSION_PATCH 0

namespace kiln {
/// "0.1.0"
const char* version();
}  // namespace kiln
