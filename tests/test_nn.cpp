// Tests of nn::Module and the feed-forward modules: registration and dotted names, holders,
// train/eval, to(), zero_grad, clone, printing, containers; Linear, Conv2d, pools, BatchNorm,
// LayerNorm, Dropout, Embedding, activations and init against float64 references written here,
// gradchecks of the F:: forms and finite-difference checks of module parameter gradients.
#include <cmath>
#include <sstream>

#include "nn_test_util.h"

namespace kiln {
namespace {

using testing::check_param_grads;
using testing::close;
using testing::from_values;
using testing::random_tensor;
using testing::to_vector;
namespace F = nn::functional;

// ---- OrderedDict -------------------------------------------------------------------------------

TEST(OrderedDict, KeepsInsertionOrderAndRejectsDuplicates) {
  OrderedDict<std::string, int> d("Thing");
  d.insert("b", 1);
  d.insert("a", 2);
  d.insert("c", 3);
  EXPECT_EQ(d.keys(), (std::vector<std::string>{"b", "a", "c"}));
  EXPECT_EQ(d["a"], 2);
  EXPECT_EQ(d[2].value(), 3);
  EXPECT_TRUE(d.contains("c"));
  EXPECT_EQ(d.find("z"), nullptr);
  EXPECT_KILN_ERROR(d.insert("a", 9), {"Thing 'a' already defined"});
  EXPECT_KILN_ERROR(d["zz"], {"Thing 'zz' is not defined"});
  d.erase("b");
  EXPECT_EQ(d.keys(), (std::vector<std::string>{"a", "c"}));
  EXPECT_EQ(d["c"], 3);
  EXPECT_EQ(d.front().key(), "a");
}

// ---- Module registration -----------------------------------------------------------------------

struct BlockImpl : nn::Cloneable<BlockImpl> {
  BlockImpl() { reset(); }
  void reset() override {
    fc = register_module("fc", nn::Linear(3, 4));
    norm = register_module("norm", nn::BatchNorm1d(4));
    scale = register_parameter("scale", kiln::ones({4}));
    steps = register_buffer("steps", kiln::zeros({1}));
  }
  Tensor forward(const Tensor& x) { return norm(fc(x)) * scale; }
  nn::Linear fc{nullptr};
  nn::BatchNorm1d norm{nullptr};
  Tensor scale, steps;
};
KILN_MODULE(Block);

struct NetImpl : nn::Cloneable<NetImpl> {
  NetImpl() { reset(); }
  void reset() override {
    block = register_module("block", Block());
    head = register_module("head", nn::Sequential(nn::Linear(4, 2), nn::ReLU()));
  }
  Tensor forward(const Tensor& x) { return head->forward(block(x)); }
  Block block{nullptr};
  nn::Sequential head{nullptr};
};
KILN_MODULE(Net);

TEST(Module, NamedParametersHaveDottedNamesInRegistrationOrder) {
  Net net;
  std::vector<std::string> names = net->named_parameters().keys();
  EXPECT_EQ(names, (std::vector<std::string>{"block.scale", "block.fc.weight", "block.fc.bias",
                                             "block.norm.weight", "block.norm.bias",
                                             "head.0.weight", "head.0.bias"}));
  EXPECT_EQ(net->parameters().size(), names.size());
  EXPECT_EQ(net->named_parameters(/*recurse=*/false).size(), 0u);
  EXPECT_EQ(net->named_buffers().keys(),
            (std::vector<std::string>{"block.steps", "block.norm.running_mean",
                                      "block.norm.running_var", "block.norm.num_batches_tracked"}));
  EXPECT_EQ(net->named_children().keys(), (std::vector<std::string>{"block", "head"}));
  EXPECT_EQ(net->named_modules().keys(),
            (std::vector<std::string>{"", "block", "block.fc", "block.norm", "head", "head.0",
                                      "head.1"}));
  // The handle held by the module and the one in named_parameters are the same tensor.
  EXPECT_TRUE(net->block->fc->weight.is_same(net->named_parameters()["block.fc.weight"]));
  for (const Tensor& p : net->parameters()) EXPECT_TRUE(p.requires_grad());
  for (const Tensor& b : net->buffers()) EXPECT_FALSE(b.requires_grad());
}

TEST(Module, RegistrationErrors) {
  struct Bad : nn::Module {
    Bad() { register_parameter("w", kiln::ones({2})); }
  };
  Bad m;
  EXPECT_KILN_ERROR(m.register_parameter("w", kiln::ones({1})), {"'w' is already registered"});
  EXPECT_KILN_ERROR(m.register_buffer("a.b", kiln::ones({1})), {"must not contain a dot", "a.b"});
  EXPECT_KILN_ERROR(m.register_parameter("", kiln::ones({1})), {"must not be empty"});
  EXPECT_KILN_ERROR(m.register_parameter("i", kiln::ones({1}, kiln::dtype(kLong))),
                    {"must be floating point", "int64"});
  EXPECT_KILN_ERROR(m.register_module("w", nn::Linear(1, 1)), {"'w' is already registered"});
  // Not owned by a shared_ptr: listing itself is refused with an explanation.
  EXPECT_KILN_ERROR(m.modules(), {"shared_ptr"});
  EXPECT_EQ(m.modules(/*include_self=*/false).size(), 0u);
}

TEST(Module, EmptyHolderThrows) {
  nn::Linear empty{nullptr};
  EXPECT_TRUE(empty.is_empty());
  EXPECT_FALSE(static_cast<bool>(empty));
  EXPECT_KILN_ERROR(empty->forward(kiln::ones({1, 1})), {"empty module holder"});
}

TEST(Module, TrainEvalPropagates) {
  Net net;
  EXPECT_TRUE(net->is_training());
  net->eval();
  for (const auto& m : net->modules()) EXPECT_FALSE(m->is_training()) << m->name();
  net->train();
  for (const auto& m : net->modules()) EXPECT_TRUE(m->is_training()) << m->name();
}

TEST(Module, ToDtypeConvertsInPlaceKeepingHandles) {
  Net net;
  Tensor w = net->block->fc->weight;
  std::vector<double> before = to_vector(w);
  net->to(kDouble);
  EXPECT_EQ(w.dtype(), kDouble);  // the old handle sees the conversion
  EXPECT_EQ(net->block->fc->weight.dtype(), kDouble);
  EXPECT_TRUE(w.requires_grad());
  EXPECT_EQ(to_vector(w), before);
  // Integer buffers keep their dtype.
  EXPECT_EQ(net->block->norm->num_batches_tracked.dtype(), kLong);
  Tensor y = net->forward(kiln::ones({5, 3}, kiln::dtype(kDouble)));
  EXPECT_EQ(y.dtype(), kDouble);
}

TEST(Module, ZeroGrad) {
  nn::Linear fc(3, 2);
  fc(kiln::ones({4, 3})).sum().backward();
  ASSERT_TRUE(fc->weight.grad().defined());
  fc->zero_grad(/*set_to_none=*/false);
  EXPECT_TRUE(fc->weight.grad().defined());
  EXPECT_EQ(fc->weight.grad().abs().sum().item<double>(), 0.0);
  fc->zero_grad();
  EXPECT_FALSE(fc->weight.grad().defined());
}

TEST(Module, CloneIsDeep) {
  Net net;
  auto copy = std::dynamic_pointer_cast<NetImpl>(net->clone());
  ASSERT_NE(copy, nullptr);
  auto a = net->named_parameters(), b = copy->named_parameters();
  ASSERT_EQ(a.keys(), b.keys());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(kiln::equal(a[i].value(), b[i].value())) << a[i].key();
    EXPECT_NE(a[i].value().data_ptr(), b[i].value().data_ptr()) << a[i].key();
  }
  // The clone's member handles point at its own parameters.
  EXPECT_TRUE(copy->block->fc->weight.is_same(b["block.fc.weight"]));
  {
    NoGradGuard no_grad;
    copy->block->fc->weight.fill_(0);
  }
  EXPECT_NE(net->block->fc->weight.abs().sum().item<double>(), 0.0);
  Tensor x = random_tensor({2, 3});
  net->eval();
  copy->eval();
  EXPECT_FALSE(kiln::equal(net->forward(x), copy->forward(x)));
}

TEST(Module, PrettyPrint) {
  nn::Sequential seq(nn::Linear(3, 4), nn::ReLU(), nn::Dropout(0.25));
  std::ostringstream s;
  s << seq;
  EXPECT_EQ(s.str(),
            "kiln::nn::Sequential(\n"
            "  (0): kiln::nn::Linear(in_features=3, out_features=4, bias=true)\n"
            "  (1): kiln::nn::ReLU()\n"
            "  (2): kiln::nn::Dropout(p=0.25, inplace=false)\n"
            ")");
  EXPECT_EQ(nn::Linear(1, 1)->name(), "kiln::nn::LinearImpl");
}

TEST(Module, AsCastsToTheImpl) {
  nn::Sequential seq(nn::Linear(3, 4), nn::ReLU());
  EXPECT_NE(seq[0]->as<nn::Linear>(), nullptr);
  EXPECT_NE(seq[0]->as<nn::LinearImpl>(), nullptr);
  EXPECT_EQ(seq[1]->as<nn::Linear>(), nullptr);
  EXPECT_EQ(seq->at<nn::LinearImpl>(0).options.out_features(), 4);
  EXPECT_KILN_ERROR(seq->ptr<nn::LinearImpl>(1), {"not the requested type"});
  EXPECT_KILN_ERROR(seq[7], {"index 7 is out of range for 2 modules"});
}

// ---- containers ------------------------------------------------------------------------------

TEST(Sequential, ChainsAndNames) {
  nn::Sequential seq({{"fc", nn::Linear(3, 2)}, {"act", nn::Tanh()}});
  EXPECT_EQ(seq->named_parameters().keys(), (std::vector<std::string>{"fc.weight", "fc.bias"}));
  Tensor x = random_tensor({4, 3});
  auto& fc = seq->at<nn::LinearImpl>(0);
  EXPECT_TRUE(close(seq->forward(x), kiln::tanh(kiln::linear(x, fc.weight, fc.bias))));
  seq->push_back(nn::Functional(kiln::clamp_min, 0.25));
  seq->push_back("last", nn::Functional(kiln::relu));
  EXPECT_EQ(seq->size(), 4u);
  EXPECT_EQ(seq->named_children().keys(), (std::vector<std::string>{"fc", "act", "2", "last"}));
  EXPECT_TRUE(close(seq(x), kiln::tanh(kiln::linear(x, fc.weight, fc.bias)).clamp_min(0.25)));
  nn::Sequential empty;
  EXPECT_TRUE(kiln::equal(empty->forward(x), x));
  // A cloned Sequential holds copies.
  auto copy = std::dynamic_pointer_cast<nn::SequentialImpl>(seq->clone());
  ASSERT_NE(copy, nullptr);
  EXPECT_EQ(copy->named_children().keys(), seq->named_children().keys());
  EXPECT_NE(copy->at<nn::LinearImpl>(0).weight.data_ptr(), fc.weight.data_ptr());
  EXPECT_TRUE(close(copy->forward(x), seq->forward(x)));
}

TEST(ModuleList, IndexInsertAndNames) {
  nn::ModuleList list(nn::Linear(2, 3), nn::ReLU());
  list->push_back(nn::Linear(3, 1));
  EXPECT_EQ(list->size(), 3u);
  list->insert(1, nn::Tanh());
  EXPECT_EQ(list->named_children().keys(), (std::vector<std::string>{"0", "1", "2", "3"}));
  EXPECT_NE(list[1]->as<nn::TanhImpl>(), nullptr);
  EXPECT_NE(list[2]->as<nn::ReLUImpl>(), nullptr);
  EXPECT_EQ(list->ptr<nn::LinearImpl>(3)->options.in_features(), 3);
  EXPECT_EQ(list->named_parameters().keys(),
            (std::vector<std::string>{"0.weight", "0.bias", "3.weight", "3.bias"}));
  EXPECT_KILN_ERROR(list->ptr(9), {"index 9 is out of range"});
}

// ---- Linear, Flatten, Identity -----------------------------------------------------------------

TEST(Linear, MatchesHandLoop) {
  nn::Linear fc(nn::LinearOptions(5, 3));
  fc->to(kDouble);
  Tensor x = random_tensor({2, 4, 5}, kDouble);
  Tensor y = fc(x);
  ASSERT_EQ(y.sizes().vec(), (std::vector<int64_t>{2, 4, 3}));
  std::vector<double> xv = to_vector(x), w = to_vector(fc->weight), b = to_vector(fc->bias);
  std::vector<double> ref;
  for (int64_t r = 0; r < 8; ++r) {
    auto row = testing::matvec(w, 3, 5, xv.data() + r * 5, b);
    ref.insert(ref.end(), row.begin(), row.end());
  }
  EXPECT_TRUE(close(y, from_values(ref, {2, 4, 3}), 1e-12, 1e-12));
  nn::Linear nobias(nn::LinearOptions(5, 3).bias(false));
  EXPECT_FALSE(nobias->bias.defined());
  EXPECT_EQ(nobias->parameters().size(), 1u);
  EXPECT_KILN_ERROR(fc(random_tensor({2, 4}, kDouble)), {"[Linear]", "[2, 4]", "[*, 5]"});
}

TEST(Linear, DefaultInitIsWithinLibtorchBounds) {
  manual_seed(3);
  nn::Linear fc(100, 50);
  const double bound = 1.0 / std::sqrt(100.0);
  for (const Tensor& p : fc->parameters()) {
    EXPECT_LE(p.abs().max().item<double>(), bound);
    // Uniform on [-b, b]: the largest of 5000 / 50 samples is close to b.
    EXPECT_GT(p.abs().max().item<double>(), 0.8 * bound);
  }
}

TEST(Linear, ParameterGradients) {
  nn::Linear fc(4, 3);
  fc->to(kDouble);
  Tensor x = random_tensor({5, 4}, kDouble);
  Tensor t = random_tensor({5, 3}, kDouble);
  check_param_grads(*fc, [&] { return F::mse_loss(fc(x), t); });
}

TEST(Flatten, DefaultAndRange) {
  Tensor x = random_tensor({2, 3, 4, 5});
  EXPECT_EQ(nn::Flatten()(x).sizes().vec(), (std::vector<int64_t>{2, 60}));
  EXPECT_EQ(nn::Flatten(nn::FlattenOptions().start_dim(2))(x).sizes().vec(),
            (std::vector<int64_t>{2, 3, 20}));
  EXPECT_TRUE(kiln::equal(nn::Identity()(x), x));
}

// ---- activations -----------------------------------------------------------------------------

TEST(Activations, MatchFormulas) {
  Tensor x = random_tensor({3, 7}, kDouble, -4, 4);
  std::vector<double> xv = to_vector(x);
  auto apply = [&](auto f) {
    std::vector<double> out;
    for (double v : xv) out.push_back(f(v));
    return from_values(out, {3, 7});
  };
  EXPECT_TRUE(close(nn::ReLU()(x), apply([](double v) { return v > 0 ? v : 0.0; })));
  EXPECT_TRUE(close(nn::Sigmoid()(x), apply(testing::sigmoid_ref), 1e-12, 1e-12));
  EXPECT_TRUE(close(nn::Tanh()(x), apply([](double v) { return std::tanh(v); }), 1e-12, 1e-12));
  EXPECT_TRUE(close(nn::SiLU()(x), apply([](double v) { return v * testing::sigmoid_ref(v); }),
                    1e-12, 1e-12));
  EXPECT_TRUE(close(nn::GELU()(x),
                    apply([](double v) { return 0.5 * v * (1 + std::erf(v / std::sqrt(2.0))); }),
                    1e-12, 1e-12));
  EXPECT_TRUE(close(nn::GELU(nn::GELUOptions().approximate("tanh"))(x), apply([](double v) {
                      return 0.5 * v *
                             (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
                    }),
                    1e-12, 1e-12));
  EXPECT_KILN_ERROR(F::gelu(x, F::GELUFuncOptions().approximate("fast")),
                    {"[gelu]", "approximate='fast'"});
  Tensor y = x.clone();
  Tensor r = F::relu(y, F::ReLUFuncOptions(true));
  EXPECT_EQ(r.data_ptr(), y.data_ptr());
  EXPECT_TRUE(close(y, apply([](double v) { return v > 0 ? v : 0.0; })));
  Tensor sm = nn::Softmax(1)(x), lsm = nn::LogSoftmax(1)(x);
  EXPECT_TRUE(close(sm.sum(1), kiln::ones({3}, kiln::dtype(kDouble)), 1e-12, 1e-12));
  EXPECT_TRUE(close(lsm.exp(), sm, 1e-12, 1e-12));
}

TEST(Activations, Gradcheck) {
  Tensor x = random_tensor({2, 5}, kDouble).requires_grad_();
  EXPECT_TRUE(autograd::gradcheck(
      [](const autograd::variable_list& v) {
        return autograd::variable_list{F::gelu(v[0], F::GELUFuncOptions().approximate("tanh"))};
      },
      {x}));
}

// ---- Conv2d and pools ------------------------------------------------------------------------

TEST(Conv2d, MatchesHandLoopWithStridePaddingGroups) {
  nn::Conv2d conv(nn::Conv2dOptions(4, 6, {3, 2}).stride({2, 1}).padding(1).groups(2));
  conv->to(kDouble);
  ASSERT_EQ(conv->weight.sizes().vec(), (std::vector<int64_t>{6, 2, 3, 2}));
  Tensor x = random_tensor({2, 4, 5, 4}, kDouble);
  Tensor y = conv(x);
  const int64_t OH = (5 + 2 - 3) / 2 + 1, OW = (4 + 2 - 2) / 1 + 1;
  ASSERT_EQ(y.sizes().vec(), (std::vector<int64_t>{2, 6, OH, OW}));
  std::vector<double> xv = to_vector(x), w = to_vector(conv->weight), b = to_vector(conv->bias);
  std::vector<double> ref;
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t o = 0; o < 6; ++o)
      for (int64_t oy = 0; oy < OH; ++oy)
        for (int64_t ox = 0; ox < OW; ++ox) {
          double s = b[o];
          const int64_t g = o / 3;
          for (int64_t c = 0; c < 2; ++c)
            for (int64_t ky = 0; ky < 3; ++ky)
              for (int64_t kx = 0; kx < 2; ++kx) {
                const int64_t iy = oy * 2 - 1 + ky, ix = ox - 1 + kx;
                if (iy < 0 || iy >= 5 || ix < 0 || ix >= 4) continue;
                s += w[((o * 2 + c) * 3 + ky) * 2 + kx] *
                     xv[((n * 4 + g * 2 + c) * 5 + iy) * 4 + ix];
              }
          ref.push_back(s);
        }
  EXPECT_TRUE(close(y, from_values(ref, {2, 6, OH, OW}), 1e-12, 1e-12));
  EXPECT_KILN_ERROR(conv(random_tensor({2, 3, 5, 5}, kDouble)),
                    {"[Conv2d]", "[2, 3, 5, 5]", "[N, 4, H, W]"});
  EXPECT_KILN_ERROR(nn::Conv2d(nn::Conv2dOptions(3, 4, 3).groups(2)),
                    {"[Conv2d]", "divisible by groups"});
}

TEST(Conv2d, ParameterGradients) {
  nn::Conv2d conv(nn::Conv2dOptions(2, 3, 3).padding(1));
  conv->to(kDouble);
  Tensor x = random_tensor({2, 2, 4, 4}, kDouble);
  check_param_grads(*conv, [&] { return (conv(x) * conv(x)).mean(); });
}

TEST(Pool, MaxAndAvgMatchHandLoops) {
  Tensor x = random_tensor({1, 2, 4, 6}, kDouble);
  std::vector<double> xv = to_vector(x), mx, av;
  for (int64_t c = 0; c < 2; ++c)
    for (int64_t oy = 0; oy < 2; ++oy)
      for (int64_t ox = 0; ox < 3; ++ox) {
        double m = -1e300, s = 0;
        for (int64_t ky = 0; ky < 2; ++ky)
          for (int64_t kx = 0; kx < 2; ++kx) {
            double v = xv[(c * 4 + oy * 2 + ky) * 6 + ox * 2 + kx];
            m = std::max(m, v);
            s += v;
          }
        mx.push_back(m);
        av.push_back(s / 4);
      }
  EXPECT_TRUE(close(nn::MaxPool2d(2)(x), from_values(mx, {1, 2, 2, 3})));
  EXPECT_TRUE(close(nn::AvgPool2d(nn::AvgPool2dOptions({2, 2}))(x), from_values(av, {1, 2, 2, 3}),
                    1e-12, 1e-12));
  EXPECT_TRUE(close(F::max_pool2d(x, F::MaxPool2dFuncOptions(2)), from_values(mx, {1, 2, 2, 3})));
  EXPECT_KILN_ERROR(nn::MaxPool2d(2)(random_tensor({4, 4})), {"[MaxPool2d]", "[4, 4]"});
}

// ---- BatchNorm, LayerNorm ----------------------------------------------------------------------

// Per-channel batch mean and biased variance of x [N, C, L] (L = 1 for [N, C]).
void channel_stats(const Tensor& x, std::vector<double>& mean, std::vector<double>& var) {
  const int64_t N = x.size(0), C = x.size(1), L = x.numel() / (N * C);
  std::vector<double> v = to_vector(x);
  mean.assign(C, 0);
  var.assign(C, 0);
  for (int64_t c = 0; c < C; ++c) {
    for (int64_t n = 0; n < N; ++n)
      for (int64_t l = 0; l < L; ++l) mean[c] += v[(n * C + c) * L + l];
    mean[c] /= static_cast<double>(N * L);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t l = 0; l < L; ++l) var[c] += std::pow(v[(n * C + c) * L + l] - mean[c], 2);
    var[c] /= static_cast<double>(N * L);
  }
}

