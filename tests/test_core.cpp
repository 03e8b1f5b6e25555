// Tests for the core layer (src/core/*, src/ops/op_table.cpp): dtype names and sizes, libtorch's
// promotion lattice and result_type rules (dim / zero-dim / wrapped-number), Device parsing,
// Scalar, the error types, the op table, the CPU allocator's caches, and the thread pool behind
// parallel_for.
#include <algorithm>
#include <atomic>
#include <cstring>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "test_util.h"

namespace kiln {
namespace {

// expect_error with the statement and its line in the failure trace.
using testing::expect_error;

// Kiln's dtypes in enum order, with the C++ type sizes and names written out by hand.
struct DtypeRow {
  ScalarType t;
  size_t size;
  const char* name;
  const char* type_name;
};
const std::vector<DtypeRow>& dtype_rows() {
  static const std::vector<DtypeRow> rows = {
      {kBool, 1, "bool", "Bool"},
      {kUInt8, 1, "uint8", "Byte"},
      {kInt8, 1, "int8", "Char"},
      {kInt32, 4, "int32", "Int"},
      {kInt64, 8, "int64", "Long"},
      {kFloat16, 2, "float16", "Half"},
      {kBFloat16, 2, "bfloat16", "BFloat16"},
      {kFloat32, 4, "float32", "Float"},
      {kFloat64, 8, "float64", "Double"},
  };
  return rows;
}

TEST(Dtype, NamesSizesAndCategories) {
  ASSERT_EQ(dtype_rows().size(), static_cast<size_t>(kNumScalarTypes));
  for (const DtypeRow& r : dtype_rows()) {
    SCOPED_TRACE(r.name);
    EXPECT_EQ(element_size(r.t), r.size);
    EXPECT_EQ(dtype_name(r.t), r.name);
    EXPECT_EQ(dtype_type_name(r.t), r.type_name);
    std::ostringstream os;
    os << r.t;
    EXPECT_EQ(os.str(), r.name);
    bool fp = r.t == kHalf || r.t == kBFloat16 || r.t == kFloat || r.t == kDouble;
    EXPECT_EQ(is_floating_point(r.t), fp);
    EXPECT_EQ(is_integral(r.t), !fp && r.t != kBool);
    EXPECT_EQ(is_integral(r.t, /*include_bool=*/true), !fp);
    EXPECT_EQ(is_signed(r.t), r.t != kBool && r.t != kUInt8);
  }
  EXPECT_EQ(scalar_type_of<float>, kFloat);
  EXPECT_EQ(scalar_type_of<int64_t>, kLong);
  EXPECT_EQ(scalar_type_of<Half>, kHalf);
  EXPECT_EQ(scalar_type_of<BFloat16>, kBFloat16);
  EXPECT_EQ(scalar_type_of<bool>, kBool);
  EXPECT_EQ(scalar_type_of<uint8_t>, kByte);
}

// torch.promote_types restricted to Kiln's nine dtypes, copied from c10's _promoteTypesLookup.
// The one deliberate difference: uint8 with int8 is int16 in libtorch; Kiln has no int16, so the
// smallest lossless common type is int32.
TEST(Dtype, PromoteTypesMatchesLibtorchTable) {
  const ScalarType b1 = kBool, u1 = kByte, i1 = kChar, i4 = kInt, i8 = kLong, f2 = kHalf,
                   bf = kBFloat16, f4 = kFloat, f8 = kDouble;
  const ScalarType order[9] = {b1, u1, i1, i4, i8, f2, bf, f4, f8};
  const ScalarType table[9][9] = {
      /*        b1  u1  i1  i4  i8  f2  bf  f4  f8 */
      /* b1 */ {b1, u1, i1, i4, i8, f2, bf, f4, f8},
      /* u1 */ {u1, u1, i4, i4, i8, f2, bf, f4, f8},
      /* i1 */ {i1, i4, i1, i4, i8, f2, bf, f4, f8},
      /* i4 */ {i4, i4, i4, i4, i8, f2, bf, f4, f8},
      /* i8 */ {i8, i8, i8, i8, i8, f2, bf, f4, f8},
      /* f2 */ {f2, f2, f2, f2, f2, f2, f4, f4, f8},
      /* bf */ {bf, bf, bf, bf, bf, f4, bf, f4, f8},
      /* f4 */ {f4, f4, f4, f4, f4, f4, f4, f4, f8},
      /* f8 */ {f8, f8, f8, f8, f8, f8, f8, f8, f8},
  };
  for (int a = 0; a < 9; ++a)
    for (int b = 0; b < 9; ++b)
      EXPECT_EQ(promote_types(order[a], order[b]), table[a][b])
          << "promote_types(" << order[a] << ", " << order[b] << ")";
}

TEST(Dtype, DefaultDtype) {
  EXPECT_EQ(get_default_dtype(), kFloat);
  set_default_dtype(kDouble);
  EXPECT_EQ(get_default_dtype(), kDouble);
  // Wrapped floating-point numbers follow the default dtype.
  EXPECT_EQ(Scalar(2.5).type(), kDouble);
  EXPECT_EQ(result_type(kiln::ones({2}, kInt), Scalar(2.5)), kDouble);
  set_default_dtype(kFloat);
  EXPECT_EQ(get_default_dtype(), kFloat);
  EXPECT_KILN_ERROR(set_default_dtype(kInt), {"[set_default_dtype]", "int32"});
  EXPECT_EQ(get_default_dtype(), kFloat);
}

// ---- result_type --------------------------------------------------------------------------------

Tensor dim_tensor(ScalarType t) { return kiln::zeros({3}, t); }
Tensor zero_dim(ScalarType t) { return kiln::zeros({}, t); }

TEST(ResultType, DimensionedTensorsPromote) {
  for (const DtypeRow& a : dtype_rows())
    for (const DtypeRow& b : dtype_rows())
      EXPECT_EQ(result_type(dim_tensor(a.t), dim_tensor(b.t)), promote_types(a.t, b.t))
          << a.name << " with " << b.name;
}

TEST(ResultType, ZeroDimTensorsOnlyRaiseTheCategory) {
  // A zero-dim tensor participates like a dimensioned one only when it is of a higher category.
  EXPECT_EQ(result_type(dim_tensor(kInt), zero_dim(kLong)), kInt);
  EXPECT_EQ(result_type(dim_tensor(kUInt8), zero_dim(kLong)), kUInt8);
  EXPECT_EQ(result_type(dim_tensor(kFloat), zero_dim(kDouble)), kFloat);
  EXPECT_EQ(result_type(dim_tensor(kHalf), zero_dim(kDouble)), kHalf);
  EXPECT_EQ(result_type(dim_tensor(kInt), zero_dim(kDouble)), kDouble);
  EXPECT_EQ(result_type(dim_tensor(kInt), zero_dim(kHalf)), kHalf);
  EXPECT_EQ(result_type(dim_tensor(kBool), zero_dim(kLong)), kLong);
  EXPECT_EQ(result_type(dim_tensor(kBool), zero_dim(kUInt8)), kUInt8);
  // Two zero-dim tensors promote normally.
  EXPECT_EQ(result_type(zero_dim(kInt), zero_dim(kLong)), kLong);
  EXPECT_EQ(result_type(zero_dim(kFloat), zero_dim(kDouble)), kDouble);
  // Order does not matter.
  EXPECT_EQ(result_type(zero_dim(kLong), dim_tensor(kInt)), kInt);
  EXPECT_EQ(result_type(zero_dim(kDouble), dim_tensor(kInt)), kDouble);
}

TEST(ResultType, WrappedScalars) {
  EXPECT_EQ(result_type(dim_tensor(kInt), Scalar(2.5)), kFloat);
  EXPECT_EQ(result_type(dim_tensor(kLong), Scalar(2.5)), kFloat);
  EXPECT_EQ(result_type(dim_tensor(kUInt8), Scalar(2.5)), kFloat);
  EXPECT_EQ(result_type(dim_tensor(kHalf), Scalar(2.5)), kHalf);
  EXPECT_EQ(result_type(dim_tensor(kBFloat16), Scalar(2.5)), kBFloat16);
  EXPECT_EQ(result_type(dim_tensor(kDouble), Scalar(2.5)), kDouble);
  EXPECT_EQ(result_type(dim_tensor(kBool), Scalar(2)), kLong);
  EXPECT_EQ(result_type(dim_tensor(kBool), Scalar(2.5)), kFloat);
  EXPECT_EQ(result_type(dim_tensor(kBool), Scalar(true)), kBool);
  EXPECT_EQ(result_type(dim_tensor(kInt), Scalar(int64_t{1} << 40)), kInt);
  EXPECT_EQ(result_type(dim_tensor(kInt8), Scalar(true)), kInt8);
  EXPECT_EQ(result_type(dim_tensor(kUInt8), Scalar(-1)), kUInt8);
  EXPECT_EQ(result_type(dim_tensor(kFloat), Scalar(7)), kFloat);
  EXPECT_EQ(result_type(dim_tensor(kHalf), Scalar(7)), kHalf);
  // A zero-dim tensor outranks a wrapped number of the same category.
  EXPECT_EQ(result_type(zero_dim(kInt), Scalar(7)), kInt);
  EXPECT_EQ(result_type(zero_dim(kHalf), Scalar(2.5)), kHalf);
  EXPECT_EQ(result_type(zero_dim(kInt), Scalar(2.5)), kFloat);
  EXPECT_EQ(result_type(zero_dim(kBool), Scalar(7)), kLong);
}

TEST(ResultType, ResultDtypesOfOpsFollowTheRules) {
  EXPECT_EQ((dim_tensor(kInt) + 2.5).dtype(), kFloat);
  EXPECT_EQ((dim_tensor(kInt) + zero_dim(kLong)).dtype(), kInt);
  EXPECT_EQ((dim_tensor(kBool) + 2).dtype(), kLong);
  EXPECT_EQ((dim_tensor(kHalf) + 2.5).dtype(), kHalf);
  EXPECT_EQ((dim_tensor(kUInt8) + dim_tensor(kInt8)).dtype(), kInt);
  EXPECT_EQ((dim_tensor(kHalf) * dim_tensor(kBFloat16)).dtype(), kFloat);
}

// ---- Device
// ---------------------------------------------------------------------------------------

TEST(Device, ParsesValidStrings) {
  Device cpu("cpu");
  EXPECT_TRUE(cpu.is_cpu());
  EXPECT_FALSE(cpu.has_index());
  EXPECT_EQ(cpu.str(), "cpu");
  Device cuda("cuda");
  EXPECT_TRUE(cuda.is_cuda());
  EXPECT_EQ(cuda.index(), -1);
  Device cuda1("cuda:1");
  EXPECT_TRUE(cuda1.is_cuda());
  EXPECT_EQ(cuda1.index(), 1);
  EXPECT_EQ(cuda1.str(), "cuda:1");
  EXPECT_EQ(Device("cuda:0"), Device(kCUDA, 0));
  EXPECT_NE(Device("cuda:0"), Device(kCUDA));
  EXPECT_EQ(Device(kCPU), cpu);
  std::ostringstream os;
  os << cuda1 << ' ' << kCPU;
  EXPECT_EQ(os.str(), "cuda:1 cpu");
}

TEST(Device, RejectsBadStrings) {
  for (const char* bad :
       {"gpu", "", "CUDA", "cuda:", "cuda:x", "cuda:-1", "cuda:1x", "cuda:1:2", " cpu", "cpu "}) {
    SCOPED_TRACE(bad);
    EXPECT_KILN_ERROR(Device d{std::string(bad)}, {"[Device]"});
  }
}

TEST(Device, CpuIndexMustBeZeroOrAbsent) {
  // libtorch: "CPU device index must be -1 or zero".
  EXPECT_EQ(Device("cpu:0").index(), 0);
  EXPECT_KILN_ERROR(Device d{std::string("cpu:1")}, {"[Device]"});
}

// ---- Scalar
// ---------------------------------------------------------------------------------------

TEST(Scalar, KindsTypesAndConversions) {
  Scalar i = 3;
  EXPECT_TRUE(i.is_integral());
  EXPECT_FALSE(i.is_floating_point());
  EXPECT_FALSE(i.is_boolean());
  EXPECT_EQ(i.type(), kLong);
  EXPECT_EQ(i.toLong(), 3);
  EXPECT_EQ(i.toDouble(), 3.0);

  Scalar d = -2.75;
  EXPECT_TRUE(d.is_floating_point());
  EXPECT_EQ(d.type(), kFloat);
  EXPECT_EQ(d.toLong(), -2);  // truncation like C++
  EXPECT_EQ(d.toFloat(), -2.75f);
  EXPECT_TRUE(d.toBool());

  Scalar b = true;
  EXPECT_TRUE(b.is_boolean());
  EXPECT_FALSE(b.is_integral());
  EXPECT_TRUE(b.is_integral(/*include_bool=*/true));
  EXPECT_EQ(b.type(), kBool);
  EXPECT_EQ(b.toLong(), 1);

  Scalar f = 1.5f;
  EXPECT_TRUE(f.is_floating_point());
  EXPECT_EQ(f.toDouble(), 1.5);
  Scalar u = uint8_t{200};
  EXPECT_TRUE(u.is_integral());
  EXPECT_EQ(u.toLong(), 200);
  Scalar big = int64_t{1} << 62;
  EXPECT_EQ(big.toLong(), int64_t{1} << 62);  // int64 kept exact, not through double

  Scalar h = Half(0.5f);
  EXPECT_TRUE(h.is_floating_point());
  EXPECT_EQ(h.toDouble(), 0.5);
  EXPECT_EQ(static_cast<float>(Scalar(3).to<Half>()), 3.0f);
  EXPECT_EQ(static_cast<float>(Scalar(1.25).to<BFloat16>()), 1.25f);
  EXPECT_EQ(Scalar(0.0).to<bool>(), false);

  EXPECT_EQ((-Scalar(4)).toLong(), -4);
  EXPECT_TRUE((-Scalar(4)).is_integral());
  EXPECT_EQ((-Scalar(1.5)).toDouble(), -1.5);
  EXPECT_TRUE(Scalar().is_integral());
  EXPECT_EQ(Scalar().toLong(), 0);

  std::ostringstream os;
  os << Scalar(3) << ' ' << Scalar(2.5) << ' ' << Scalar(true);
  EXPECT_EQ(os.str(), "3 2.5 true");
}

// ---- errors
// ---------------------------------------------------------------------------------------

TEST(Error, CheckThrowsErrorWithFormattedMessage) {
  auto f = [](int v) { KILN_CHECK(v > 0, "[myop] got {}, expected a positive value", v); };
  EXPECT_NO_THROW(f(1));
  try {
    f(-3);
    FAIL() << "KILN_CHECK did not throw";
  } catch (const InternalError&) {
    FAIL() << "KILN_CHECK threw InternalError, expected plain kiln::Error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "[myop] got -3, expected a positive value");
  }
  EXPECT_KILN_ERROR(KILN_FAIL("[other] always {}", "fails"), {"[other] always fails"});
  // kiln::Error is a std::runtime_error so generic handlers catch it.
  EXPECT_THROW(f(0), std::runtime_error);
}

TEST(Error, AssertThrowsInternalErrorWithLocation) {
  auto g = [](int v) { KILN_ASSERT(v == 1, "v was {}", v); };
  EXPECT_NO_THROW(g(1));
  try {
    g(2);
    FAIL() << "KILN_ASSERT did not throw";
  } catch (const InternalError& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("test_core.cpp"), std::string::npos) << msg;
    EXPECT_NE(msg.find("v == 1"), std::string::npos) << msg;
    EXPECT_NE(msg.find("v was 2"), std::string::npos) << msg;
  }
  // InternalError is a kiln::Error.
  EXPECT_THROW(g(3), Error);
}

TEST(Error, UndefinedTensorThrows) {
  Tensor t;
  EXPECT_FALSE(t.defined());
  EXPECT_KILN_ERROR((void)t.sizes(), {"undefined"});
  EXPECT_KILN_ERROR((void)t.numel(), {"undefined"});
}

// ---- op table
// -------------------------------------------------------------------------------------

struct ExpectedRow {
  ops::OpKind kind;
  const char* name;
  ops::OpFamily family;
};
std::vector<ExpectedRow> expected_rows() {
  using ops::OpFamily;
  using ops::OpKind;
  return {
#define KILN_UNARY_OP(Name, fn, r, t) {OpKind::Name, #fn, OpFamily::Unary},
#define KILN_BINARY_OP(Name, fn, r, t) {OpKind::Name, #fn, OpFamily::Binary},
#define KILN_REDUCE_OP(Name, fn, r, t) {OpKind::Name, #fn, OpFamily::Reduce},
#define KILN_OP(Name, fn, family, r, t, s) {OpKind::Name, #fn, OpFamily::family},
#include "kiln/ops/ops.def"
  };
}

TEST(OpTable, EveryRowRoundTripsThroughItsName) {
  auto rows = expected_rows();
  ASSERT_EQ(static_cast<size_t>(ops::num_ops()), rows.size());
  std::set<std::string> names;
  for (const ExpectedRow& r : rows) {
    SCOPED_TRACE(r.name);
    const ops::OpInfo& info = ops::op_info(r.kind);
    EXPECT_EQ(info.kind, r.kind);
    EXPECT_EQ(info.name, r.name);
    EXPECT_EQ(info.family, r.family);
    auto back = ops::op_from_name(info.name);
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(*back, r.kind);
    EXPECT_TRUE(names.insert(std::string(info.name)).second) << "duplicate op name " << r.name;
  }
  for (int k = 0; k < ops::num_ops(); ++k) {
    auto kind = static_cast<ops::OpKind>(k);
    EXPECT_EQ(ops::op_from_name(ops::op_info(kind).name), kind) << "row " << k;
  }
  EXPECT_FALSE(ops::op_from_name("no_such_op").has_value());
  EXPECT_FALSE(ops::op_from_name("").has_value());
  EXPECT_FALSE(ops::op_from_name("Add").has_value());  // mnemonics are lower-case
}

TEST(OpTable, TraitsAndDtypeRules) {
  using ops::DtypeRule;
  using ops::OpKind;
  const auto& add = ops::op_info(OpKind::Add);
  EXPECT_TRUE(add.has(ops::kCommutative));
  EXPECT_TRUE(add.has(ops::kFusible));
  EXPECT_TRUE(add.is_elementwise());
  EXPECT_FALSE(ops::op_info(OpKind::Sub).has(ops::kCommutative));
  EXPECT_TRUE(ops::op_info(OpKind::Sub).has(ops::kNoBool));
  EXPECT_TRUE(ops::op_info(OpKind::Gelu).has(ops::kFloatOnly));
  EXPECT_EQ(ops::op_info(OpKind::Div).dtype_rule, DtypeRule::IntToFloat);
  EXPECT_EQ(ops::op_info(OpKind::Lt).dtype_rule, DtypeRule::Bool);
  EXPECT_EQ(ops::op_info(OpKind::Sum).dtype_rule, DtypeRule::SumLike);
  EXPECT_TRUE(ops::op_info(OpKind::Sum).is_reduction());
  EXPECT_TRUE(ops::op_info(OpKind::Permute).is_movement());
  EXPECT_TRUE(ops::op_info(OpKind::Mm).is_library_call());
  EXPECT_TRUE(ops::op_info(OpKind::Conv2d).is_library_call());
  EXPECT_EQ(ops::op_info(OpKind::Cat).schema, "(Tensor[] tensors, int dim) -> Tensor");
  EXPECT_TRUE(ops::op_info(OpKind::Where).is_elementwise());
  EXPECT_FALSE(ops::op_info(OpKind::Mm).is_elementwise());
}

// ---- thread pool
// ----------------------------------------------------------------------------------

// ---- the CPU allocator --------------------------------------------------------------------
// Sizes below, inside and above the size-class cache (64 KiB .. 1 MiB) and the large-block cache.
const size_t kAllocSizes[] = {1,        63,
                              4096,     65535,
                              65536,    65537,
                              80 << 10, (80 << 10) + 1,
                              300000,   (1 << 20) - 1,
                              1 << 20,  (1 << 20) + 1,
                              3 << 20};

TEST(CpuAllocator, AlignedWritableAndReusedAfterFree) {
  Allocator* a = get_allocator(kCPU);
  for (size_t n : kAllocSizes) {
    SCOPED_TRACE(n);
    void* first;
    {
      DataPtr p = a->allocate(n);
      ASSERT_NE(p.ptr, nullptr);
      EXPECT_EQ(reinterpret_cast<uintptr_t>(p.ptr) % 64, 0u);
      std::memset(p.ptr, 0xab, n);  // the whole block is writable
      first = p.ptr;
      p.deleter(p.ptr);
    }
    // Cached sizes come back as the same block.
    DataPtr q = a->allocate(n);
    if (n >= (64u << 10)) {
      EXPECT_EQ(q.ptr, first);
    }
    std::memset(q.ptr, 0xcd, n);
    q.deleter(q.ptr);
  }
  EXPECT_EQ(a->allocate(0).ptr, nullptr);
}

TEST(CpuAllocator, SizeClassesHoldTheirRequest) {
  // Every size of a class reuses the class's block, and a block never serves a larger request.
  Allocator* a = get_allocator(kCPU);
  DataPtr p = a->allocate(100 << 10);
  void* block = p.ptr;
  p.deleter(p.ptr);
  DataPtr q = a->allocate((96 << 10) + 1);  // same 112 KiB class
  EXPECT_EQ(q.ptr, block);
  std::memset(q.ptr, 1, (96 << 10) + 1);
  DataPtr r = a->allocate(112 << 10);  // still that class, but its block is in use
  EXPECT_NE(r.ptr, block);
  std::memset(r.ptr, 2, 112 << 10);
  r.deleter(r.ptr);
  q.deleter(q.ptr);
}

TEST(CpuAllocator, ThreadsAllocateAndFreeConcurrently) {
  Allocator* a = get_allocator(kCPU);
  std::vector<std::thread> threads;
  std::atomic<int> bad{0};
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      std::vector<DataPtr> live;
      for (int i = 0; i < 2000; ++i) {
        const size_t n = kAllocSizes[(i * 7 + t) % std::size(kAllocSizes)];
        DataPtr p = a->allocate(n);
        static_cast<unsigned char*>(p.ptr)[n - 1] = static_cast<unsigned char>(t);
        live.push_back(std::move(p));
        if (live.size() > 8) {
          DataPtr& old = live.front();
          if (reinterpret_cast<uintptr_t>(old.ptr) % 64 != 0) ++bad;
          old.deleter(old.ptr);
          live.erase(live.begin());
        }
      }
      for (DataPtr& p : live) p.deleter(p.ptr);
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
}

// Tensors over the cache: a block handed out again holds no stale aliasing (values written
// through a new tensor are its own).
TEST(CpuAllocator, TensorsOfCachedSizesAreIndependent) {
  for (int64_t n : {int64_t{20000}, int64_t{70000}, int64_t{300000}}) {
    Tensor x = full({n}, 1.0f);
    x = Tensor();
    Tensor y = full({n}, 2.0f), z = full({n}, 3.0f);
    EXPECT_NE(y.data_ptr(), z.data_ptr());
    EXPECT_EQ(y.sum().item<double>(), 2.0 * static_cast<double>(n));
    EXPECT_EQ(z.sum().item<double>(), 3.0 * static_cast<double>(n));
  }
}

// Restores the thread count a test changed.
class ThreadPoolTest : public ::testing::Test {
 protected:
  void SetUp() override { saved_ = get_num_threads(); }
  void TearDown() override { set_num_threads(saved_); }
  int saved_ = 1;
};

// Runs parallel_for and checks every index in [begin, end) is visited exactly once, chunks are
// disjoint and non-empty, and there are no more chunks than the grain allows.
void check_cover(int64_t begin, int64_t end, int64_t grain) {
  SCOPED_TRACE(::testing::Message() << "threads " << get_num_threads() << ", range [" << begin
                                    << ", " << end << "), grain " << grain);
  int64_t n = std::max<int64_t>(end - begin, 0);
  std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
  std::atomic<int64_t> chunks{0};
  std::atomic<bool> bad_chunk{false};
  parallel_for(begin, end, grain, [&](int64_t lo, int64_t hi) {
    if (lo >= hi || lo < begin || hi > end) bad_chunk = true;
    chunks.fetch_add(1);
    for (int64_t i = lo; i < hi; ++i) hits[static_cast<size_t>(i - begin)].fetch_add(1);
  });
  EXPECT_FALSE(bad_chunk.load());
  for (int64_t i = 0; i < n; ++i)
    ASSERT_EQ(hits[static_cast<size_t>(i)].load(), 1) << "index " << begin + i;
  if (n == 0) {
    EXPECT_EQ(chunks.load(), 0);
    return;
  }
  int64_t g = std::max<int64_t>(grain, 1);
  EXPECT_LE(chunks.load(), (n + g - 1) / g);
}

TEST_F(ThreadPoolTest, ParallelForCoversRangeExactlyOnce) {
  for (int threads : {1, 2, 3, 4, 7}) {
    set_num_threads(threads);
    EXPECT_EQ(get_num_threads(), threads);
    check_cover(0, 0, 1);
    check_cover(5, 3, 1);  // empty (end < begin)
    check_cover(0, 1, 1);
    check_cover(0, 10, 4);
    check_cover(0, 100, 1);
    check_cover(-17, 1000, 7);
    check_cover(3, 100003, 1000);
    check_cover(0, 1 << 20, 32768);
    check_cover(0, 50, 1000);  // below the grain: one inline call
  }
}

TEST_F(ThreadPoolTest, BackToBackRegionsNeverOverlap) {
  // Many short regions with varying chunk counts: a worker that wakes up late must not run a
  // chunk of a later region twice or let a region return before all its chunks finished.
  set_num_threads(4);
  for (int iter = 0; iter < 3000; ++iter) {
    int64_t n = 2 + iter % 9;
    std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
    parallel_for(0, n, 1, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) hits[static_cast<size_t>(i)].fetch_add(1);
    });
    for (int64_t i = 0; i < n; ++i)
      ASSERT_EQ(hits[static_cast<size_t>(i)].load(), 1) << "iteration " << iter << " index " << i;
  }
}

