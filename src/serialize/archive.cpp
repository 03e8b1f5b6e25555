// The checkpoint format (docs/serialization.md): a 32-byte header (magic, version, payload size,
// CRC-32 of the payload and of the header) and a payload of tagged records. Writer encodes an
// OutputArchive, Reader decodes and verifies bytes into an InputArchive, bounds-checking every
// read so that a damaged file gives a kiln::Error, never a crash.
#include "kiln/serialize/archive.h"

#include <array>
#include <bit>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>

#include "kiln/autograd/grad_mode.h"
#include "kiln/functions.h"

namespace kiln::serialize {

static_assert(std::endian::native == std::endian::little,
              "the archive format is little-endian; a big-endian port must byte-swap");

namespace {

constexpr std::array<uint8_t, 8> kMagic = {0x89, 'K', 'I', 'L', 'N', '\r', '\n', 0x1A};
constexpr size_t kHeaderSize = 32;
constexpr int kMaxDepth = 64;

enum Tag : uint8_t {
  kTagTensor = 1,
  kTagArchive = 2,
  kTagInt = 3,
  kTagDouble = 4,
  kTagBool = 5,
  kTagString = 6,
  kTagIntList = 7,
  kTagDoubleList = 8,
};

const char* tag_name(int tag) {
  switch (tag) {
    case kTagTensor:
      return "a tensor";
    case kTagArchive:
      return "an archive";
    case kTagInt:
      return "an int";
    case kTagDouble:
      return "a double";
    case kTagBool:
      return "a bool";
    case kTagString:
      return "a string";
    case kTagIntList:
      return "an int list";
    case kTagDoubleList:
      return "a double list";
    default:
      return "an unknown record";
  }
}

// Stable dtype codes of the file format (independent of the ScalarType enum's order).
struct DtypeCode {
  ScalarType type;
  uint8_t code;
};
constexpr DtypeCode kDtypeCodes[] = {
    {kFloat32, 1}, {kFloat64, 2}, {kFloat16, 3}, {kBFloat16, 4}, {kInt8, 5},
    {kUInt8, 6},   {kInt32, 7},   {kInt64, 8},   {kBool, 9},
};

uint8_t code_of(ScalarType t) {
  for (const DtypeCode& d : kDtypeCodes)
    if (d.type == t) return d.code;
  KILN_FAIL("[kiln::save] dtype {} has no code in the archive format", dtype_name(t));
}

std::array<uint32_t, 256> make_crc_table() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1u) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    table[i] = c;
  }
  return table;
}

}  // namespace

uint32_t crc32(const void* data, size_t size, uint32_t crc) {
  static const std::array<uint32_t, 256> table = make_crc_table();
  const auto* p = static_cast<const uint8_t*>(data);
  uint32_t c = ~crc;
  for (size_t i = 0; i < size; ++i) c = table[(c ^ p[i]) & 0xFFu] ^ (c >> 8);
  return ~c;
}

// ---- entries -------------------------------------------------------------------------------

struct OutputArchive::Entry {
  uint8_t tag = 0;
  std::string key;
  Tensor tensor;
  bool is_buffer = false;
  IValue value;
  OutputArchive nested;
};

struct InputArchive::Entry {
  uint8_t tag = 0;
  std::string key;
  Tensor tensor;
  bool is_buffer = false;
  IValue value;
  InputArchive nested;
};

void OutputArchive::add(Entry entry) {
  for (const auto& e : entries_)
    KILN_CHECK(e->key != entry.key, "[OutputArchive] key '{}' is written twice", entry.key);
  entries_.push_back(std::make_shared<const Entry>(std::move(entry)));
}

void OutputArchive::write(const std::string& key, const Tensor& tensor, bool is_buffer) {
  KILN_CHECK(tensor.defined(), "[OutputArchive] got an undefined tensor for key '{}'", key);
  Entry e;
  e.tag = kTagTensor;
  e.key = key;
  {
    NoGradGuard no_grad;
    e.tensor = tensor.detach().cpu().contiguous();
    // Own the bytes now: later in-place updates of the source must not change the archive.
    if (e.tensor.impl()->storage() == tensor.impl()->storage()) e.tensor = e.tensor.clone();
  }
  e.is_buffer = is_buffer;
  add(std::move(e));
}

