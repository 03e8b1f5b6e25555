// The on-disk half of the compile cache: content-addressed entries (compiled kernels as object
// files, later PTX) under KILN_CACHE_DIR, written atomically, each with a version header and a
// SHA-256 of its payload so a corrupt or foreign entry is detected, dropped and rebuilt.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace kiln::runtime {

struct DiskCacheStats {
  uint64_t hits = 0;
  uint64_t misses = 0;
  uint64_t writes = 0;
  uint64_t corrupt = 0;  // entries found damaged (and removed)
};

class DiskCache {
 public:
  /// Entries live under dir; an empty path disables the cache (every get misses, puts do nothing).
  explicit DiskCache(std::filesystem::path dir);
  /// $KILN_CACHE_DIR when set ("" or "off" disable the cache), else $XDG_CACHE_HOME/kiln, else
  /// $HOME/.cache/kiln; empty when none can be found.
  static std::filesystem::path default_dir();

  bool enabled() const { return !dir_.empty(); }
  const std::filesystem::path& dir() const { return dir_; }

  /// The payload stored under key (a lower-case hex digest), or nullopt on a miss. A damaged
  /// entry counts as corrupt, is removed and reads as a miss.
  std::optional<std::string> get(const std::string& key);
  /// Stores payload under key: written to a temporary file and renamed into place, so readers
  /// never see a partial entry and concurrent writers of one key are safe. Returns false when
  /// the entry could not be written (the cache is an optimisation: callers carry on).
  bool put(const std::string& key, std::string_view payload);

  DiskCacheStats stats() const;
  /// The file an entry lives in (for tests and tools).
  std::filesystem::path path_of(const std::string& key) const;

 private:
  std::filesystem::path dir_;
  std::atomic<uint64_t> hits_{0}, misses_{0}, writes_{0}, corrupt_{0};
};

}  // namespace kiln::runtime