TEST(BatchNorm, TrainingNormalizesAndUpdatesRunningStats) {
  nn::BatchNorm2d bn(nn::BatchNorm2dOptions(3).momentum(0.2).eps(1e-3));
  bn->to(kDouble);
  {
    NoGradGuard no_grad;
    bn->weight.copy_(from_values({1.5, -0.5, 2.0}, {3}));
    bn->bias.copy_(from_values({0.1, 0.2, -0.3}, {3}));
  }
  Tensor x = random_tensor({4, 3, 2, 5}, kDouble, -3, 5);
  Tensor y = bn(x);
  std::vector<double> mean, var;
  channel_stats(x.reshape({4, 3, 10}), mean, var);
  std::vector<double> xv = to_vector(x), ref(xv.size());
  const double w[3] = {1.5, -0.5, 2.0}, b[3] = {0.1, 0.2, -0.3};
  for (int64_t n = 0; n < 4; ++n)
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t l = 0; l < 10; ++l) {
        const int64_t i = (n * 3 + c) * 10 + l;
        ref[i] = (xv[i] - mean[c]) / std::sqrt(var[c] + 1e-3) * w[c] + b[c];
      }
  EXPECT_TRUE(close(y, from_values(ref, {4, 3, 2, 5}), 1e-10, 1e-10));
  std::vector<double> rm, rv;
  for (int c = 0; c < 3; ++c) {
    rm.push_back(0.8 * 0.0 + 0.2 * mean[c]);
    rv.push_back(0.8 * 1.0 + 0.2 * var[c] * 40.0 / 39.0);  // unbiased batch variance
  }
  EXPECT_TRUE(close(bn->running_mean, from_values(rm, {3}), 1e-12, 1e-12));
  EXPECT_TRUE(close(bn->running_var, from_values(rv, {3}), 1e-12, 1e-12));
  EXPECT_EQ(bn->num_batches_tracked.item<int64_t>(), 1);
  // Eval uses the running statistics.
  bn->eval();
  Tensor ye = bn(x);
  for (int64_t n = 0; n < 4; ++n)
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t l = 0; l < 10; ++l) {
        const int64_t i = (n * 3 + c) * 10 + l;
        ref[i] = (xv[i] - rm[c]) / std::sqrt(rv[c] + 1e-3) * w[c] + b[c];
      }
  EXPECT_TRUE(close(ye, from_values(ref, {4, 3, 2, 5}), 1e-10, 1e-10));
  EXPECT_EQ(bn->num_batches_tracked.item<int64_t>(), 1);
}

