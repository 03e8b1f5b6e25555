// Linear algebra of the eager CPU core: mm, bmm, addmm, matmul, linear and dot. Every op lowers
// to one batched GEMM: float32/bfloat16 run on oneDNN's matmul (strided operands described by
// memory descriptors, no copies), float64, integers and what oneDNN lacks on a blocked kernel.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "kiln/core/thread_pool.h"
#include "kiln/functions.h"
#include "tensor/internal.h"
#include "tensor/onednn.h"
#include "tensor/record.h"

namespace kiln {
namespace {

using detail::check_cpu;
using detail::make_empty;

// Elements of work per parallel chunk (like the elementwise kernels).
constexpr int64_t kGrain = 32768;
// Multiply-adds per oneDNN thread: below this an OpenMP team costs more than it saves.
constexpr int64_t kMacGrain = 1 << 17;
// Tiles of the blocked kernel: an accumulator tile of kRowTile x kColTile and a kDepthTile x
// kColTile panel of the right operand stay in L2 while the depth loop runs.
constexpr int64_t kRowTile = 32;
constexpr int64_t kColTile = 256;
constexpr int64_t kDepthTile = 128;

// out[b] = alpha * (a[b] @ m[b]) + beta * out[b] + bias, with a [Ba, M, K], m [Bm, K, N] where
// Ba and Bm are each 1 (broadcast over the batch) or B, out [B, M, N] contiguous, bias
// undefined or a contiguous [N]. beta == 0 never reads out, so NaNs there do not leak through.
struct Gemm {
  Tensor a, m, out, bias;
  Scalar alpha = 1, beta = 0;
};

std::string scalar_str(const Scalar& s) {
  return s.is_floating_point() ? fmt::format("{}", s.toDouble()) : fmt::format("{}", s.toLong());
}

bool is_zero(const Scalar& s) {
  return s.is_floating_point() ? s.toDouble() == 0 : s.toLong() == 0;
}

// ---- oneDNN path --------------------------------------------------------------------------
// Strides oneDNN can take for a [B, R, C] operand without a copy: each matrix row-major or
// column-major with a leading dimension that fits it, and batches that do not interleave.
std::optional<dnnl::memory::dims> dnnl_strides(const Tensor& t) {
  const int64_t b = t.size(0), r = t.size(1), c = t.size(2);
  const int64_t sb = t.stride(0), sr = t.stride(1), sc = t.stride(2);
  int64_t nr, nc, span;
  if ((sc == 1 || c == 1) && (r == 1 || sr >= c)) {
    nr = r == 1 ? c : sr;
    nc = 1;
    span = nr * (r - 1) + c;
  } else if ((sr == 1 || r == 1) && (c == 1 || sc >= r)) {
    nr = 1;
    nc = c == 1 ? r : sc;
    span = nc * (c - 1) + r;
  } else {
    return std::nullopt;
  }
  if (b > 1 && sb < span) return std::nullopt;
  return dnnl::memory::dims{b == 1 ? span : sb, nr, nc};
}

// Small float32 products through dnnl_sgemm, one call per batch: the same JIT GEMM kernels
// as the matmul primitive without its per-call costs (key, cache lookup, memory objects,
// argument map, stream), which dominate a small product: [8, 64] x [64, 256] (an LSTM step's
// recurrent product) 6.9 -> 4.9 us, [1, 512] x [512, 512] 26 -> 21 us on the development VM
// (ad-hoc timing). Larger products keep the primitive (it may pick other kernels, e.g.
// brgemm on AVX-512). Returns false where the operands do not fit BLAS's layouts.
constexpr int64_t kSgemmMaxMacs = int64_t{1} << 23;
// Rows / columns of the smallest block one thread takes (the micro-kernels' M is 6 to 16, N
// 16 to 64).
constexpr int64_t kSgemmRowBlock = 16;
constexpr int64_t kSgemmColBlock = 64;

bool gemm_sgemm(const Gemm& g) {
  if (g.out.dtype() != kFloat || g.a.dtype() != kFloat || g.m.dtype() != kFloat) return false;
  const int64_t batch = g.out.size(0), M = g.out.size(1), N = g.out.size(2), K = g.a.size(2);
  if (M * N * K > kSgemmMaxMacs) return false;
  const bool has_bias = g.bias.defined();
  const double beta = g.beta.toDouble();
  if (has_bias && beta != 0) return false;
  // op(X) of a [R, C] matrix from the layouts dnnl_strides accepts: row-major (column stride
  // 1) is 'N' with its row stride as leading dimension, column-major is 'T' with its column
  // stride.
  auto layout = [](const Tensor& t, char* trans, int64_t* ld) {
    const std::optional<dnnl::memory::dims> s = dnnl_strides(t);
    if (!s) return false;
    const bool rows = (*s)[2] == 1;
    *trans = rows ? 'N' : 'T';
    *ld = rows ? std::max<int64_t>({(*s)[1], t.size(2), 1})
               : std::max<int64_t>({(*s)[2], t.size(1), 1});
    return true;
  };
  char ta = 'N', tm = 'N', to = 'N';
  int64_t lda = 0, ldm = 0, ldo = 0;
  if (!layout(g.a, &ta, &lda) || !layout(g.m, &tm, &ldm) || !layout(g.out, &to, &ldo) ||
      to != 'N')
    return false;
  const float alpha = static_cast<float>(g.alpha.toDouble());
  const Tensor bias = has_bias ? g.bias.to(kFloat).contiguous() : Tensor();
  // Matrix b of t; a batch of one broadcasts over the others (as in oneDNN's matmul).
  auto at = [](const Tensor& t, int64_t b) {
    return t.data_ptr<float>() + (t.size(0) == 1 ? 0 : b * t.stride(0));
  };
  // Rows [r0, r1) x columns [c0, c1) of every matrix of the batch, one call per matrix
  // (single-threaded unless `single` is false): threads of kiln's pool take blocks of rows (or
  // of columns, for few rows) rather than oneDNN opening an OpenMP team, whose threads spin
  // after the call and take the cores from the kernels that follow (the compiled LSTM's steps
  // after its batched input projection: 38% of a 2-thread profile in libgomp).
  auto block = [&](int64_t r0, int64_t r1, int64_t c0, int64_t c1, bool single = true) -> bool {
    if (single) onednn::set_threads(1);
    for (int64_t b = 0; b < batch; ++b) {
      float* c = at(g.out, b) + r0 * ldo + c0;
      if (has_bias) {
        // out = a m + bias: the bias rows first, then C = alpha a m + 1 C.
        const float* bp = bias.data_ptr<float>();
        for (int64_t i = r0; i < r1; ++i) std::copy(bp + c0, bp + c1, c + (i - r0) * ldo);
      }
      const float* a = at(g.a, b) + r0 * (ta == 'N' ? lda : 1);
      const float* m = at(g.m, b) + c0 * (tm == 'N' ? 1 : ldm);
      const dnnl_status_t st = dnnl_sgemm(ta, tm, r1 - r0, c1 - c0, K, alpha, a, lda, m, ldm,
                                          has_bias ? 1.0f : static_cast<float>(beta), c, ldo);
      if (st != dnnl_success) {
        KILN_CHECK(b == 0 && r0 == 0 && c0 == 0, "[matmul] dnnl_sgemm failed part-way (status {})",
                   static_cast<int>(st));
        return false;
      }
    }
    return true;
  };
  const int threads = onednn::threads_for(batch * M * N * K, kMacGrain);
  if (threads > 1 && onednn::team_recently_used()) {
    // An OpenMP team is spinning from a recent primitive: hand it the call (kiln's pool would
    // compete with it for the cores; the compiled LSTM at hidden 256 after its batched input
    // projection: 3.8-4.2 ms this way against 5.4-6.4 ms on kiln's pool, ad-hoc timing). The
    // call does not renew the window: if it did, one primitive would send every later product
    // of the process to the team, whose spinning then competes with kiln's pool for the
    // kernels around them (the compiled LSTM at hidden 64 after one eager hidden-256 run: 663
    // against 351 us).
    onednn::set_threads(threads);
    return block(0, M, 0, N, false);
  }
  const bool by_rows = M >= 2 * kSgemmRowBlock;
  if (threads == 1 || (!by_rows && N < 2 * kSgemmColBlock)) return block(0, M, 0, N);
  // dnnl_sgemm fails only on arguments it rejects, which every block shares: the first block
  // (on this thread, before the others can write) returns false so the caller falls back; any
  // later failure is an error above (the output would be half-written).
  if (by_rows) {
    if (!block(0, kSgemmRowBlock, 0, N)) return false;
    parallel_for(kSgemmRowBlock, M, std::max(kSgemmRowBlock, (M - kSgemmRowBlock) / threads),
                 [&](int64_t lo, int64_t hi) { block(lo, hi, 0, N); });
  } else {
    if (!block(0, M, 0, kSgemmColBlock)) return false;
    parallel_for(kSgemmColBlock, N, std::max(kSgemmColBlock, (N - kSgemmColBlock) / threads),
                 [&](int64_t lo, int64_t hi) { block(0, M, lo, hi); });
  }
  return true;
}

// Returns false when oneDNN has no implementation for this signature.
bool gemm_onednn(const Gemm& g, const char* op) {
  using tag = dnnl::memory::format_tag;
  const dnnl::memory::data_type dt = *onednn::to_dnnl(g.out.dtype());
  Tensor a = g.a, m = g.m;
  std::optional<dnnl::memory::dims> sa = dnnl_strides(a), sm = dnnl_strides(m);
  if (!sa) {
    a = a.contiguous();
    sa = dnnl_strides(a);
  }
  if (!sm) {
    m = m.contiguous();
    sm = dnnl_strides(m);
  }
  const int64_t n = g.out.size(2);
  const dnnl::memory::dims ad = {a.size(0), a.size(1), a.size(2)};
  const dnnl::memory::dims md = {m.size(0), m.size(1), m.size(2)};
  const dnnl::memory::dims od = {g.out.size(0), g.out.size(1), n};
  const bool has_bias = g.bias.defined();
  const double alpha = g.alpha.toDouble(), beta = g.beta.toDouble();

  onednn::KeyBuilder key("matmul");
  key.add(static_cast<int64_t>(dt)).add(ad).add(*sa).add(md).add(*sm).add(od);
  key.add(has_bias).add_double(alpha).add_double(beta);
  const int threads = onednn::threads_for(od[0] * od[1] * od[2] * ad[2], kMacGrain);
  auto prim = onednn::get_or_create(op, key, threads, [&] {
    dnnl::memory::desc amd(ad, dt, *sa), mmd(md, dt, *sm), omd(od, dt, tag::abc);
    dnnl::primitive_attr attr = onednn::attr();
    if (alpha != 1) attr.set_output_scales(0, {static_cast<float>(alpha)});
    if (beta != 0) {
      dnnl::post_ops po;
      po.append_sum(static_cast<float>(beta));
      attr.set_post_ops(po);
    }
    dnnl::matmul::primitive_desc pd;
    if (has_bias) {
      dnnl::memory::desc bmd({1, 1, n}, dt, tag::abc);
      pd = dnnl::matmul::primitive_desc(dnnl::matmul::desc(amd, mmd, bmd, omd), attr,
                                        onednn::engine());
    } else {
      pd = dnnl::matmul::primitive_desc(dnnl::matmul::desc(amd, mmd, omd), attr, onednn::engine());
    }
    onednn::Primitive p;
    p.primitive = dnnl::matmul(pd);
    p.scratchpad = pd.scratchpad_desc();
    p.mds = {amd, mmd, omd, has_bias ? pd.bias_desc() : dnnl::memory::desc()};
    return p;
  });
  if (!prim) return false;
  std::unordered_map<int, dnnl::memory> args = {
      {DNNL_ARG_SRC, onednn::bound_memory(op, *prim, 0, prim->mds[0], a.data_ptr())},
      {DNNL_ARG_WEIGHTS, onednn::bound_memory(op, *prim, 1, prim->mds[1], m.data_ptr())},
      {DNNL_ARG_DST, onednn::bound_memory(op, *prim, 2, prim->mds[2], g.out.data_ptr())}};
  if (has_bias)
    args.emplace(DNNL_ARG_BIAS,
                 onednn::bound_memory(op, *prim, 3, prim->mds[3], g.bias.data_ptr()));
  onednn::execute(op, *prim, std::move(args));
  return true;
}

// ---- blocked kernel -----------------------------------------------------------------------
// Integers accumulate in uint64_t so overflow wraps like two's complement instead of being UB.
template <typename T>
using gemm_acc_t = std::conditional_t<std::is_integral_v<T>, uint64_t, opmath_t<T>>;

template <typename A, typename T>
inline A to_acc(T v) {
  if constexpr (std::is_integral_v<T>)
    return static_cast<A>(static_cast<int64_t>(v));
  else
    return static_cast<A>(static_cast<opmath_t<T>>(v));
}

template <typename A>
A scalar_to_acc(const Scalar& s) {
  if constexpr (std::is_integral_v<A>)
    return static_cast<A>(s.toLong());
  else
    return static_cast<A>(s.toDouble());
}

// The register tile: kMicroRows rows of a times micro_cols<A> columns of m accumulate in
// registers over a depth panel (GCC/Clang vector types; 16 of AVX-512's 32 registers, 8 of
// AVX2's 16), so each loaded vector of m feeds kMicroRows multiply-adds.
#ifdef __AVX512F__
constexpr int64_t kVecBytes = 64;
constexpr int64_t kMicroRows = 8;
#else
constexpr int64_t kVecBytes = 32;
constexpr int64_t kMicroRows = 4;
#endif
constexpr int64_t kMicroVecs = 2;  // vectors per tile row
template <typename A>
struct Vec;
template <>
struct Vec<float> {
  typedef float type __attribute__((vector_size(kVecBytes)));
  typedef float unaligned
      __attribute__((vector_size(kVecBytes), aligned(alignof(float)), may_alias));
};
template <>
struct Vec<double> {
  typedef double type __attribute__((vector_size(kVecBytes)));
  typedef double unaligned
      __attribute__((vector_size(kVecBytes), aligned(alignof(double)), may_alias));
};
template <>
struct Vec<uint64_t> {
  typedef uint64_t type __attribute__((vector_size(kVecBytes)));
  typedef uint64_t unaligned
      __attribute__((vector_size(kVecBytes), aligned(alignof(uint64_t)), may_alias));
};
template <typename A>
inline constexpr int64_t micro_cols = kMicroVecs* kVecBytes / static_cast<int64_t>(sizeof(A));

// c[i][j] += sum_k a[i, k] * m[k, j] over a full register tile; c has row stride kColTile.
template <typename T, typename A>
inline void micro_kernel(const T* a, int64_t sam, int64_t sak, const T* m, int64_t smk,
                         int64_t depth, A* c) {
  using V = typename Vec<A>::type;
  constexpr int64_t L = kVecBytes / sizeof(A);
  V acc[kMicroRows][kMicroVecs] = {};
  for (int64_t k = 0; k < depth; ++k) {
    V mv[kMicroVecs];
    const T* mrow = m + k * smk;
    if constexpr (std::is_same_v<T, A>) {
      // Straight into registers: a memcpy to the stack array would stall store forwarding.
      using U = typename Vec<A>::unaligned;
      for (int64_t v = 0; v < kMicroVecs; ++v) mv[v] = *reinterpret_cast<const U*>(mrow + v * L);
    } else {
      for (int64_t v = 0; v < kMicroVecs; ++v)
        for (int64_t l = 0; l < L; ++l) mv[v][l] = to_acc<A>(mrow[v * L + l]);
    }
    for (int64_t i = 0; i < kMicroRows; ++i) {
      const A av = to_acc<A>(a[i * sam + k * sak]);
      for (int64_t v = 0; v < kMicroVecs; ++v) acc[i][v] += av * mv[v];
    }
  }
  for (int64_t i = 0; i < kMicroRows; ++i)
    for (int64_t v = 0; v < kMicroVecs; ++v)
      for (int64_t l = 0; l < L; ++l) c[i * kColTile + v * L + l] += acc[i][v][l];
}

// The same for a partial tile of rows x cols (i-k-j order, accumulating in c).
template <typename T, typename A>
void edge_kernel(const T* a, int64_t sam, int64_t sak, const T* m, int64_t smk, int64_t depth, A* c,
                 int64_t rows, int64_t cols) {
  if (cols <= 0) return;
  for (int64_t i = 0; i < rows; ++i) {
    A* crow = c + i * kColTile;
    for (int64_t k = 0; k < depth; ++k) {
      const A av = to_acc<A>(a[i * sam + k * sak]);
      const T* mrow = m + k * smk;
      for (int64_t j = 0; j < cols; ++j) crow[j] += av * to_acc<A>(mrow[j]);
    }
  }
}

template <typename T>
void gemm_blocked(const Gemm& g) {
  using A = gemm_acc_t<T>;
  Tensor m = g.m.stride(2) == 1 || g.m.size(2) == 1 ? g.m : g.m.contiguous();
  const T* ap = g.a.data_ptr<T>();
  const T* mp = m.data_ptr<T>();
  const T* bp = g.bias.defined() ? g.bias.data_ptr<T>() : nullptr;
  T* op = g.out.data_ptr<T>();
  const int64_t M = g.out.size(1), N = g.out.size(2), K = g.a.size(2);
  const int64_t sab = g.a.size(0) == 1 ? 0 : g.a.stride(0), sam = g.a.stride(1),
                sak = g.a.stride(2);
  const int64_t smb = m.size(0) == 1 ? 0 : m.stride(0), smk = m.stride(1);
  const A alpha = scalar_to_acc<A>(g.alpha), beta = scalar_to_acc<A>(g.beta);
  const bool use_beta = !is_zero(g.beta);
  const int64_t rows = g.out.size(0) * M;
  const int64_t grain = std::max<int64_t>(1, kGrain / std::max<int64_t>(1, K * N));
  parallel_for(0, rows, grain, [&](int64_t r0, int64_t r1) {
    std::vector<A> acc(kRowTile * kColTile);
    for (int64_t r = r0; r < r1;) {
      const int64_t b = r / M, i0 = r % M;
      const int64_t nrows = std::min({r1 - r, M - i0, kRowTile});
      const T* abase = ap + b * sab + i0 * sam;
      const T* mbase = mp + b * smb;
      for (int64_t j0 = 0; j0 < N; j0 += kColTile) {
        const int64_t nj = std::min(kColTile, N - j0);
        std::fill(acc.begin(), acc.end(), A(0));
        for (int64_t k0 = 0; k0 < K; k0 += kDepthTile) {
          const int64_t k1 = std::min(K, k0 + kDepthTile);
          const T* mpanel = mbase + k0 * smk + j0;
          int64_t i = 0;
          for (; i + kMicroRows <= nrows; i += kMicroRows) {
            int64_t j = 0;
            for (; j + micro_cols<A> <= nj; j += micro_cols<A>)
              micro_kernel<T, A>(abase + i * sam + k0 * sak, sam, sak, mpanel + j, smk, k1 - k0,
                                 acc.data() + i * kColTile + j);
            edge_kernel<T, A>(abase + i * sam + k0 * sak, sam, sak, mpanel + j, smk, k1 - k0,
                              acc.data() + i * kColTile + j, kMicroRows, nj - j);
          }
          edge_kernel<T, A>(abase + i * sam + k0 * sak, sam, sak, mpanel, smk, k1 - k0,
                            acc.data() + i * kColTile, nrows - i, nj);
        }
        for (int64_t i = 0; i < nrows; ++i) {
          T* orow = op + (r + i) * N + j0;
          const A* crow = acc.data() + i * kColTile;
          for (int64_t j = 0; j < nj; ++j) {
            A v = alpha * crow[j];
            if (use_beta) v += beta * to_acc<A>(orow[j]);
            if (bp) v += to_acc<A>(bp[j0 + j]);
            orow[j] = static_cast<T>(v);
          }
        }
      }
      r += nrows;
    }
  });
}

void gemm(const Gemm& g, const char* op) {
  if (g.out.numel() == 0) return;
  const ScalarType dt = g.out.dtype();
  if ((dt == kFloat || dt == kBFloat16 || dt == kHalf) && g.a.size(2) > 0) {
    if (gemm_sgemm(g) || gemm_onednn(g, op)) return;
    if (dt != kFloat) {
      // No 16-bit matmul on this CPU (oneDNN 2.6 has float16 only with AVX512-FP16): compute
      // in float32 and round once at the end, as libtorch's CPU fallback does.
      Gemm f = g;
      f.a = g.a.to(kFloat);
      f.m = g.m.to(kFloat);
      if (g.bias.defined()) f.bias = g.bias.to(kFloat);
      f.out = is_zero(g.beta) ? make_empty(g.out.sizes(), kFloat) : g.out.to(kFloat);
      gemm(f, op);
      Tensor out = g.out;
      out.copy_(f.out);
      return;
    }
  }
  KILN_DISPATCH_NUMERIC_TYPES(dt, op, [&] { gemm_blocked<scalar_t>(g); });
}

// ---- argument checks ----------------------------------------------------------------------
void check_dtypes(const char* op, const char* an, const Tensor& a, const char* bn,
                  const Tensor& b) {
  KILN_CHECK(a.dtype() == b.dtype(),
             "[{}] {} and {} have different dtypes: got {} and {}, expected the same dtype.", op,
             an, bn, dtype_name(a.dtype()), dtype_name(b.dtype()));
}

void check_numeric(const char* op, const Tensor& t) {
  KILN_CHECK(t.dtype() != kBool, "[{}] got dtype bool, expected a numeric (non-bool) dtype.", op);
}

// The sizes both batch shapes broadcast to (numpy rules), or an error naming both operands.
std::vector<int64_t> broadcast_batch(const char* op, const Tensor& a, IntArrayRef ab,
                                     const Tensor& b, IntArrayRef bb) {
  const size_t n = std::max(ab.size(), bb.size());
  std::vector<int64_t> out(n);
  for (size_t i = 0; i < n; ++i) {
    const int64_t x = i < n - ab.size() ? 1 : ab[i - (n - ab.size())];
    const int64_t y = i < n - bb.size() ? 1 : bb[i - (n - bb.size())];
    KILN_CHECK(x == y || x == 1 || y == 1,
               "[{}] batch dims do not broadcast: got sizes {} and {}, expected batch dims "
               "{} and {} to be equal or 1 at each position.",
               op, a.sizes(), b.sizes(), ab, bb);
    out[i] = x == 1 ? y : x;
  }
  return out;
}

// t [...batch_t, r, c] as a [Bt, r, c] operand of a GEMM over `batch` (B elements): Bt is 1
// when t has no batch to speak of (the GEMM broadcasts it), else B (a view when possible).
Tensor batch_operand(const Tensor& t, const std::vector<int64_t>& batch, int64_t B) {
  const int64_t r = t.size(-2), c = t.size(-1);
  std::vector<int64_t> tb(t.sizes().begin(), t.sizes().end() - 2);
  if (detail::prod_sizes(tb) == 1) return t.reshape({1, r, c});
  if (tb == batch) return t.reshape({B, r, c});
  std::vector<int64_t> full = batch;
  full.push_back(r);
  full.push_back(c);
  return t.expand(full).reshape({B, r, c});
}

// matmul as primitives (when recording): a [..., n, k] times b [..., k, m] over the broadcast
// batch, as one mm when neither has a batch, mm over folded rows when only a has one, else bmm.
Tensor matmul_primitives(const Tensor& a, const Tensor& b, const std::vector<int64_t>& batch,
                         const std::vector<int64_t>& result) {
  const int64_t n = a.size(-2), k = a.size(-1), m = b.size(-1);
  if (a.dim() == 2 && b.dim() == 2) return mm(a, b).view(result);
  if (b.dim() == 2) return mm(a.reshape({-1, k}), b).view(result);
  const int64_t B = detail::prod_sizes(batch);
  std::vector<int64_t> ea = batch, eb = batch;
  ea.insert(ea.end(), {n, k});
  eb.insert(eb.end(), {k, m});
  return bmm(a.expand(ea).reshape({B, n, k}), b.expand(eb).reshape({B, k, m})).view(result);
}

template <typename T>
void dot_kernel(const Tensor& a, const Tensor& b, const Tensor& out) {
  using A = std::conditional_t<std::is_integral_v<T>, uint64_t, double>;
  const int64_t n = a.numel(), sa = a.stride(0), sb = b.stride(0);
  const T* ap = a.data_ptr<T>();
  const T* bp = b.data_ptr<T>();
  // Fixed chunks summed in order: the result does not depend on the thread count.
  const int64_t chunks = std::clamp<int64_t>(n / kGrain, 1, 256);
  std::vector<A> part(chunks, A(0));
  parallel_for(0, chunks, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t lo = n * c / chunks, hi = n * (c + 1) / chunks;
      A s = 0;
      for (int64_t i = lo; i < hi; ++i) s += to_acc<A>(ap[i * sa]) * to_acc<A>(bp[i * sb]);
      part[c] = s;
    }
  });
  A s = 0;
  for (A p : part) s += p;
  *out.data_ptr<T>() =
      static_cast<T>(static_cast<std::conditional_t<std::is_integral_v<T>, A, opmath_t<T>>>(s));
}

