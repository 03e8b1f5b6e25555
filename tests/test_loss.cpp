// Tests of the F:: losses and loss modules against float64 references written here with loops
// (every reduction, class weights, ignore_index, label smoothing, probability targets,
// pos_weight), their gradchecks, and their errors.
#include <cmath>

#include "nn_test_util.h"

namespace kiln {
namespace {

using autograd::variable_list;
using testing::close;
using testing::from_values;
using testing::random_tensor;
using testing::to_vector;
namespace F = nn::functional;
using Vec = std::vector<double>;

// Reduces per-element losses like libtorch: none -> [sizes], mean, sum.
Tensor reduce_ref(const Vec& loss, IntArrayRef sizes, int which) {
  if (which == 0) return from_values(loss, sizes);
  double s = 0;
  for (double v : loss) s += v;
  return from_values({which == 1 ? s / static_cast<double>(loss.size()) : s}, {});
}

const nn::reduction_t kReductions[] = {kNone, kMean, kSum};

template <typename Fn>
void expect_gradcheck(Fn fn, const variable_list& inputs) {
  EXPECT_TRUE(autograd::gradcheck(fn, inputs));
}

TEST(Loss, RegressionLossesMatchReferences) {
  Tensor x = random_tensor({3, 4}, kDouble), t = random_tensor({3, 4}, kDouble);
  Vec xv = to_vector(x), tv = to_vector(t), mse, l1, sl1, sl1_0;
  const double beta = 0.7;
  for (size_t i = 0; i < xv.size(); ++i) {
    const double d = xv[i] - tv[i], a = std::abs(d);
    mse.push_back(d * d);
    l1.push_back(a);
    sl1.push_back(a < beta ? 0.5 * d * d / beta : a - 0.5 * beta);
  }
  for (int r = 0; r < 3; ++r) {
    SCOPED_TRACE(r);
    const auto red = kReductions[r];
    EXPECT_TRUE(close(F::mse_loss(x, t, F::MSELossFuncOptions(red)), reduce_ref(mse, {3, 4}, r),
                      1e-12, 1e-12));
    EXPECT_TRUE(close(F::l1_loss(x, t, F::L1LossFuncOptions(red)), reduce_ref(l1, {3, 4}, r), 1e-12,
                      1e-12));
    EXPECT_TRUE(close(F::smooth_l1_loss(x, t, F::SmoothL1LossFuncOptions(red).beta(beta)),
                      reduce_ref(sl1, {3, 4}, r), 1e-12, 1e-12));
  }
  EXPECT_TRUE(close(F::smooth_l1_loss(x, t, F::SmoothL1LossFuncOptions().beta(0)),
                    reduce_ref(l1, {3, 4}, 1), 1e-12, 1e-12));
  EXPECT_TRUE(close(nn::MSELoss()(x, t), reduce_ref(mse, {3, 4}, 1), 1e-12, 1e-12));
  EXPECT_TRUE(
      close(nn::L1Loss(nn::L1LossOptions(kSum))(x, t), reduce_ref(l1, {3, 4}, 2), 1e-12, 1e-12));
  Tensor xg = x.clone().requires_grad_(), tg = t.clone().requires_grad_();
  expect_gradcheck([](const variable_list& v) { return variable_list{F::mse_loss(v[0], v[1])}; },
                   {xg, tg});
  expect_gradcheck(
      [](const variable_list& v) {
        return variable_list{
            F::smooth_l1_loss(v[0], v[1], F::SmoothL1LossFuncOptions(kSum).beta(0.7))};
      },
      {xg, tg});
  expect_gradcheck([](const variable_list& v) { return variable_list{F::l1_loss(v[0], v[1])}; },
                   {xg, tg});
  EXPECT_KILN_ERROR(F::mse_loss(x, random_tensor({3, 1}, kDouble)),
                    {"[mse_loss]", "[3, 4]", "[3, 1]", "same sizes"});
  EXPECT_KILN_ERROR(F::l1_loss(kiln::ones({2}, kiln::dtype(kLong)), kiln::ones({2})),
                    {"[l1_loss]", "int64"});
}

// Per-sample weighted nll terms and their weights, for logp [N, C] and targets.
void nll_ref(const Vec& logp, int64_t C, const std::vector<int64_t>& target, const Vec& weight,
             int64_t ignore, Vec& loss, Vec& w) {
  loss.clear();
  w.clear();
  for (size_t n = 0; n < target.size(); ++n) {
    const int64_t y = target[n];
    const double wi = y == ignore ? 0.0 : (weight.empty() ? 1.0 : weight[y]);
    w.push_back(wi);
    loss.push_back(y == ignore ? 0.0 : -logp[n * C + y] * wi);
  }
}

Vec log_softmax_ref(const Vec& x, int64_t N, int64_t C) {
  Vec out(x.size());
  for (int64_t n = 0; n < N; ++n) {
    double m = -1e300, z = 0;
    for (int64_t c = 0; c < C; ++c) m = std::max(m, x[n * C + c]);
    for (int64_t c = 0; c < C; ++c) z += std::exp(x[n * C + c] - m);
    for (int64_t c = 0; c < C; ++c) out[n * C + c] = x[n * C + c] - m - std::log(z);
  }
  return out;
}

TEST(Loss, NllLossWeightsAndIgnoreIndex) {
  const int64_t N = 5, C = 4;
  Tensor x = random_tensor({N, C}, kDouble);
  std::vector<int64_t> tv = {0, 3, 1, 3, 2};
  Tensor target = kiln::tensor({0, 3, 1, 3, 2});
  Vec wv = {0.5, 2.0, 1.0, 3.0};
  Tensor weight = from_values(wv, {C});
  Vec xv = to_vector(x), loss, w;
  for (int ignore : {-100, 3}) {
    SCOPED_TRACE(ignore);
    nll_ref(xv, C, tv, wv, ignore, loss, w);
    double ls = 0, ws = 0;
    for (size_t i = 0; i < loss.size(); ++i) ls += loss[i], ws += w[i];
    auto opts = F::NLLLossFuncOptions().weight(weight).ignore_index(ignore);
    EXPECT_TRUE(close(F::nll_loss(x, target, opts), from_values({ls / ws}, {}), 1e-12, 1e-12));
    EXPECT_TRUE(close(
        F::nll_loss(x, target, F::NLLLossFuncOptions(kSum).weight(weight).ignore_index(ignore)),
        from_values({ls}, {}), 1e-12, 1e-12));
    EXPECT_TRUE(close(
        F::nll_loss(x, target, F::NLLLossFuncOptions(kNone).weight(weight).ignore_index(ignore)),
        from_values(loss, {N}), 1e-12, 1e-12));
  }
  // Unweighted mean over the non-ignored targets.
  nll_ref(xv, C, tv, {}, 3, loss, w);
  EXPECT_TRUE(close(F::nll_loss(x, target, F::NLLLossFuncOptions().ignore_index(3)),
                    from_values({(loss[0] + loss[2] + loss[4]) / 3}, {}), 1e-12, 1e-12));
  // [N, C, d] inputs with [N, d] targets, and an unbatched [C] input.
  Tensor x3 = random_tensor({2, 3, 2}, kDouble);
  Tensor t3 = kiln::tensor({{2, 0}, {1, 1}});
  Vec x3v = to_vector(x3);
  const double ref3 = -(x3v[(0 * 3 + 2) * 2 + 0] + x3v[(0 * 3 + 0) * 2 + 1] +
                        x3v[(1 * 3 + 1) * 2 + 0] + x3v[(1 * 3 + 1) * 2 + 1]) /
                      4;
  EXPECT_TRUE(close(F::nll_loss(x3, t3), from_values({ref3}, {}), 1e-12, 1e-12));
  EXPECT_TRUE(close(F::nll_loss(x[1], kiln::tensor(int64_t{3})), from_values({-xv[1 * C + 3]}, {}),
                    1e-12, 1e-12));
  EXPECT_KILN_ERROR(F::nll_loss(x, kiln::tensor({0, 4, 1, 3, 2})),
                    {"[nll_loss]", "target 4 is out of bounds", "4 classes"});
  EXPECT_KILN_ERROR(F::nll_loss(x, kiln::tensor({0, 1})), {"[nll_loss]", "[5, 4]", "[2]", "[5]"});
  EXPECT_KILN_ERROR(F::nll_loss(x, target, F::NLLLossFuncOptions().weight(kiln::ones({3}))),
                    {"[nll_loss]", "weight", "[3]", "[4]"});
  EXPECT_KILN_ERROR(F::nll_loss(x, x), {"[nll_loss]", "float64", "class indices"});
}

TEST(Loss, CrossEntropyIndicesSmoothingAndProbabilities) {
  const int64_t N = 4, C = 5;
  Tensor x = random_tensor({N, C}, kDouble, -3, 3);
  std::vector<int64_t> tv = {1, 4, 0, 1};
  Tensor target = kiln::tensor({1, 4, 0, 1});
  Vec xv = to_vector(x), lp = log_softmax_ref(xv, N, C);
  Vec wv = {1.0, 0.5, 2.0, 1.5, 0.25};
  Tensor weight = from_values(wv, {C});
  for (double eps : {0.0, 0.1}) {
    for (bool weighted : {false, true}) {
      for (int64_t ignore : {int64_t{-100}, int64_t{4}}) {
        SCOPED_TRACE(::testing::Message()
                     << "eps " << eps << " weighted " << weighted << " ignore " << ignore);
        // Reference per libtorch: (1 - eps) * nll + eps / C * smooth, smooth_n = -sum_c w_c lp.
        Vec per(N);
        double nll_sum = 0, smooth_sum = 0, wsum = 0;
        for (int64_t n = 0; n < N; ++n) {
          if (tv[n] == ignore) continue;
          const double wy = weighted ? wv[tv[n]] : 1.0;
          double smooth = 0;
          for (int64_t c = 0; c < C; ++c) smooth -= (weighted ? wv[c] : 1.0) * lp[n * C + c];
          per[n] = (1 - eps) * (-lp[n * C + tv[n]] * wy) + eps / C * smooth;
          nll_sum += -lp[n * C + tv[n]] * wy;
          smooth_sum += smooth;
          wsum += wy;
        }
        auto opts = F::CrossEntropyFuncOptions().label_smoothing(eps).ignore_index(ignore);
        if (weighted) opts.weight(weight);
        const double mean = (1 - eps) * nll_sum / wsum + eps / C * smooth_sum / wsum;
        EXPECT_TRUE(
            close(F::cross_entropy(x, target, opts), from_values({mean}, {}), 1e-12, 1e-12));
        auto none = opts;
        none.reduction(kNone);
        EXPECT_TRUE(close(F::cross_entropy(x, target, none), from_values(per, {N}), 1e-12, 1e-12));
        Tensor xg = x.clone().requires_grad_();
        expect_gradcheck(
            [&](const variable_list& v) {
              return variable_list{F::cross_entropy(v[0], target, opts)};
            },
            {xg});
      }
    }
  }
  // Probability targets, smoothed and weighted; the mean divides by the batch size.
  Tensor p = kiln::softmax(random_tensor({N, C}, kDouble), 1);
  Vec pv = to_vector(p);
  const double eps = 0.2;
  double total = 0;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      total -= wv[c] * ((1 - eps) * pv[n * C + c] + eps / C) * lp[n * C + c];
  auto popts = F::CrossEntropyFuncOptions().label_smoothing(eps).weight(weight);
  EXPECT_TRUE(close(F::cross_entropy(x, p, popts), from_values({total / N}, {}), 1e-12, 1e-12));
  Tensor xg = x.clone().requires_grad_(), pg = p.clone().requires_grad_();
  expect_gradcheck(
      [&](const variable_list& v) { return variable_list{F::cross_entropy(v[0], v[1], popts)}; },
      {xg, pg});
  EXPECT_TRUE(close(nn::CrossEntropyLoss()(x, target), F::cross_entropy(x, target), 1e-15, 0));
  EXPECT_KILN_ERROR(F::cross_entropy(x, kiln::tensor({1, 5, 0, 1})),
                    {"[cross_entropy]", "target 5 is out of bounds", "5 classes"});
  EXPECT_KILN_ERROR(F::cross_entropy(x, target, F::CrossEntropyFuncOptions().label_smoothing(1.5)),
                    {"[cross_entropy]", "label_smoothing=1.5"});
  EXPECT_KILN_ERROR(F::cross_entropy(x, random_tensor({N, 2}, kDouble)),
                    {"[cross_entropy]", "probability target", "[4, 2]"});
}

TEST(Loss, BinaryCrossEntropy) {
  Tensor p = random_tensor({3, 4}, kDouble, 0.05, 0.95);
  Tensor t = random_tensor({3, 4}, kDouble, 0, 1);
  Tensor w = random_tensor({4}, kDouble, 0.5, 2);
  Vec pv = to_vector(p), tv = to_vector(t), wv = to_vector(w), ref;
  for (size_t i = 0; i < pv.size(); ++i)
    ref.push_back(-wv[i % 4] * (tv[i] * std::log(pv[i]) + (1 - tv[i]) * std::log(1 - pv[i])));
  for (int r = 0; r < 3; ++r)
    EXPECT_TRUE(close(
        F::binary_cross_entropy(p, t, F::BinaryCrossEntropyFuncOptions(kReductions[r]).weight(w)),
        reduce_ref(ref, {3, 4}, r), 1e-12, 1e-12));
  // Probabilities of exactly 0 and 1: the logs are clamped at -100.
  Tensor edge = from_values({0.0, 1.0}, {2});
  EXPECT_TRUE(close(F::binary_cross_entropy(edge, from_values({1.0, 0.0}, {2})),
                    from_values({100.0}, {}), 1e-12, 1e-12));
  Tensor pg = p.clone().requires_grad_(), tg = t.clone().requires_grad_();
  expect_gradcheck(
      [&](const variable_list& v) {
        return variable_list{
            F::binary_cross_entropy(v[0], v[1], F::BinaryCrossEntropyFuncOptions().weight(w))};
      },
      {pg, tg});
  EXPECT_KILN_ERROR(F::binary_cross_entropy(p * 2.0, t), {"[binary_cross_entropy]", "[0, 1]"});

  // With logits: equal to BCE of the sigmoid, stable for large logits, pos_weight per class.
  Tensor z = random_tensor({3, 4}, kDouble, -30, 30);
  Tensor pw = random_tensor({4}, kDouble, 0.5, 3);
  Vec zv = to_vector(z), pwv = to_vector(pw), refl;
  for (size_t i = 0; i < zv.size(); ++i) {
    // log(sigmoid(z)) = -log1p(exp(-z)) computed stably on either side of 0.
    const double log_sig =
        zv[i] >= 0 ? -std::log1p(std::exp(-zv[i])) : zv[i] - std::log1p(std::exp(zv[i]));
    const double log_one_minus = log_sig - zv[i];
    refl.push_back(-wv[i % 4] * (pwv[i % 4] * tv[i] * log_sig + (1 - tv[i]) * log_one_minus));
  }
  auto lopts = F::BinaryCrossEntropyWithLogitsFuncOptions().weight(w).pos_weight(pw);
  for (int r = 0; r < 3; ++r) {
    auto o = lopts;
    o.reduction(kReductions[r]);
    EXPECT_TRUE(close(F::binary_cross_entropy_with_logits(z, t, o), reduce_ref(refl, {3, 4}, r),
                      1e-12, 1e-12));
  }
  Tensor zg = random_tensor({3, 4}, kDouble).requires_grad_();
  expect_gradcheck(
      [&](const variable_list& v) {
        return variable_list{F::binary_cross_entropy_with_logits(v[0], v[1], lopts)};
      },
      {zg, tg});
  EXPECT_TRUE(close(nn::BCEWithLogitsLoss()(z, t),
                    F::binary_cross_entropy(kiln::sigmoid(z).clamp(1e-300, 1.0), t), 1e-6, 1e-9));
  EXPECT_KILN_ERROR(
      F::binary_cross_entropy_with_logits(
          z, t, F::BinaryCrossEntropyWithLogitsFuncOptions().pos_weight(kiln::ones({3}))),
      {"pos_weight", "[3]", "[4]"});
}

TEST(Loss, SecondDerivatives) {
  // gradgradcheck: the backward of these composites is itself differentiable (create_graph).
  autograd::GradcheckOptions gg;
  gg.check_grad_grad = true;
  Tensor x = random_tensor({3, 4}, kDouble).requires_grad_();
  Tensor w = random_tensor({4}, kDouble, 0.5, 2).requires_grad_();
  Tensor target = kiln::tensor({3, 0, 2});
  Tensor probs = random_tensor({3, 4}, kDouble, 0, 1);
  auto check = [&](const char* name, std::function<variable_list(const variable_list&)> fn,
                   const variable_list& in) {
    SCOPED_TRACE(name);
    EXPECT_TRUE(autograd::gradcheck(fn, in, gg));
  };
  check("cross_entropy",
        [&](const variable_list& v) {
          return variable_list{F::cross_entropy(
              v[0], target, F::CrossEntropyFuncOptions().label_smoothing(0.1).weight(w.detach()))};
        },
        {x});
  check("nll_loss",
        [&](const variable_list& v) {
          return variable_list{F::nll_loss(kiln::log_softmax(v[0], 1), target,
                                           F::NLLLossFuncOptions().weight(v[1]))};
        },
        {x, w});
  check("bce_with_logits",
        [&](const variable_list& v) {
          return variable_list{F::binary_cross_entropy_with_logits(
              v[0], probs, F::BinaryCrossEntropyWithLogitsFuncOptions().pos_weight(v[1]))};
        },
        {x, w});
  check("layer_norm",
        [&](const variable_list& v) {
          return variable_list{F::layer_norm(v[0], F::LayerNormFuncOptions({4}).weight(v[1]))};
        },
        {x, w});
  check("batch_norm",
        [&](const variable_list& v) {
          return variable_list{F::batch_norm(
              v[0], Tensor(), Tensor(), F::BatchNormFuncOptions().weight(v[1]).training(true))};
        },
        {x, w});
}

TEST(Loss, Float32TrainingPathAgreesWithFloat64) {
  Tensor x = random_tensor({8, 10}, kDouble, -5, 5);
  Tensor t = kiln::randint(10, {8});
  Tensor ref = F::cross_entropy(x, t, F::CrossEntropyFuncOptions().label_smoothing(0.05));
  Tensor got =
      F::cross_entropy(x.to(kFloat), t, F::CrossEntropyFuncOptions().label_smoothing(0.05));
  EXPECT_EQ(got.dtype(), kFloat);
  EXPECT_TRUE(close(got, ref, 1e-5, 1e-6));
}

}  // namespace
}  // namespace kiln