TEST(BatchNorm, CumulativeAverageWithoutMomentum) {
  nn::BatchNorm1d bn(nn::BatchNorm1dOptions(2).momentum(std::nullopt).affine(false));
  bn->to(kDouble);
  EXPECT_EQ(bn->parameters().size(), 0u);
  Tensor a = random_tensor({6, 2}, kDouble), b = random_tensor({6, 2}, kDouble);
  bn(a);
  bn(b);
  std::vector<double> ma, va, mb, vb;
  channel_stats(a, ma, va);
  channel_stats(b, mb, vb);
  // Factor 1 then 1/2: the plain average of the two batch means.
  std::vector<double> rm = {(ma[0] + mb[0]) / 2, (ma[1] + mb[1]) / 2};
  EXPECT_TRUE(close(bn->running_mean, from_values(rm, {2}), 1e-12, 1e-12));
  EXPECT_EQ(bn->num_batches_tracked.item<int64_t>(), 2);
}

TEST(BatchNorm, ErrorsAndGradients) {
  nn::BatchNorm1d bn(3);
  EXPECT_KILN_ERROR(bn(random_tensor({4, 5})), {"[BatchNorm1d]", "[4, 5]", "3 channels"});
  EXPECT_KILN_ERROR(bn(random_tensor({1, 3})), {"more than 1 value per channel"});
  EXPECT_KILN_ERROR(nn::BatchNorm2d(3)(random_tensor({4, 3})), {"[BatchNorm2d]", "[N, 3, H, W]"});
  Tensor x = random_tensor({3, 2, 4}, kDouble).requires_grad_();
  Tensor w = random_tensor({2}, kDouble).requires_grad_();
  Tensor b = random_tensor({2}, kDouble).requires_grad_();
  EXPECT_TRUE(autograd::gradcheck(
      [](const autograd::variable_list& v) {
        return autograd::variable_list{
            F::batch_norm(v[0], Tensor(), Tensor(),
                          F::BatchNormFuncOptions().weight(v[1]).bias(v[2]).training(true))};
      },
      {x, w, b}));
  nn::BatchNorm2d bn2(2);
  bn2->to(kDouble);
  Tensor x2 = random_tensor({3, 2, 2, 2}, kDouble);
  check_param_grads(*bn2, [&] { return (bn2(x2) * x2).sum(); });
}