// The tensor a product is written to: a fresh one, or (for the _out variants) out itself when
// it is contiguous and shares no memory with an operand; otherwise a fresh one that finish_out
// copies into out. out must have the product's dtype, and its shape or no elements (resized).
Tensor product_target(const char* op, Tensor* out, const std::vector<int64_t>& shape,
                      ScalarType dt, std::initializer_list<const Tensor*> operands) {
  if (out == nullptr) return make_empty(shape, dt);
  KILN_CHECK(out->defined(), "[{}_out] got an undefined out= tensor, expected a {} tensor", op,
             dtype_name(dt));
  check_cpu(*out, op, "out");
  KILN_CHECK(out->dtype() == dt,
             "[{}_out] got out= tensor of dtype {}, expected {} (the dtype of the product)", op,
             dtype_name(out->dtype()), dtype_name(dt));
  if (!out->sizes().equals(shape)) {
    KILN_CHECK(out->numel() == 0,
               "[{}_out] got out= tensor of shape {}, expected shape {} (or an empty tensor to "
               "resize)",
               op, shape_str(out->sizes()), shape_str(shape));
    Tensor fresh = make_empty(shape, dt);
    out->unsafeGetTensorImpl()->set_storage(fresh.impl()->storage());
    out->unsafeGetTensorImpl()->set_sizes_and_strides(shape, detail::contiguous_strides(shape), 0);
    return *out;
  }
  bool shared = false;
  for (const Tensor* t : operands)
    shared = shared || (t->defined() && t->impl()->storage() == out->impl()->storage());
  if (shared || !out->is_contiguous()) return make_empty(shape, dt);
  return *out;
}

