// DiskCache: entry format (all integers little-endian)
//   "KILNKC01" | u32 format version | kiln version, NUL | key, NUL | u64 payload size |
//   32-byte SHA-256 of the payload | payload
// Entries live at <dir>/<first two hex digits of key>/<key>.
#include "runtime/disk_cache.h"

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <system_error>
#include <thread>

#include "core/sha256.h"
#include "kiln/core/error.h"
#include "kiln/version.h"

namespace kiln::runtime {
namespace {

constexpr char kMagic[8] = {'K', 'I', 'L', 'N', 'K', 'C', '0', '1'};
constexpr uint32_t kFormatVersion = 1;

void put_u32(std::string& s, uint32_t v) {
  for (int i = 0; i < 4; ++i) s += static_cast<char>((v >> (8 * i)) & 0xff);
}
void put_u64(std::string& s, uint64_t v) {
  for (int i = 0; i < 8; ++i) s += static_cast<char>((v >> (8 * i)) & 0xff);
}

// A cursor over an entry that fails (returns false) instead of reading past the end.
struct Reader {
  std::string_view s;
  size_t pos = 0;
  bool bytes(size_t n, std::string_view* out) {
    if (s.size() - pos < n) return false;
    *out = s.substr(pos, n);
    pos += n;
    return true;
  }
  bool u32(uint32_t* v) {
    std::string_view b;
    if (!bytes(4, &b)) return false;
    *v = 0;
    for (int i = 0; i < 4; ++i) *v |= uint32_t(static_cast<uint8_t>(b[i])) << (8 * i);
    return true;
  }
  bool u64(uint64_t* v) {
    std::string_view b;
    if (!bytes(8, &b)) return false;
    *v = 0;
    for (int i = 0; i < 8; ++i) *v |= uint64_t(static_cast<uint8_t>(b[i])) << (8 * i);
    return true;
  }
  bool cstr(std::string_view* out) {
    const size_t end = s.find('\0', pos);
    if (end == std::string_view::npos) return false;
    *out = s.substr(pos, end - pos);
    pos = end + 1;
    return true;
  }
};

bool valid_key(const std::string& key) {
  if (key.size() < 16) return false;
  for (char c : key)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

std::string digest_bytes(std::string_view payload) {
  auto d = detail::Sha256().update(payload).digest();
  return std::string(reinterpret_cast<const char*>(d.data()), d.size());
}

}  // namespace

DiskCache::DiskCache(std::filesystem::path dir) : dir_(std::move(dir)) {}

std::filesystem::path DiskCache::default_dir() {
  if (const char* d = std::getenv("KILN_CACHE_DIR")) {
    std::string v = d;
    if (v.empty() || v == "off" || v == "0") return {};
    return v;
  }
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x != nullptr && *x != '\0')
    return std::filesystem::path(x) / "kiln";
  if (const char* h = std::getenv("HOME"); h != nullptr && *h != '\0')
    return std::filesystem::path(h) / ".cache" / "kiln";
  return {};
}

std::filesystem::path DiskCache::path_of(const std::string& key) const {
  return dir_ / key.substr(0, 2) / key;
}

std::optional<std::string> DiskCache::get(const std::string& key) {
  KILN_CHECK(valid_key(key), "[compile cache] got key '{}', expected a lower-case hex digest",
             key);
  if (!enabled()) {
    ++misses_;
    return std::nullopt;
  }
  const std::filesystem::path p = path_of(key);
  std::ifstream f(p, std::ios::binary);
  if (!f) {
    ++misses_;
    return std::nullopt;
  }
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string data = ss.str();
  Reader r{data};
  std::string_view magic, version, stored_key, digest, payload;
  uint32_t format = 0;
  uint64_t size = 0;
  const bool ok = r.bytes(8, &magic) && std::memcmp(magic.data(), kMagic, 8) == 0 &&
                  r.u32(&format) && format == kFormatVersion && r.cstr(&version) &&
                  version == kiln::version() && r.cstr(&stored_key) && stored_key == key &&
                  r.u64(&size) && r.bytes(32, &digest) && r.bytes(size, &payload) &&
                  r.pos == data.size() && digest == digest_bytes(payload);
  if (!ok) {
    // Damaged, truncated, or written by another format/version: drop it; the caller rebuilds.
    ++corrupt_;
    ++misses_;
    std::error_code ec;
    std::filesystem::remove(p, ec);
    return std::nullopt;
  }
  ++hits_;
  return std::string(payload);
}

bool DiskCache::put(const std::string& key, std::string_view payload) {
  KILN_CHECK(valid_key(key), "[compile cache] got key '{}', expected a lower-case hex digest",
             key);
  if (!enabled()) return false;
  std::string entry(kMagic, 8);
  put_u32(entry, kFormatVersion);
  entry += kiln::version();
  entry += '\0';
  entry += key;
  entry += '\0';
  put_u64(entry, payload.size());
  entry += digest_bytes(payload);
  entry += payload;

  const std::filesystem::path final_path = path_of(key);
  std::error_code ec;
  std::filesystem::create_directories(final_path.parent_path(), ec);
  if (ec) return false;
  // A name unique to this writer, in the same directory so the rename is atomic.
  thread_local std::mt19937_64 rng(std::random_device{}() ^
                                   std::hash<std::thread::id>{}(std::this_thread::get_id()));
  const std::filesystem::path tmp =
      final_path.string() + ".tmp." + std::to_string(rng());
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) return false;
    f.write(entry.data(), static_cast<std::streamsize>(entry.size()));
    f.flush();
    if (!f) {
      f.close();
      std::filesystem::remove(tmp, ec);
      return false;
    }
  }
  std::filesystem::rename(tmp, final_path, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    return false;
  }
  ++writes_;
  return true;
}

DiskCacheStats DiskCache::stats() const {
  return DiskCacheStats{hits_.load(), misses_.load(), writes_.load(), corrupt_.load()};
}

}  // namespace kiln::runtime