TEST(LayerNorm, MatchesHandLoopAndGradchecks) {
  nn::LayerNorm ln(nn::LayerNormOptions({2, 3}).eps(1e-4));
  ln->to(kDouble);
  {
    NoGradGuard no_grad;
    ln->weight.copy_(random_tensor({2, 3}, kDouble));
    ln->bias.copy_(random_tensor({2, 3}, kDouble));
  }
  Tensor x = random_tensor({4, 2, 3}, kDouble);
  std::vector<double> xv = to_vector(x), w = to_vector(ln->weight), b = to_vector(ln->bias);
  std::vector<double> ref;
  for (int64_t r = 0; r < 4; ++r) {
    double m = 0, v = 0;
    for (int k = 0; k < 6; ++k) m += xv[r * 6 + k] / 6;
    for (int k = 0; k < 6; ++k) v += std::pow(xv[r * 6 + k] - m, 2) / 6;
    for (int k = 0; k < 6; ++k)
      ref.push_back((xv[r * 6 + k] - m) / std::sqrt(v + 1e-4) * w[k] + b[k]);
  }
  EXPECT_TRUE(close(ln(x), from_values(ref, {4, 2, 3}), 1e-10, 1e-10));
  EXPECT_KILN_ERROR(ln(random_tensor({4, 3, 2})), {"[layer_norm]", "[2, 3]", "[4, 3, 2]"});
  Tensor xg = random_tensor({3, 4}, kDouble).requires_grad_();
  Tensor wg = random_tensor({4}, kDouble).requires_grad_();
  EXPECT_TRUE(autograd::gradcheck(
      [](const autograd::variable_list& v) {
        return autograd::variable_list{
            F::layer_norm(v[0], F::LayerNormFuncOptions({4}).weight(v[1]))};
      },
      {xg, wg}));
  check_param_grads(*ln, [&] { return (ln(x) * x).sum(); });
}