Tensor& finish_out(Tensor& out, const Tensor& result) {
  if (!result.is_same(out)) out.copy_(result);
  return out;
}

void check_out_not_recorded(const char* op, std::initializer_list<const Tensor*> operands) {
  for (const Tensor* t : operands)
    KILN_CHECK(!detail::should_record(*t),
               "[{}_out] out= variants do not record autograd or traces: got an operand that "
               "requires grad (or a trace in progress); call {} instead",
               op, op);
}

// mm, bmm and addmm into a fresh tensor (out null) or into *out.
Tensor mm_into(Tensor* dest, const Tensor& self, const Tensor& mat2);
Tensor bmm_into(Tensor* dest, const Tensor& self, const Tensor& mat2);
Tensor addmm_into(Tensor* dest, const Tensor& self, const Tensor& mat1, const Tensor& mat2,
                  const Scalar& beta, const Scalar& alpha);

}  // namespace

// ---- public ops ---------------------------------------------------------------------------
Tensor mm(const Tensor& self, const Tensor& mat2) {
  if (detail::should_record(self, mat2)) [[unlikely]]
    return detail::record1(ops::OpKind::Mm, {self, mat2});
  return mm_into(nullptr, self, mat2);
}

Tensor& mm_out(Tensor& out, const Tensor& self, const Tensor& mat2) {
  check_out_not_recorded("mm", {&self, &mat2});
  return finish_out(out, mm_into(&out, self, mat2));
}

