// Archives of Kiln's checkpoint format (docs/serialization.md): OutputArchive collects named
// tensors, numbers, strings and nested archives and writes them as one versioned file with a
// CRC-32; InputArchive reads and verifies such a file and hands entries back by key.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kiln/ivalue.h"
#include "kiln/tensor.h"

namespace kiln::serialize {

/// The format version this Kiln writes and the only one it reads.
inline constexpr uint32_t kFormatVersion = 1;

/// CRC-32 (ISO-HDLC / zlib polynomial 0xEDB88320) of bytes, continuing from crc.
uint32_t crc32(const void* data, size_t size, uint32_t crc = 0);

/// Named entries to be written to a file or stream, in insertion order.
class OutputArchive {
 public:
  OutputArchive() = default;
  /// A tensor (copied to contiguous CPU memory when written); is_buffer marks module buffers.
  void write(const std::string& key, const Tensor& tensor, bool is_buffer = false);
  /// An int, double, bool, string, int list or double list.
  void write(const std::string& key, const IValue& value);
  /// A nested archive (copied).
  void write(const std::string& key, const OutputArchive& nested_archive);

  /// Writes the archive as a file (replacing it).
  void save_to(const std::string& filename) const;
  void save_to(std::ostream& stream) const;
  /// The bytes of the file save_to would write.
  std::string to_bytes() const;

  /// Keys written so far, in order.
  std::vector<std::string> keys() const;

 private:
  friend class Writer;
  struct Entry;
  void add(Entry entry);
  std::vector<std::shared_ptr<const Entry>> entries_;
};

/// Entries read from a file or stream. Every format problem (truncation, a wrong magic or
/// version, a CRC mismatch, a malformed record) throws kiln::Error naming the file.
class InputArchive {
 public:
  InputArchive() = default;
  /// Reads and verifies a whole file; tensors are placed on device (CPU by default).
  void load_from(const std::string& filename, std::optional<Device> device = std::nullopt);
  void load_from(std::istream& stream, std::optional<Device> device = std::nullopt);
  /// Reads from bytes; name is what errors call the source.
  void load_from(const char* data, size_t size, std::optional<Device> device = std::nullopt,
                 const std::string& name = "<memory>");

  /// Reads the tensor under key. Into a defined tensor the values are copied in place, and
  /// its sizes must equal the stored ones (kiln::Error otherwise); an undefined tensor becomes
  /// the stored one. Returns false when the key is absent.
  bool try_read(const std::string& key, Tensor& tensor, bool is_buffer = false);
  /// Like try_read, but an absent key throws kiln::Error.
  void read(const std::string& key, Tensor& tensor, bool is_buffer = false);
  bool try_read(const std::string& key, IValue& value);
  void read(const std::string& key, IValue& value);
  bool try_read(const std::string& key, InputArchive& archive);
  void read(const std::string& key, InputArchive& archive);

  /// Keys in the order they were written.
  std::vector<std::string> keys() const;
  bool contains(const std::string& key) const { return index_.count(key) != 0; }
  /// Sizes of the tensor under key (nullopt when absent or not a tensor), to check before use.
  std::optional<std::vector<int64_t>> tensor_sizes(const std::string& key) const;
  /// "file.kiln" or "file.kiln: encoder.layers.0" for error messages.
  std::string where(const std::string& key = "") const;

 private:
  friend class Reader;
  struct Entry;
  const Entry* find(const std::string& key) const;
  const Entry& expect(const std::string& key, int tag) const;

  std::vector<std::shared_ptr<const Entry>> entries_;
  std::map<std::string, size_t> index_;
  std::string source_ = "<empty archive>";
  std::string prefix_;  // dotted path of this archive inside the file
};

}  // namespace kiln::serialize