// ---- Dropout, Embedding
// --------------------------------------------------------------------------

TEST(Dropout, TrainingZeroesAndScalesEvalIsIdentity) {
  manual_seed(11);
  nn::Dropout drop(0.3);
  Tensor x = kiln::ones({200, 100});
  Tensor y = drop(x);
  std::vector<double> v = to_vector(y);
  int64_t zeros = 0;
  for (double e : v) {
    if (e == 0.0)
      ++zeros;
    else
      EXPECT_NEAR(e, 1.0 / 0.7, 1e-6);
  }
  // 20000 Bernoulli(0.3) draws: the fraction is within 0.03 of 0.3 with overwhelming odds.
  EXPECT_NEAR(static_cast<double>(zeros) / 20000.0, 0.3, 0.03);
  drop->eval();
  EXPECT_TRUE(kiln::equal(drop(x), x));
  drop->train();
  EXPECT_EQ(F::dropout(x, F::DropoutFuncOptions().p(1.0)).abs().sum().item<double>(), 0.0);
  EXPECT_TRUE(kiln::equal(F::dropout(x, F::DropoutFuncOptions().p(0.0)), x));
  EXPECT_KILN_ERROR(nn::Dropout(1.5), {"[Dropout]", "p=1.5"});
  // The gradient flows through the kept elements only, scaled the same way.
  Tensor xg = random_tensor({50}, kDouble).requires_grad_();
  Tensor out = F::dropout(xg, F::DropoutFuncOptions().p(0.5));
  out.sum().backward();
  std::vector<double> o = to_vector(out), g = to_vector(xg.grad()), xv = to_vector(xg);
  for (size_t i = 0; i < o.size(); ++i) EXPECT_DOUBLE_EQ(g[i], o[i] == 0.0 ? 0.0 : 2.0);
  EXPECT_TRUE(autograd::gradcheck(
      [](const autograd::variable_list& in) {
        manual_seed(5);  // the same mask in every evaluation
        return autograd::variable_list{F::dropout(in[0], F::DropoutFuncOptions().p(0.4))};
      },
      {random_tensor({3, 4}, kDouble).requires_grad_()}));
}