Tensor bmm(const Tensor& self, const Tensor& mat2) {
  if (detail::should_record(self, mat2)) [[unlikely]]
    return detail::record1(ops::OpKind::Bmm, {self, mat2});
  return bmm_into(nullptr, self, mat2);
}

Tensor& bmm_out(Tensor& out, const Tensor& self, const Tensor& mat2) {
  check_out_not_recorded("bmm", {&self, &mat2});
  return finish_out(out, bmm_into(&out, self, mat2));
}

Tensor addmm(const Tensor& self, const Tensor& mat1, const Tensor& mat2, const Scalar& beta,
             const Scalar& alpha) {
  if (detail::should_record(self, mat1, mat2)) [[unlikely]]
    return detail::record1(ops::OpKind::Addmm, {self, mat1, mat2, beta, alpha});
  return addmm_into(nullptr, self, mat1, mat2, beta, alpha);
}

Tensor& addmm_out(Tensor& out, const Tensor& self, const Tensor& mat1, const Tensor& mat2,
                  const Scalar& beta, const Scalar& alpha) {
  check_out_not_recorded("addmm", {&self, &mat1, &mat2});
  return finish_out(out, addmm_into(&out, self, mat1, mat2, beta, alpha));
}

namespace {

Tensor mm_into(Tensor* dest, const Tensor& self, const Tensor& mat2) {
  check_cpu(self, "mm", "self");
  check_cpu(mat2, "mm", "mat2");
  KILN_CHECK(self.dim() == 2 && mat2.dim() == 2, "[mm] expected 2-D matrices: got sizes {} and {}.",
             self.sizes(), mat2.sizes());
  check_dtypes("mm", "mat1", self, "mat2", mat2);
  check_numeric("mm", self);
  KILN_CHECK(self.size(1) == mat2.size(0),
             "[mm] mat1 and mat2 shapes cannot be multiplied: got sizes {} and {}, expected "
             "mat1.size(1) == mat2.size(0).",
             self.sizes(), mat2.sizes());
  const int64_t n = self.size(0), m = mat2.size(1);
  Tensor out = product_target("mm", dest, {n, m}, self.dtype(), {&self, &mat2});
  Gemm g;
  g.a = self.unsqueeze(0);
  g.m = mat2.unsqueeze(0);
  g.out = out.view({1, n, m});
  gemm(g, "mm");
  return out;
}

Tensor bmm_into(Tensor* dest, const Tensor& self, const Tensor& mat2) {
  check_cpu(self, "bmm", "self");
  check_cpu(mat2, "bmm", "mat2");
  KILN_CHECK(self.dim() == 3 && mat2.dim() == 3,
             "[bmm] expected 3-D batches of matrices: got sizes {} and {}.", self.sizes(),
             mat2.sizes());
  check_dtypes("bmm", "batch1", self, "batch2", mat2);
  check_numeric("bmm", self);
  KILN_CHECK(self.size(0) == mat2.size(0) && self.size(2) == mat2.size(1),
             "[bmm] batch shapes cannot be multiplied: got sizes {} and {}, expected "
             "batch1.size(0) == batch2.size(0) and batch1.size(2) == batch2.size(1).",
             self.sizes(), mat2.sizes());
  const int64_t b = self.size(0), n = self.size(1), m = mat2.size(2);
  Tensor out = product_target("bmm", dest, {b, n, m}, self.dtype(), {&self, &mat2});
  Gemm g;
  g.a = self;
  g.m = mat2;
  g.out = out;
  gemm(g, "bmm");
  return out;
}

Tensor addmm_into(Tensor* dest, const Tensor& self, const Tensor& mat1, const Tensor& mat2,
                  const Scalar& beta, const Scalar& alpha) {
  check_cpu(self, "addmm", "self");
  check_cpu(mat1, "addmm", "mat1");
  check_cpu(mat2, "addmm", "mat2");
  KILN_CHECK(mat1.dim() == 2 && mat2.dim() == 2,
             "[addmm] expected 2-D matrices: got mat1 sizes {} and mat2 sizes {}.", mat1.sizes(),
             mat2.sizes());
  check_dtypes("addmm", "mat1", mat1, "mat2", mat2);
  check_dtypes("addmm", "self", self, "mat1", mat1);
  check_numeric("addmm", mat1);
  KILN_CHECK(
      is_floating_point(mat1.dtype()) || (!beta.is_floating_point() && !alpha.is_floating_point()),
      "[addmm] got beta {} and alpha {} for {} tensors, expected integer beta and alpha "
      "for integral tensors.",
      scalar_str(beta), scalar_str(alpha), dtype_name(mat1.dtype()));
  KILN_CHECK(mat1.size(1) == mat2.size(0),
             "[addmm] mat1 and mat2 shapes cannot be multiplied: got sizes {} and {}, expected "
             "mat1.size(1) == mat2.size(0).",
             mat1.sizes(), mat2.sizes());
  const int64_t n = mat1.size(0), m = mat2.size(1);
  const std::vector<int64_t> target = {n, m};
  bool broadcasts = self.dim() <= 2;
  for (int64_t d = 0; broadcasts && d < self.dim(); ++d) {
    const int64_t want = target[2 - self.dim() + d];
    broadcasts = self.size(d) == want || self.size(d) == 1;
  }
  KILN_CHECK(broadcasts,
             "[addmm] self does not broadcast to the product: got self sizes {}, "
             "expected a shape that broadcasts to {}.",
             self.sizes(), IntArrayRef(target));
  Tensor out = product_target("addmm", dest, target, mat1.dtype(), {&self, &mat1, &mat2});
  Gemm g;
  // self + mat1 @ mat2 with a 1-D self (linear's bias, a compiled LSTM's gates): the GEMM adds
  // it as its bias, instead of a broadcast copy into out and a sum post-op.
  auto is_one = [](const Scalar& s) {
    return s.is_floating_point() ? s.toDouble() == 1 : s.toLong() == 1;
  };
  const bool bias_arg = self.dim() == 1 && self.size(0) == m && is_one(beta) && is_one(alpha);
  if (bias_arg) {
    g.bias = self.contiguous();
  } else if (!is_zero(beta)) {
    out.copy_(self);
    g.beta = beta;
  }
  g.a = mat1.unsqueeze(0);
  g.m = mat2.unsqueeze(0);
  g.out = out.view({1, n, m});
  g.alpha = alpha;
  gemm(g, "addmm");
  return out;
}

}  // namespace

