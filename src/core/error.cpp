// Throw helpers behind KILN_CHECK / KILN_ASSERT, kept out of line so the checks stay cheap inline.
#include "kiln/core/error.h"

namespace kiln::detail {

void throw_error(std::string msg) { throw Error(std::move(msg)); }

void throw_internal(const char* file, int line, const char* cond, std::string msg) {
  throw InternalError(fmt::format("Internal error in Kiln (a bug, please report it) at {}:{}: "
                                  "{} failed. {}",
                                  file, line, cond, msg));
}

}  // namespace kiln::detail