TEST(Embedding, LookupAndPaddingIdx) {
  nn::Embedding emb(nn::EmbeddingOptions(6, 3).padding_idx(-2));
  EXPECT_EQ(*emb->options.padding_idx(), 4);
  EXPECT_EQ(emb->weight[4].abs().sum().item<double>(), 0.0);
  emb->to(kDouble);
  Tensor idx = kiln::tensor({{0, 4, 2}, {4, 5, 0}});
  Tensor y = emb(idx);
  ASSERT_EQ(y.sizes().vec(), (std::vector<int64_t>{2, 3, 3}));
  std::vector<double> w = to_vector(emb->weight), ref;
  for (int64_t i : {0, 4, 2, 4, 5, 0})
    for (int k = 0; k < 3; ++k) ref.push_back(w[i * 3 + k]);
  EXPECT_TRUE(close(y, from_values(ref, {2, 3, 3})));
  (y * 2.0).sum().backward();
  // Row 0 was looked up twice, 2 and 5 once, 4 (padding) gets nothing.
  std::vector<double> counts = {2, 0, 1, 0, 0, 1};
  std::vector<double> g = to_vector(emb->weight.grad());
  for (int64_t r = 0; r < 6; ++r)
    for (int k = 0; k < 3; ++k) EXPECT_DOUBLE_EQ(g[r * 3 + k], 2.0 * counts[r]) << r;
  EXPECT_KILN_ERROR(emb(kiln::ones({2})), {"[Embedding]", "float32"});
  EXPECT_KILN_ERROR(nn::Embedding(nn::EmbeddingOptions(3, 2).padding_idx(3)), {"padding_idx 3"});
}

