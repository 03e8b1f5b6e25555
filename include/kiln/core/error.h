// Errors: kiln::Error for bad user input (KILN_CHECK), InternalError for bugs (KILN_ASSERT).
// Messages read "[op] what happened: got X, expected Y." and are formatted with fmt.
#pragma once

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <stdexcept>
#include <string>

namespace kiln {

/// Thrown for any invalid use of the library (bad shapes, dtypes, devices, indices...).
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& msg) : std::runtime_error(msg) {}
};

/// Thrown when an internal invariant is broken: a bug in Kiln, never the user's fault.
class InternalError : public Error {
 public:
  explicit InternalError(const std::string& msg) : Error(msg) {}
};

namespace detail {
[[noreturn]] void throw_error(std::string msg);
[[noreturn]] void throw_internal(const char* file, int line, const char* cond, std::string msg);
}  // namespace detail

}  // namespace kiln

/// Checks user input; throws kiln::Error with a fmt-formatted message when cond is false.
#define KILN_CHECK(cond, ...)                                          \
  do {                                                                 \
    if (!(cond)) [[unlikely]] {                                        \
      ::kiln::detail::throw_error(::fmt::format(__VA_ARGS__));         \
    }                                                                  \
  } while (0)

/// Throws kiln::Error unconditionally.
#define KILN_FAIL(...) ::kiln::detail::throw_error(::fmt::format(__VA_ARGS__))

/// Checks an internal invariant (always on); throws kiln::InternalError.
#define KILN_ASSERT(cond, ...)                                                           \
  do {                                                                                   \
    if (!(cond)) [[unlikely]] {                                                          \
      ::kiln::detail::throw_internal(__FILE__, __LINE__, #cond, ::fmt::format(__VA_ARGS__)); \
    }                                                                                    \
  } while (0)
