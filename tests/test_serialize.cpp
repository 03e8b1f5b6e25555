// Tests of kiln::save / kiln::load and the archive format: CRC-32 against a bitwise reference,
// round trips of tensors of every dtype, modules (parameters and buffers) and optimizer state
// (training resumes identically), and every failure: truncation, flipped bytes, a wrong magic
// or version, trailing bytes, missing entries and wrong shapes, each a clear kiln::Error.
#include <unistd.h>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "nn_test_util.h"

namespace kiln {
namespace {

using testing::close;
using testing::random_tensor;
using testing::to_vector;
namespace F = nn::functional;

// A fresh file path under the test's temporary directory, removed at destruction. ctest runs
// the parameterised cases as separate processes in parallel, so the path carries the pid and the
// running test's full name: two cases never share a file.
struct TempFile {
  std::string path;
  explicit TempFile(const std::string& name) : path(make_path(name)) {}
  static std::string make_path(const std::string& name) {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string test = info != nullptr ? std::string(info->test_suite_name()) + "." + info->name()
                                       : std::string("none");
    for (char& c : test)
      if (c == '/') c = '_';
    return ::testing::TempDir() + "kiln_" + name + "_" + test + "_" +
           std::to_string(static_cast<long>(::getpid())) + ".kiln";
  }
  ~TempFile() { std::remove(path.c_str()); }
};

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}
void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// CRC-32 one bit at a time, straight from the definition (reflected, polynomial 0xEDB88320).
uint32_t crc32_bitwise(const std::string& s) {
  uint32_t c = 0xFFFFFFFFu;
  for (unsigned char ch : s) {
    c ^= ch;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
  }
  return ~c;
}

TEST(Crc32, MatchesBitwiseDefinitionAndChains) {
  std::string data;
  for (int i = 0; i < 1000; ++i) data.push_back(static_cast<char>((i * 131 + 7) & 0xFF));
  EXPECT_EQ(serialize::crc32(data.data(), data.size()), crc32_bitwise(data));
  // The standard check value of CRC-32/ISO-HDLC.
  EXPECT_EQ(serialize::crc32("123456789", 9), 0xCBF43926u);
  const uint32_t part = serialize::crc32(data.data(), 400);
  EXPECT_EQ(serialize::crc32(data.data() + 400, 600, part), crc32_bitwise(data));
  EXPECT_EQ(serialize::crc32(nullptr, 0), 0u);
}

class SerializeDtype : public ::testing::TestWithParam<ScalarType> {};

TEST_P(SerializeDtype, TensorRoundTrip) {
  TempFile f("dtype");
  Tensor t = random_tensor({3, 0, 2}, GetParam());
  Tensor u = random_tensor({4, 5}, GetParam(), -100, 100).t();  // non-contiguous
  Tensor s = random_tensor({}, GetParam());                     // 0-dim
  kiln::save(std::vector<Tensor>{t, u, s}, f.path);
  std::vector<Tensor> back;
  kiln::load(back, f.path);
  ASSERT_EQ(back.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    const Tensor& orig = i == 0 ? t : (i == 1 ? u : s);
    EXPECT_EQ(back[i].dtype(), orig.dtype());
    EXPECT_EQ(back[i].sizes().vec(), orig.sizes().vec());
    EXPECT_TRUE(kiln::equal(back[i], orig)) << i;
  }
}

INSTANTIATE_TEST_SUITE_P(AllDtypes, SerializeDtype,
                         ::testing::Values(kFloat32, kFloat64, kFloat16, kBFloat16, kInt8, kUInt8,
                                           kInt32, kInt64, kBool));

TEST(Serialize, SingleTensorAndStreams) {
  Tensor t = random_tensor({2, 3});
  std::stringstream ss;
  kiln::save(t, ss);
  Tensor back = kiln::ones({7});  // replaced, like libtorch's torch::load(tensor)
  kiln::load(back, ss);
  EXPECT_TRUE(kiln::equal(back, t));
  // The archive owns its bytes: changing the tensor after write does not change the file.
  serialize::OutputArchive a;
  a.write("x", t);
  a.write("n", IValue(int64_t{42}));
  a.write("s", IValue(std::string("hi")));
  a.write("l", IValue(std::vector<double>{1.5, -2}));
  t.fill_(0);
  serialize::InputArchive in;
  const std::string bytes = a.to_bytes();
  in.load_from(bytes.data(), bytes.size());
  Tensor x;
  in.read("x", x);
  EXPECT_NE(x.abs().sum().item<double>(), 0.0);
  IValue v;
  in.read("n", v);
  EXPECT_EQ(v.toInt(), 42);
  in.read("s", v);
  EXPECT_EQ(v.toStringRef(), "hi");
  in.read("l", v);
  EXPECT_EQ(v.toDoubleList(), (std::vector<double>{1.5, -2}));
  EXPECT_EQ(in.keys(), (std::vector<std::string>{"x", "n", "s", "l"}));
  EXPECT_KILN_ERROR(a.write("x", t), {"key 'x' is written twice"});
  EXPECT_KILN_ERROR(in.read("n", x), {"entry 'n'", "holds an int, expected a tensor"});
  EXPECT_KILN_ERROR(in.read("zz", x), {"entry 'zz'", "missing"});
}

struct ModelImpl : nn::Module {
  ModelImpl() {
    fc = register_module("fc", nn::Linear(4, 3));
    bn = register_module("bn", nn::BatchNorm1d(3));
    head = register_module("head", nn::Sequential(nn::ReLU(), nn::Linear(3, 2)));
  }
  Tensor forward(const Tensor& x) { return head->forward(bn(fc(x))); }
  nn::Linear fc{nullptr};
  nn::BatchNorm1d bn{nullptr};
  nn::Sequential head{nullptr};
};
KILN_MODULE(Model);

TEST(Serialize, ModuleRoundTripIncludesBuffers) {
  TempFile f("module");
  manual_seed(1);
  Model a;
  a(random_tensor({8, 4}));  // updates bn's running statistics
  kiln::save(a, f.path);
  manual_seed(2);
  Model b;
  kiln::load(b, f.path);
  auto pa = a->named_parameters(), pb = b->named_parameters();
  for (size_t i = 0; i < pa.size(); ++i)
    EXPECT_TRUE(kiln::equal(pa[i].value(), pb[i].value())) << pa[i].key();
  auto ba = a->named_buffers(), bb = b->named_buffers();
  for (size_t i = 0; i < ba.size(); ++i)
    EXPECT_TRUE(kiln::equal(ba[i].value(), bb[i].value())) << ba[i].key();
  EXPECT_EQ(b->bn->num_batches_tracked.item<int64_t>(), 1);
  // Loaded in place: the module's own handles see the values, and they still train.
  EXPECT_TRUE(b->fc->weight.is_same(pb["fc.weight"]));
  EXPECT_TRUE(b->fc->weight.requires_grad());
  a->eval();
  b->eval();
  Tensor x = random_tensor({5, 4});
  EXPECT_TRUE(kiln::equal(a(x), b(x)));
  // The archive layout: parameters at the top, one nested archive per submodule.
  serialize::InputArchive in;
  in.load_from(f.path);
  EXPECT_EQ(in.keys(), (std::vector<std::string>{"fc", "bn", "head"}));
  serialize::InputArchive bn;
  in.read("bn", bn);
  EXPECT_EQ(bn.keys(), (std::vector<std::string>{"weight", "bias", "running_mean", "running_var",
                                                 "num_batches_tracked"}));
}

TEST(Serialize, WrongShapesAndMissingEntriesLeaveTheModuleUnchanged) {
  TempFile f("shapes");
  nn::Sequential small(nn::Linear(4, 3), nn::Linear(3, 2));
  kiln::save(small, f.path);
  nn::Sequential wide(nn::Linear(4, 3), nn::Linear(3, 5));
  std::vector<double> before = to_vector(wide[0]->as<nn::Linear>()->weight);
  EXPECT_KILN_ERROR(kiln::load(wide, f.path),
                    {"[kiln::load]", f.path, "entry '1.weight'", "[2, 3]", "[5, 3]"});
  EXPECT_EQ(to_vector(wide[0]->as<nn::Linear>()->weight), before);  // nothing was copied
  nn::Sequential deeper(nn::Linear(4, 3), nn::Linear(3, 2), nn::Linear(2, 2));
  EXPECT_KILN_ERROR(kiln::load(deeper, f.path), {"entry '2'", "missing"});
  nn::Sequential nobias(nn::Linear(4, 3), nn::Linear(nn::LinearOptions(3, 2).bias(false)));
  kiln::load(nobias, f.path);  // extra entries in the file are ignored, like libtorch
}

// A model and Adam after a few steps, and a function continuing the training.
void train_steps(nn::Linear& fc, optim::Optimizer& opt, const Tensor& x, const Tensor& y, int n) {
  for (int i = 0; i < n; ++i) {
    opt.zero_grad();
    F::mse_loss(fc(x), y).backward();
    opt.step();
  }
}

TEST(Serialize, OptimizerStateResumesTrainingExactly) {
  TempFile fm("opt_model"), fo("opt_state");
  Tensor x = random_tensor({16, 3}), y = random_tensor({16, 2});
  manual_seed(4);
  nn::Linear a(3, 2);
  optim::Adam opt_a(a->parameters(), optim::AdamOptions(0.05).amsgrad(true));
  train_steps(a, opt_a, x, y, 3);
  kiln::save(a, fm.path);
  kiln::save(opt_a, fo.path);

  nn::Linear b(3, 2);
  optim::Adam opt_b(b->parameters(), optim::AdamOptions(0.9));
  kiln::load(b, fm.path);
  kiln::load(opt_b, fo.path);
  EXPECT_DOUBLE_EQ(opt_b.param_groups()[0].options().get_lr(), 0.05);
  train_steps(a, opt_a, x, y, 4);
  train_steps(b, opt_b, x, y, 4);
  EXPECT_TRUE(kiln::equal(a->weight, b->weight));
  EXPECT_TRUE(kiln::equal(a->bias, b->bias));

  // SGD with momentum too, and the mismatches.
  optim::SGD sgd(b->parameters(), optim::SGDOptions(0.1).momentum(0.9));
  train_steps(b, sgd, x, y, 2);
  TempFile fs("sgd_state");
  kiln::save(sgd, fs.path);
  optim::SGD sgd2(a->parameters(), optim::SGDOptions(0.3));
  kiln::load(sgd2, fs.path);
  EXPECT_EQ(sgd2.state().size(), 2u);
  EXPECT_DOUBLE_EQ(static_cast<optim::SGDOptions&>(sgd2.param_groups()[0].options()).momentum(),
                   0.9);
  optim::Adam wrong_kind(a->parameters());
  EXPECT_KILN_ERROR(kiln::load(wrong_kind, fs.path), {"SGD optimizer, expected Adam"});
  nn::Linear other(5, 2);
  optim::SGD wrong_shape(other->parameters(), optim::SGDOptions(0.1));
  EXPECT_KILN_ERROR(kiln::load(wrong_shape, fs.path),
                    {"momentum_buffer", "[2, 3]", "[2, 5]", "parameter 0"});
  optim::RMSprop rms({a->weight});
  train_steps(a, rms, x, y, 1);
  TempFile fr("rms_state");
  kiln::save(rms, fr.path);
  optim::RMSprop rms2({b->weight}, optim::RMSpropOptions(0.5));
  kiln::load(rms2, fr.path);
  EXPECT_EQ(static_cast<optim::RMSpropParamState&>(*rms2.state().begin()->second).step(), 1);
  optim::RMSprop two_params({a->weight, a->bias});
  EXPECT_KILN_ERROR(kiln::load(two_params, fr.path), {"has 1 parameters", "has 2"});
}

// ---- damaged files -------------------------------------------------------------------------

class DamagedFile : public ::testing::Test {
 protected:
  void SetUp() override {
    nn::Sequential m(nn::Linear(3, 4), nn::BatchNorm1d(4));
    kiln::save(m, good_.path);
    bytes_ = read_bytes(good_.path);
    ASSERT_GT(bytes_.size(), 32u);
  }
  void expect_load_error(const std::string& bytes, const std::vector<std::string>& fragments) {
    write_bytes(bad_.path, bytes);
    nn::Sequential m(nn::Linear(3, 4), nn::BatchNorm1d(4));
    EXPECT_KILN_ERROR(kiln::load(m, bad_.path), fragments);
  }
  // Rewrites the header's CRC after an edit of the header, so that only the edit is wrong.
  static void fix_header_crc(std::string& b) {
    const uint32_t crc = serialize::crc32(b.data(), 28);
    std::memcpy(&b[28], &crc, 4);
  }
  TempFile good_{"good"}, bad_{"bad"};
  std::string bytes_;
};

TEST_F(DamagedFile, TruncatedAnywhere) {
  for (size_t len :
       {size_t{0}, size_t{7}, size_t{31}, size_t{32}, bytes_.size() / 2, bytes_.size() - 1}) {
    SCOPED_TRACE(len);
    expect_load_error(bytes_.substr(0, len),
                      {"[kiln::load]", bad_.path, len < 32 ? "too short" : "truncated"});
  }
}

TEST_F(DamagedFile, FlippedBytes) {
  // Every 37th byte of the payload: the payload CRC catches each.
  for (size_t pos = 32; pos < bytes_.size(); pos += 37) {
    SCOPED_TRACE(pos);
    std::string b = bytes_;
    b[pos] = static_cast<char>(b[pos] ^ 0x10);
    expect_load_error(b, {"is corrupted", "CRC-32"});
  }
  // In the header: its own CRC.
  for (size_t pos : {size_t{9}, size_t{17}, size_t{25}}) {
    std::string b = bytes_;
    b[pos] = static_cast<char>(b[pos] ^ 0x01);
    expect_load_error(b, {"header is corrupted"});
  }
  std::string b = bytes_;
  b[1] = 'X';
  expect_load_error(b, {"not a Kiln archive"});
}

TEST_F(DamagedFile, WrongVersionAndTrailingBytes) {
  std::string b = bytes_;
  const uint32_t version = 7;
  std::memcpy(&b[8], &version, 4);
  fix_header_crc(b);
  expect_load_error(b, {"format version 7", "reads version 1"});
  expect_load_error(bytes_ + "xyz", {"3 unexpected bytes after the end"});
}

TEST_F(DamagedFile, MalformedPayloadWithAValidCrc) {
  // A record that claims more data than the file has, with header and CRC made consistent:
  // the bounds checks (not the CRC) must catch it.
  serialize::OutputArchive a;
  a.write("t", kiln::ones({4}));
  std::string b = a.to_bytes();
  // The tensor's byte count sits in the last 8 + 16 bytes: payload ends with u64 nbytes + data.
  const size_t nbytes_pos = b.size() - 16 - 8;
  const uint64_t huge = 1u << 30;
  std::memcpy(&b[nbytes_pos], &huge, 8);
  const uint32_t crc = serialize::crc32(b.data() + 32, b.size() - 32);
  std::memcpy(&b[24], &crc, 4);
  fix_header_crc(b);
  serialize::InputArchive in;
  EXPECT_KILN_ERROR(in.load_from(b.data(), b.size()),
                    {"is malformed", "tensor 't'", "1073741824 data bytes, expected 16"});
}

}  // namespace
}  // namespace kiln