void OutputArchive::write(const std::string& key, const IValue& value) {
  Entry e;
  e.key = key;
  e.value = value;
  if (value.is_int())
    e.tag = kTagInt;
  else if (value.is_double())
    e.tag = kTagDouble;
  else if (value.is_bool())
    e.tag = kTagBool;
  else if (value.is_string())
    e.tag = kTagString;
  else if (value.is_int_list())
    e.tag = kTagIntList;
  else if (value.is_double_list())
    e.tag = kTagDoubleList;
  else if (value.is_tensor())
    return write(key, value.toTensor());
  else
    KILN_FAIL(
        "[OutputArchive] cannot write a value of kind {} (key '{}'), expected an int, "
        "double, bool, string, int list or double list",
        value.kind_name(), key);
  add(std::move(e));
}

void OutputArchive::write(const std::string& key, const OutputArchive& nested_archive) {
  Entry e;
  e.tag = kTagArchive;
  e.key = key;
  e.nested = nested_archive;
  add(std::move(e));
}

std::vector<std::string> OutputArchive::keys() const {
  std::vector<std::string> out;
  for (const auto& e : entries_) out.push_back(e->key);
  return out;
}

// ---- writing -------------------------------------------------------------------------------

class Writer {
 public:
  std::string bytes;

  template <typename T>
  void put(T v) {
    char buf[sizeof(T)];
    std::memcpy(buf, &v, sizeof(T));
    bytes.append(buf, sizeof(T));
  }
  void put_string(const std::string& s) {
    put<uint32_t>(static_cast<uint32_t>(s.size()));
    bytes.append(s);
  }
  void body(const OutputArchive& a) {
    put<uint32_t>(static_cast<uint32_t>(a.entries_.size()));
    for (const auto& e : a.entries_) record(*e);
  }
  void record(const OutputArchive::Entry& e) {
    put<uint8_t>(e.tag);
    put_string(e.key);
    switch (e.tag) {
      case kTagTensor: {
        const Tensor& t = e.tensor;
        put<uint8_t>(e.is_buffer ? 1 : 0);
        put<uint8_t>(code_of(t.dtype()));
        put<uint32_t>(static_cast<uint32_t>(t.dim()));
        for (int64_t s : t.sizes()) put<int64_t>(s);
        const uint64_t n = static_cast<uint64_t>(t.nbytes());
        put<uint64_t>(n);
        if (n > 0) bytes.append(static_cast<const char*>(t.data_ptr()), n);
        break;
      }
      case kTagArchive:
        body(e.nested);
        break;
      case kTagInt:
        put<int64_t>(e.value.toInt());
        break;
      case kTagDouble:
        put<double>(e.value.toDouble());
        break;
      case kTagBool:
        put<uint8_t>(e.value.toBool() ? 1 : 0);
        break;
      case kTagString:
        put_string(e.value.toStringRef());
        break;
      case kTagIntList: {
        const auto& v = e.value.toIntList();
        put<uint32_t>(static_cast<uint32_t>(v.size()));
        for (int64_t x : v) put<int64_t>(x);
        break;
      }
      case kTagDoubleList: {
        const auto& v = e.value.toDoubleList();
        put<uint32_t>(static_cast<uint32_t>(v.size()));
        for (double x : v) put<double>(x);
        break;
      }
      default:
        KILN_ASSERT(false, "unknown archive tag {}", e.tag);
    }
  }
};

