// The compile cache's disk layer: SHA-256 against the FIPS 180-4 vectors, and entries that round
// trip, miss, detect corruption/truncation/foreign versions, and survive concurrent writers.
#include <filesystem>
#include <fstream>
#include <thread>

#include "core/sha256.h"
#include "runtime/disk_cache.h"
#include "test_util.h"

namespace kiln::testing {
namespace {

namespace fs = std::filesystem;
using runtime::DiskCache;

TEST(Sha256, StandardVectors) {
  EXPECT_EQ(detail::sha256_hex(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(detail::sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(detail::sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  std::string million(1000000, 'a');
  EXPECT_EQ(detail::sha256_hex(million),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  // Incremental updates in odd pieces give the same digest.
  detail::Sha256 h;
  for (size_t i = 0; i < million.size(); i += 997) h.update(million.substr(i, 997));
  EXPECT_EQ(h.hex(), detail::sha256_hex(million));
}

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() /
           ("kiln-cache-test-" + std::to_string(::getpid()) + "-" +
            std::to_string(reinterpret_cast<uintptr_t>(this)));
    fs::remove_all(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

std::string key_for(const std::string& s) { return detail::sha256_hex(s); }

TEST(DiskCache, RoundTripAndMiss) {
  TempDir dir;
  DiskCache cache(dir.path);
  const std::string key = key_for("graph 1");
  EXPECT_FALSE(cache.get(key).has_value());
  std::string payload = "object\0file\xff bytes";
  payload += std::string(1000, '\x7f');
  ASSERT_TRUE(cache.put(key, payload));
  auto got = cache.get(key);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(*got, payload);
  // A second cache object on the same directory (another process) sees the entry.
  DiskCache other(dir.path);
  EXPECT_EQ(other.get(key).value_or(""), payload);
  auto st = cache.stats();
  EXPECT_EQ(st.hits, 1u);
  EXPECT_EQ(st.misses, 1u);
  EXPECT_EQ(st.writes, 1u);
  EXPECT_EQ(st.corrupt, 0u);
  // No temporary files left behind.
  for (auto& e : fs::recursive_directory_iterator(dir.path))
    EXPECT_EQ(e.path().string().find(".tmp."), std::string::npos) << e.path();
}

void corrupt(const fs::path& p, const std::function<void(std::string&)>& edit) {
  std::string data;
  {
    std::ifstream f(p, std::ios::binary);
    data.assign(std::istreambuf_iterator<char>(f), {});
  }
  edit(data);
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(data.data(), static_cast<std::streamsize>(data.size()));
}

TEST(DiskCache, DamagedEntriesAreDetectedRemovedAndRebuilt) {
  TempDir dir;
  DiskCache cache(dir.path);
  const std::string payload(4096, 'k');
  const std::vector<std::pair<std::string, std::function<void(std::string&)>>> damage = {
      {"flipped payload byte", [](std::string& d) { d[d.size() - 100] ^= 1; }},
      {"flipped digest byte", [&](std::string& d) { d[d.size() - payload.size() - 5] ^= 0x40; }},
      {"truncated", [](std::string& d) { d.resize(d.size() / 2); }},
      {"trailing garbage", [](std::string& d) { d += "xyz"; }},
      {"bad magic", [](std::string& d) { d[0] = 'X'; }},
      {"other format version", [](std::string& d) { d[8] = 9; }},
      {"other kiln version", [](std::string& d) {
         const size_t v = d.find(kiln::version());
         d[v] = '9';
       }},
      {"empty file", [](std::string& d) { d.clear(); }},
  };
  uint64_t expected_corrupt = 0;
  for (const auto& [what, edit] : damage) {
    SCOPED_TRACE(what);
    const std::string key = key_for(what);
    ASSERT_TRUE(cache.put(key, payload));
    corrupt(cache.path_of(key), edit);
    EXPECT_FALSE(cache.get(key).has_value());
    EXPECT_EQ(cache.stats().corrupt, ++expected_corrupt);
    EXPECT_FALSE(fs::exists(cache.path_of(key)));
    // Rebuilt: the next put and get work again.
    ASSERT_TRUE(cache.put(key, payload));
    EXPECT_EQ(cache.get(key).value_or(""), payload);
  }
}

TEST(DiskCache, EntryOfAnotherKeyIsRejected) {
  TempDir dir;
  DiskCache cache(dir.path);
  const std::string a = key_for("a"), b = key_for("b");
  ASSERT_TRUE(cache.put(a, "payload a"));
  fs::create_directories(cache.path_of(b).parent_path());
  fs::copy_file(cache.path_of(a), cache.path_of(b));
  EXPECT_FALSE(cache.get(b).has_value());
  EXPECT_EQ(cache.stats().corrupt, 1u);
}

TEST(DiskCache, ConcurrentWritersOfOneKey) {
  TempDir dir;
  DiskCache cache(dir.path);
  const std::string key = key_for("shared");
  const std::string payload(1 << 16, 'p');
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 20; ++i) {
        cache.put(key, payload);
        auto got = cache.get(key);
        // A reader sees either nothing yet or a complete entry, never a partial one.
        if (got) {
          EXPECT_EQ(got->size(), payload.size());
        }
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(cache.get(key).value_or(""), payload);
  EXPECT_EQ(cache.stats().corrupt, 0u);
}

TEST(DiskCache, DisabledAndDefaultDirectory) {
  DiskCache off{fs::path()};
  EXPECT_FALSE(off.enabled());
  EXPECT_FALSE(off.put(key_for("x"), "y"));
  EXPECT_FALSE(off.get(key_for("x")).has_value());
  ::setenv("KILN_CACHE_DIR", "/tmp/kiln-here", 1);
  EXPECT_EQ(DiskCache::default_dir(), fs::path("/tmp/kiln-here"));
  ::setenv("KILN_CACHE_DIR", "off", 1);
  EXPECT_TRUE(DiskCache::default_dir().empty());
  ::unsetenv("KILN_CACHE_DIR");
  ::setenv("XDG_CACHE_HOME", "/tmp/xdg", 1);
  EXPECT_EQ(DiskCache::default_dir(), fs::path("/tmp/xdg/kiln"));
  ::unsetenv("XDG_CACHE_HOME");
  EXPECT_KILN_ERROR(off.get("../etc/passwd"), {"hex digest"});
}

TEST(DiskCache, UnwritableDirectoryIsNotFatal) {
  DiskCache cache(fs::path("/proc/kiln-cannot-write-here"));
  EXPECT_FALSE(cache.put(key_for("k"), "v"));
  EXPECT_FALSE(cache.get(key_for("k")).has_value());
}

}  // namespace
}  // namespace kiln::testing