Tensor dot(const Tensor& self, const Tensor& other) {
  check_cpu(self, "dot", "self");
  check_cpu(other, "dot", "other");
  KILN_CHECK(self.dim() == 1 && other.dim() == 1,
             "[dot] expected 1-D tensors: got sizes {} and {}.", self.sizes(), other.sizes());
  check_dtypes("dot", "self", self, "other", other);
  check_numeric("dot", self);
  KILN_CHECK(self.size(0) == other.size(0),
             "[dot] got sizes {} and {}, expected both tensors to have the same number of "
             "elements.",
             self.sizes(), other.sizes());
  if (detail::should_record(self, other)) return mm(self.unsqueeze(0), other.unsqueeze(1)).view({});
  Tensor out = make_empty({}, self.dtype());
  KILN_DISPATCH_NUMERIC_TYPES(self.dtype(), "dot", [&] { dot_kernel<scalar_t>(self, other, out); });
  return out;
}

Tensor matmul(const Tensor& self, const Tensor& other) {
  check_cpu(self, "matmul", "self");
  check_cpu(other, "matmul", "other");
  const int64_t d1 = self.dim(), d2 = other.dim();
  KILN_CHECK(d1 >= 1 && d2 >= 1,
             "[matmul] both arguments need at least 1 dim: got {}-D and {}-D tensors of sizes "
             "{} and {}.",
             d1, d2, self.sizes(), other.sizes());
  check_dtypes("matmul", "self", self, "other", other);
  check_numeric("matmul", self);
  if (d1 == 1 && d2 == 1) return dot(self, other);
  // A 1-D operand is a row (left) or a column (right) whose dim is dropped from the result.
  const Tensor a = d1 == 1 ? self.unsqueeze(0) : self;
  const Tensor b = d2 == 1 ? other.unsqueeze(1) : other;
  KILN_CHECK(a.size(-1) == b.size(-2),
             "[matmul] shapes cannot be multiplied: got sizes {} and {}, expected "
             "self.size(-1) == other.size({}).",
             self.sizes(), other.sizes(), d2 == 1 ? 0 : -2);
  const std::vector<int64_t> batch =
      broadcast_batch("matmul", self, IntArrayRef(a.sizes().begin(), a.dim() - 2), other,
                      IntArrayRef(b.sizes().begin(), b.dim() - 2));
  const int64_t B = detail::prod_sizes(batch), n = a.size(-2), m = b.size(-1);
  std::vector<int64_t> result = batch;
  if (d1 >= 2) result.push_back(n);
  if (d2 >= 2) result.push_back(m);
  if (detail::should_record(self, other)) return matmul_primitives(a, b, batch, result);
  Tensor out = make_empty({B, n, m}, self.dtype());
  if (out.numel() > 0) {
    Gemm g;
    g.a = batch_operand(a, batch, B);
    g.m = batch_operand(b, batch, B);
    g.out = out;
    gemm(g, "matmul");
  }
  return out.view(result);
}