TEST_F(ThreadPoolTest, RethrowsExceptionFromAChunk) {
  for (int threads : {1, 4}) {
    set_num_threads(threads);
    SCOPED_TRACE(threads);
    expect_error(
        [] {
          parallel_for(0, 1000, 10, [](int64_t lo, int64_t hi) {
            if (lo <= 500 && 500 < hi) KILN_FAIL("[chunk] failed at {}", 500);
          });
        },
        {"[chunk] failed at 500"});
    EXPECT_THROW(
        parallel_for(0, 1000, 10, [](int64_t, int64_t) { throw std::out_of_range("every chunk"); }),
        std::out_of_range);
    // The pool stays usable after an exception.
    check_cover(0, 1000, 10);
  }
}

TEST_F(ThreadPoolTest, NestedParallelForRunsInline) {
  set_num_threads(4);
  std::vector<std::atomic<int>> hits(64 * 64);
  parallel_for(0, 64, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i)
      parallel_for(0, 64, 1, [&](int64_t a, int64_t b) {
        for (int64_t j = a; j < b; ++j) hits[static_cast<size_t>(i * 64 + j)].fetch_add(1);
      });
  });
  for (size_t k = 0; k < hits.size(); ++k) ASSERT_EQ(hits[k].load(), 1) << "index " << k;
}

TEST_F(ThreadPoolTest, SetNumThreadsValidates) {
  EXPECT_KILN_ERROR(set_num_threads(0), {"[set_num_threads]", "0"});
  EXPECT_KILN_ERROR(set_num_threads(-2), {"[set_num_threads]", "-2"});
  EXPECT_EQ(get_num_threads(), saved_);
  set_num_threads(1);
  EXPECT_EQ(get_num_threads(), 1);
  check_cover(0, 100000, 10);
}

TEST_F(ThreadPoolTest, KernelsGiveTheSameResultForAnyThreadCount) {
  Tensor a = testing::random_tensor({300, 257}), b = testing::random_tensor({257});
  set_num_threads(1);
  Tensor ref = (a * b + 1).contiguous();
  for (int threads : {2, 3, 8}) {
    set_num_threads(threads);
    EXPECT_TRUE(testing::close(a * b + 1, ref, 0, 0)) << threads << " threads";
    EXPECT_TRUE(testing::close(a.t().contiguous().t() * b + 1, ref, 0, 0)) << threads << " threads";
  }
}

}  // namespace
}  // namespace kiln