// ---- init ------------------------------------------------------------------------------------

TEST(Init, BoundsGainsAndFans) {
  EXPECT_DOUBLE_EQ(nn::init::calculate_gain(kReLU), std::sqrt(2.0));
  EXPECT_DOUBLE_EQ(nn::init::calculate_gain(kTanh), 5.0 / 3.0);
  EXPECT_DOUBLE_EQ(nn::init::calculate_gain(kLeakyReLU, 0.2), std::sqrt(2.0 / 1.04));
  EXPECT_DOUBLE_EQ(nn::init::calculate_gain(kSigmoid), 1.0);
  Tensor w = kiln::empty({20, 6, 3, 3});
  auto [fan_in, fan_out] = nn::init::_calculate_fan_in_and_fan_out(w);
  EXPECT_EQ(fan_in, 54);
  EXPECT_EQ(fan_out, 180);
  manual_seed(1);
  nn::init::kaiming_uniform_(w, 0, kFanOut, kReLU);
  const double kb = std::sqrt(3.0) * std::sqrt(2.0) / std::sqrt(180.0);
  EXPECT_LE(w.abs().max().item<double>(), kb);
  EXPECT_GT(w.abs().max().item<double>(), 0.95 * kb);
  nn::init::xavier_uniform_(w, 2.0);
  const double xb = 2.0 * std::sqrt(6.0 / (54.0 + 180.0));
  EXPECT_LE(w.abs().max().item<double>(), xb);
  EXPECT_GT(w.abs().max().item<double>(), 0.95 * xb);
  Tensor big = kiln::empty({400, 500});
  nn::init::kaiming_normal_(big, 0, kFanIn, kReLU);
  // 200000 normal samples: the sample std is within 1% of sqrt(2 / 500).
  EXPECT_NEAR(big.std().item<double>(), std::sqrt(2.0 / 500.0), 0.01 * std::sqrt(2.0 / 500.0));
  nn::init::normal_(big, 3.0, 0.5);
  EXPECT_NEAR(big.mean().item<double>(), 3.0, 0.01);
  nn::init::constant_(big, 0.25);
  EXPECT_EQ(big.max().item<double>(), 0.25);
  EXPECT_EQ(big.min().item<double>(), 0.25);
  EXPECT_KILN_ERROR(nn::init::xavier_uniform_(kiln::empty({5})), {"fewer than 2 dimensions"});
  Tensor p = kiln::zeros({3, 3}).requires_grad_();
  nn::init::eye_(p);  // on a leaf that requires grad: allowed, not recorded
  EXPECT_TRUE(kiln::equal(p, kiln::eye(3)));
  EXPECT_TRUE(p.is_leaf());
}