std::string OutputArchive::to_bytes() const {
  Writer payload;
  payload.body(*this);
  Writer header;
  header.bytes.append(reinterpret_cast<const char*>(kMagic.data()), kMagic.size());
  header.put<uint32_t>(kFormatVersion);
  header.put<uint32_t>(0);  // flags, reserved
  header.put<uint64_t>(payload.bytes.size());
  header.put<uint32_t>(crc32(payload.bytes.data(), payload.bytes.size()));
  header.put<uint32_t>(crc32(header.bytes.data(), header.bytes.size()));
  KILN_ASSERT(header.bytes.size() == kHeaderSize, "header is {} bytes", header.bytes.size());
  return header.bytes + payload.bytes;
}

void OutputArchive::save_to(std::ostream& stream) const {
  const std::string b = to_bytes();
  stream.write(b.data(), static_cast<std::streamsize>(b.size()));
  KILN_CHECK(stream.good(), "[kiln::save] writing {} bytes to the stream failed", b.size());
}

void OutputArchive::save_to(const std::string& filename) const {
  std::ofstream out(filename, std::ios::binary | std::ios::trunc);
  KILN_CHECK(out.is_open(), "[kiln::save] cannot open '{}' for writing: {}", filename,
             std::strerror(errno));
  save_to(out);
  out.close();
  KILN_CHECK(!out.fail(), "[kiln::save] writing '{}' failed: {}", filename, std::strerror(errno));
}

// ---- reading -------------------------------------------------------------------------------

class Reader {
 public:
  Reader(const char* data, size_t size, std::string name, std::optional<Device> device)
      : data_(data), size_(size), name_(std::move(name)), device_(device) {}

  void parse(InputArchive& root) {
    KILN_CHECK(size_ >= kHeaderSize,
               "[kiln::load] '{}' is too short to be a Kiln archive: {} bytes, the header alone "
               "is {} (truncated file?)",
               name_, size_, kHeaderSize);
    KILN_CHECK(std::memcmp(data_, kMagic.data(), kMagic.size()) == 0,
               "[kiln::load] '{}' is not a Kiln archive (its first 8 bytes are not the Kiln "
               "magic number)",
               name_);
    pos_ = kMagic.size();
    const uint32_t version = get<uint32_t>("version");
    get<uint32_t>("flags");
    const uint64_t payload = get<uint64_t>("payload size");
    const uint32_t payload_crc = get<uint32_t>("payload CRC");
    const uint32_t header_crc = get<uint32_t>("header CRC");
    KILN_CHECK(crc32(data_, 28) == header_crc,
               "[kiln::load] '{}': the header is corrupted (its CRC-32 does not match)", name_);
    KILN_CHECK(version == kFormatVersion,
               "[kiln::load] '{}' has archive format version {}, but this build of Kiln reads "
               "version {} only",
               name_, version, kFormatVersion);
    const uint64_t available = size_ - kHeaderSize;
    KILN_CHECK(payload <= available,
               "[kiln::load] '{}' is truncated: the header announces {} payload bytes, the file "
               "has {}",
               name_, payload, available);
    KILN_CHECK(payload == available,
               "[kiln::load] '{}' has {} unexpected bytes after the end of the archive", name_,
               available - payload);
    const uint32_t actual = crc32(data_ + kHeaderSize, payload);
    KILN_CHECK(actual == payload_crc,
               "[kiln::load] '{}' is corrupted: the payload's CRC-32 is {:08x}, the header says "
               "{:08x}",
               name_, actual, payload_crc);
    body(root, "", 0);
    KILN_CHECK(pos_ == size_, "[kiln::load] '{}' is malformed: {} bytes left after the last record",
               name_, size_ - pos_);
  }