Tensor linear(const Tensor& input, const Tensor& weight, const Tensor& bias) {
  check_cpu(input, "linear", "input");
  check_cpu(weight, "linear", "weight");
  if (bias.defined()) {
    check_cpu(bias, "linear", "bias");
    check_dtypes("linear", "input", input, "bias", bias);
  }
  KILN_CHECK(input.dim() >= 1, "[linear] got a 0-dim input, expected at least 1 dim.");
  KILN_CHECK(weight.dim() == 1 || weight.dim() == 2,
             "[linear] got weight sizes {}, expected [out_features, in_features].", weight.sizes());
  check_dtypes("linear", "input", input, "weight", weight);
  check_numeric("linear", input);
  if (weight.dim() == 1) {  // a single output feature whose dim is dropped, as in libtorch
    Tensor r = matmul(input, weight);
    return bias.defined() ? add(r, bias) : r;
  }
  const int64_t in = weight.size(1), out_features = weight.size(0);
  KILN_CHECK(input.size(-1) == in,
             "[linear] shapes cannot be multiplied: got input sizes {} and weight sizes {}, "
             "expected input.size(-1) == weight.size(1).",
             input.sizes(), weight.sizes());
  std::vector<int64_t> result(input.sizes().begin(), input.sizes().end() - 1);
  const int64_t rows = detail::prod_sizes(result);
  result.push_back(out_features);
  const bool fuse_bias = bias.defined() && bias.dim() == 1 && bias.size(0) == out_features;
  if (detail::should_record(input, weight, bias)) {
    // Primitive spelling: [rows, in] x [in, out] (+ bias) viewed back to [..., out].
    Tensor x2 = input.dim() == 2 ? input : input.reshape({rows, in});
    Tensor r = fuse_bias ? addmm(bias, x2, weight.t()) : mm(x2, weight.t());
    if (input.dim() != 2) r = r.view(result);
    return bias.defined() && !fuse_bias ? add(r, bias) : r;
  }
  if (bias.defined() && !fuse_bias) {
    bool broadcasts = bias.dim() <= static_cast<int64_t>(result.size());
    for (int64_t d = 0; broadcasts && d < bias.dim(); ++d) {
      const int64_t want = result[result.size() - bias.dim() + d];
      broadcasts = bias.size(d) == want || bias.size(d) == 1;
    }
    KILN_CHECK(broadcasts,
               "[linear] got bias sizes {}, expected a shape that broadcasts to the output {}.",
               bias.sizes(), IntArrayRef(result));
  }
  Tensor out = make_empty({rows, out_features}, input.dtype());
  Gemm g;
  g.a = (input.dim() == 2 ? input : input.reshape({rows, in})).unsqueeze(0);
  g.m = weight.t().unsqueeze(0);  // [in, out] view: oneDNN reads the weight transposed in place
  g.out = out.view({1, rows, out_features});
  if (fuse_bias) g.bias = bias.contiguous();
  gemm(g, "linear");
  out = out.view(result);
  if (bias.defined() && !fuse_bias) out = add(out, bias);
  return out;
}

}  // namespace kiln