// ---- clip_grad_norm_ -------------------------------------------------------------------------

TEST(ClipGrad, NormAndValue) {
  Tensor a = kiln::zeros({3}, kiln::dtype(kDouble)).requires_grad_();
  Tensor b = kiln::zeros({2, 2}, kiln::dtype(kDouble)).requires_grad_();
  a.mutable_grad() = from_values({3, -4, 12}, {3});
  b.mutable_grad() = from_values({0, 1, -2, 2}, {2, 2});
  const double total = std::sqrt(9.0 + 16 + 144 + 1 + 4 + 4);
  double n = nn::utils::clip_grad_norm_({a, b}, 100.0);
  EXPECT_DOUBLE_EQ(n, total);
  EXPECT_TRUE(close(a.grad(), from_values({3, -4, 12}, {3})));  // under the limit: unchanged
  n = nn::utils::clip_grad_norm_({a, b}, 1.0);
  EXPECT_NEAR(n, total, 1e-12);
  const double coef = 1.0 / (total + 1e-6);
  EXPECT_TRUE(close(a.grad(), from_values({3 * coef, -4 * coef, 12 * coef}, {3}), 1e-12, 1e-12));
  EXPECT_NEAR(nn::utils::clip_grad_norm_({a, b}, 1.0, INFINITY), 12 * coef, 1e-12);
  b.mutable_grad() = from_values({0, 1, NAN, 2}, {2, 2});
  EXPECT_KILN_ERROR(nn::utils::clip_grad_norm_({a, b}, 1.0, 2.0, true), {"nan"});
  b.mutable_grad() = from_values({0, 1, -2, 2}, {2, 2});
  nn::utils::clip_grad_value_({b}, 1.5);
  EXPECT_TRUE(close(b.grad(), from_values({0, 1, -1.5, 1.5}, {2, 2})));
  Tensor v = nn::utils::parameters_to_vector({a, b});
  EXPECT_EQ(v.numel(), 7);
  nn::utils::vector_to_parameters(kiln::arange(7, kiln::dtype(kDouble)), {a, b});
  EXPECT_TRUE(close(b, from_values({3, 4, 5, 6}, {2, 2})));
}

}  // namespace
}  // namespace kiln