 private:
  [[noreturn]] void malformed(const std::string& what) const {
    KILN_FAIL("[kiln::load] '{}' is malformed: {} at byte {}", name_, what, pos_);
  }
  void need(uint64_t n, const char* what) const {
    if (n > size_ - pos_) malformed(fmt::format("{} runs past the end of the file", what));
  }
  template <typename T>
  T get(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string get_string(const char* what) {
    const uint32_t n = get<uint32_t>(what);
    need(n, what);
    std::string s(data_ + pos_, n);
    pos_ += n;
    return s;
  }

  void body(InputArchive& a, const std::string& prefix, int depth) {
    if (depth > kMaxDepth) malformed("archives nested too deeply");
    a.source_ = name_;
    a.prefix_ = prefix;
    const uint32_t count = get<uint32_t>("record count");
    for (uint32_t i = 0; i < count; ++i) {
      auto e = std::make_shared<InputArchive::Entry>();
      record(*e, prefix, depth);
      if (a.index_.count(e->key)) malformed(fmt::format("key '{}' appears twice", e->key));
      a.index_.emplace(e->key, a.entries_.size());
      a.entries_.push_back(std::move(e));
    }
  }

  void record(InputArchive::Entry& e, const std::string& prefix, int depth) {
    e.tag = get<uint8_t>("record tag");
    e.key = get_string("record key");
    switch (e.tag) {
      case kTagTensor:
        e.tensor = tensor(e);
        break;
      case kTagArchive:
        body(e.nested, prefix.empty() ? e.key : prefix + "." + e.key, depth + 1);
        break;
      case kTagInt:
        e.value = IValue(get<int64_t>("int"));
        break;
      case kTagDouble:
        e.value = IValue(get<double>("double"));
        break;
      case kTagBool:
        e.value = IValue(get<uint8_t>("bool") != 0);
        break;
      case kTagString:
        e.value = IValue(get_string("string"));
        break;
      case kTagIntList: {
        const uint32_t n = get<uint32_t>("int list length");
        need(uint64_t{n} * 8, "int list");
        std::vector<int64_t> v(n);
        for (auto& x : v) x = get<int64_t>("int list");
        e.value = IValue(std::move(v));
        break;
      }
      case kTagDoubleList: {
        const uint32_t n = get<uint32_t>("double list length");
        need(uint64_t{n} * 8, "double list");
        std::vector<double> v(n);
        for (auto& x : v) x = get<double>("double list");
        e.value = IValue(std::move(v));
        break;
      }
      default:
        malformed(fmt::format("unknown record tag {} (key '{}')", e.tag, e.key));
    }
  }

  Tensor tensor(InputArchive::Entry& e) {
    const uint8_t flags = get<uint8_t>("tensor flags");
    e.is_buffer = (flags & 1u) != 0;
    const uint8_t code = get<uint8_t>("tensor dtype");
    std::optional<ScalarType> dtype;
    for (const DtypeCode& d : kDtypeCodes)
      if (d.code == code) dtype = d.type;
    if (!dtype) malformed(fmt::format("tensor '{}' has unknown dtype code {}", e.key, code));
    const uint32_t ndim = get<uint32_t>("tensor rank");
    if (ndim > 64) malformed(fmt::format("tensor '{}' has {} dims", e.key, ndim));
    std::vector<int64_t> sizes(ndim);
    int64_t numel = 1;
    for (auto& s : sizes) {
      s = get<int64_t>("tensor sizes");
      if (s < 0 || __builtin_mul_overflow(numel, s, &numel))
        malformed(fmt::format("tensor '{}' has invalid sizes", e.key));
    }
    const uint64_t nbytes = get<uint64_t>("tensor byte count");
    const uint64_t expected = static_cast<uint64_t>(numel) * element_size(*dtype);
    if (nbytes != expected)
      malformed(fmt::format("tensor '{}' of sizes {} and dtype {} has {} data bytes, expected {}",
                            e.key, shape_str(sizes), dtype_name(*dtype), nbytes, expected));
    need(nbytes, "tensor data");
    Tensor t = kiln::empty(sizes, kiln::dtype(*dtype));
    if (nbytes > 0) std::memcpy(t.data_ptr(), data_ + pos_, nbytes);
    pos_ += nbytes;
    return device_ && *device_ != t.device() ? t.to(*device_) : t;
  }

  const char* data_;
  size_t size_;
  size_t pos_ = 0;
  std::string name_;
  std::optional<Device> device_;
};

void InputArchive::load_from(const char* data, size_t size, std::optional<Device> device,
                             const std::string& name) {
  InputArchive fresh;
  Reader(data, size, name, device).parse(fresh);
  *this = std::move(fresh);
}

void InputArchive::load_from(std::istream& stream, std::optional<Device> device) {
  std::string bytes((std::istreambuf_iterator<char>(stream)), std::istreambuf_iterator<char>());
  load_from(bytes.data(), bytes.size(), device, "<stream>");
}

void InputArchive::load_from(const std::string& filename, std::optional<Device> device) {
  std::ifstream in(filename, std::ios::binary);
  KILN_CHECK(in.is_open(), "[kiln::load] cannot open '{}': {}", filename, std::strerror(errno));
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  KILN_CHECK(!in.bad(), "[kiln::load] reading '{}' failed: {}", filename, std::strerror(errno));
  load_from(bytes.data(), bytes.size(), device, filename);
}

// ---- lookups -------------------------------------------------------------------------------

const InputArchive::Entry* InputArchive::find(const std::string& key) const {
  auto it = index_.find(key);
  return it == index_.end() ? nullptr : entries_[it->second].get();
}

std::string InputArchive::where(const std::string& key) const {
  std::string path = prefix_.empty() ? key : (key.empty() ? prefix_ : prefix_ + "." + key);
  return path.empty() ? fmt::format("'{}'", source_)
                      : fmt::format("'{}', entry '{}'", source_, path);
}

const InputArchive::Entry& InputArchive::expect(const std::string& key, int tag) const {
  const Entry* e = find(key);
  KILN_CHECK(e != nullptr, "[kiln::load] {}: missing, expected {} there", where(key),
             tag_name(tag));
  KILN_CHECK(e->tag == tag, "[kiln::load] {}: holds {}, expected {}", where(key), tag_name(e->tag),
             tag_name(tag));
  return *e;
}

bool InputArchive::try_read(const std::string& key, Tensor& tensor, bool) {
  if (find(key) == nullptr) return false;
  const Entry& e = expect(key, kTagTensor);
  if (!tensor.defined()) {
    tensor = e.tensor.clone();
    return true;
  }
  KILN_CHECK(tensor.sizes().equals(e.tensor.sizes()),
             "[kiln::load] {}: the archive holds sizes {}, expected {} (the sizes of the tensor "
             "being loaded)",
             where(key), shape_str(e.tensor.sizes()), shape_str(tensor.sizes()));
  NoGradGuard no_grad;
  Tensor dst = tensor;
  dst.copy_(e.tensor);
  return true;
}

void InputArchive::read(const std::string& key, Tensor& tensor, bool is_buffer) {
  expect(key, kTagTensor);
  try_read(key, tensor, is_buffer);
}

bool InputArchive::try_read(const std::string& key, IValue& value) {
  const Entry* e = find(key);
  if (e == nullptr) return false;
  KILN_CHECK(e->tag != kTagTensor && e->tag != kTagArchive,
             "[kiln::load] {}: holds {}, expected a number, string or list", where(key),
             tag_name(e->tag));
  value = e->value;
  return true;
}

void InputArchive::read(const std::string& key, IValue& value) {
  KILN_CHECK(find(key) != nullptr, "[kiln::load] {}: missing, expected a value there", where(key));
  try_read(key, value);
}

bool InputArchive::try_read(const std::string& key, InputArchive& archive) {
  if (find(key) == nullptr) return false;
  archive = expect(key, kTagArchive).nested;
  return true;
}

void InputArchive::read(const std::string& key, InputArchive& archive) {
  archive = expect(key, kTagArchive).nested;
}

std::vector<std::string> InputArchive::keys() const {
  std::vector<std::string> out;
  for (const auto& e : entries_) out.push_back(e->key);
  return out;
}

std::optional<std::vector<int64_t>> InputArchive::tensor_sizes(const std::string& key) const {
  const Entry* e = find(key);
  if (e == nullptr || e->tag != kTagTensor) return std::nullopt;
  return e->tensor.sizes().vec();
}

}  // namespace kiln::serialize
