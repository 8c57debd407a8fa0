// Patch extraction (KFC) against explicit loops, and the preconditioned gradient against a dense solve for
// Linear and Conv2d layers, with and without bias, for every damping form.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "kfac/kfac.h"
#include "kfac/fisher/dense_fisher.h"
#include "support/helpers.h"
#include "support/tiny_models.h"

namespace kfac::test {
namespace {

TEST(Conv2dKind, PatchesEqualExplicitLoopWithStridePaddingDilation) {
  torch::manual_seed(7);
  const int64_t B = 2, C = 3, H = 7, W = 6, O = 4, kh = 3, kw = 2;
  const std::array<int64_t, 2> stride{2, 1}, pad{1, 2}, dil{2, 1};
  kfac::nn::Conv2d conv(torch::nn::Conv2dOptions(C, O, {kh, kw}).stride({2, 1}).padding({1, 2}).dilation({2, 1}));
  conv->to(torch::kDouble);
  auto layer = find_layers(*torch::nn::Sequential(conv).ptr()).at(0);
  auto x = torch::randn({B, C, H, W}, torch::kDouble);
  auto y = conv(x);
  const int64_t Ho = y.size(2), Wo = y.size(3);
  auto patches = layer.kind->expand_input(x);  // [B, T, C·kh·kw + 1]
  ASSERT_EQ(patches.sizes(), (std::vector<int64_t>{B, Ho * Wo, C * kh * kw + 1}));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t oh = 0; oh < Ho; ++oh)
      for (int64_t ow = 0; ow < Wo; ++ow) {
        int64_t col = 0;
        for (int64_t c = 0; c < C; ++c)
          for (int64_t i = 0; i < kh; ++i)
            for (int64_t j = 0; j < kw; ++j, ++col) {
              const int64_t h = oh * stride[0] - pad[0] + i * dil[0], w = ow * stride[1] - pad[1] + j * dil[1];
              const double expected = (h >= 0 && h < H && w >= 0 && w < W) ? x[b][c][h][w].item<double>() : 0.0;
              ASSERT_EQ(patches[b][oh * Wo + ow][col].item<double>(), expected) << b << oh << ow << col;
            }
        ASSERT_EQ(patches[b][oh * Wo + ow][col].item<double>(), 1.0);  // homogeneous coordinate
      }
  // Patches times the weight matrix reproduce the convolution: the column order matches weight.view(O, -1).
  auto wmat = torch::cat({conv->weight.reshape({O, -1}), conv->bias.unsqueeze(1)}, 1);
  auto out = torch::matmul(patches, wmat.t());  // [B, T, O]
  EXPECT_LT(max_abs_diff(out, layer.kind->expand_output_grad(y)), 1e-12);
}

TEST(Conv2dKind, FactorsEqualExplicitSumsOverPatches) {
  torch::manual_seed(8);
  auto model = cnn(3);
  auto x = torch::randn({3, 2, 5, 5}, torch::kDouble);
  auto y = torch::randint(0, 3, {3});
  Preconditioner p(*model, PreconditionerOptions().fisher(FisherType::Empirical));
  // Capture the per-location inputs and output gradients by hand through the same slots.
  stats_and_step(p, model, x, y, LossKind::SoftmaxCrossEntropy);
  const auto& conv = dynamic_cast<const KfacCurvature&>(p.curvature(0));
  // A = 1/(B|T|) Σ_{b,t} ā ā^T with ā built by a loop over locations of the padded input.
  auto xp = torch::constant_pad_nd(x, {1, 1, 1, 1});
  auto a_sum = torch::zeros({2 * 9 + 1, 2 * 9 + 1}, torch::kDouble);
  for (int64_t b = 0; b < 3; ++b)
    for (int64_t h = 0; h < 5; ++h)
      for (int64_t w = 0; w < 5; ++w) {
        auto patch = torch::cat({xp[b].slice(1, h, h + 3).slice(2, w, w + 3).reshape({-1}),
                                 torch::ones({1}, torch::kDouble)});
        a_sum += torch::outer(patch, patch);
      }
  EXPECT_LT(max_abs_diff(conv.factor_a(), a_sum / 75.0), 1e-12);
  EXPECT_EQ(conv.locations(), 25);
  // G = 1/(B|T|) Σ_{b,t} g gᵀ with g = per-example dℓ/d(output) of the first conv at each location.
  auto it = model->begin();
  auto out1 = it->forward(x);
  auto z = out1;
  for (++it; it != model->end(); ++it) z = it->forward(z);
  auto sum_loss = torch::nll_loss(torch::log_softmax(z, 1), y, {}, at::Reduction::Sum);
  auto gy = torch::autograd::grad({sum_loss}, {out1})[0];  // [B, 3, 5, 5]
  auto g_sum = torch::zeros({3, 3}, torch::kDouble);
  for (int64_t b = 0; b < 3; ++b)
    for (int64_t h = 0; h < 5; ++h)
      for (int64_t w = 0; w < 5; ++w) {
        auto g = gy[b].select(1, h).select(1, w);
        g_sum += torch::outer(g, g);
      }
  EXPECT_LT(max_abs_diff(conv.factor_g(), g_sum / 75.0), 1e-12);
}

TEST(Conv1dKind, PatchesAreThoseOfAConv2dOfHeightOne) {
  torch::manual_seed(10);
  kfac::nn::Conv1d conv1(torch::nn::Conv1dOptions(3, 4, 3).stride(2).padding(2).dilation(2));
  kfac::nn::Conv2d conv2(torch::nn::Conv2dOptions(3, 4, {1, 3}).stride({1, 2}).padding({0, 2}).dilation({1, 2}));
  {
    torch::NoGradGuard no_grad;
    conv2->weight.copy_(conv1->weight.unsqueeze(2)), conv2->bias.copy_(conv1->bias);
  }
  const auto l1 = find_layers(*torch::nn::Sequential(conv1).ptr()).at(0);
  const auto l2 = find_layers(*torch::nn::Sequential(conv2).ptr()).at(0);
  EXPECT_EQ(l1.kind->kind_name(), "Conv1d");
  const auto x = torch::randn({2, 3, 9});
  const auto y1 = conv1(x), y2 = conv2(x.unsqueeze(2));
  EXPECT_LT(max_abs_diff(y1, y2.squeeze(2)), 1e-6);
  EXPECT_TRUE(torch::equal(l1.kind->expand_input(x), l2.kind->expand_input(x.unsqueeze(2))));
  const auto g = torch::randn({1, 2, 4, y1.size(2)});
  EXPECT_TRUE(torch::equal(l1.kind->expand_output_grad(g), l2.kind->expand_output_grad(g.unsqueeze(3))));
  EXPECT_EQ(l1.kind->grid(g), (std::array<int64_t, 2>{1, y1.size(2)}));
  const auto positions = torch::tensor({0, 2}, torch::kLong);
  EXPECT_TRUE(torch::equal(l1.kind->expand_input_at(x, positions),
                           l1.kind->expand_input(x).index_select(1, positions)));
  // The matrix view is weight.view(out, -1) | bias, and back in the weight's own [out, in, k] shape.
  EXPECT_TRUE(torch::equal(l1.kind->param_matrix(), l2.kind->param_matrix()));
  EXPECT_EQ(l1.kind->from_matrix(l1.kind->param_matrix())[0].sizes(), conv1->weight.sizes());
}

// One Conv1d layer under a squared error: with a loss term per output position K-FAC-expand is the exact Fisher
// block, with the positions averaged before the loss K-FAC-reduce is (Eschenhagen et al. 2023).
TEST(Conv1dKind, ExpandAndReduceEqualTheDenseFisherInTheirSettings) {
  for (const bool pool : {false, true}) {
    torch::manual_seed(11);
    kfac::nn::Conv1d conv(torch::nn::Conv1dOptions(2, 3, 3).padding(1));
    conv->to(torch::kDouble);
    auto model = torch::nn::Sequential(conv);
    auto forward = [&](const at::Tensor& in) {
      const auto z = conv(in);
      return pool ? z.mean(2) : z.transpose(1, 2);  // [B, 3] or a squared error per position [B, L, 3]
    };
    const auto x = torch::randn({5, 2, 6}, torch::kDouble);
    const auto sharing = pool ? WeightSharing::Reduce : WeightSharing::Expand;
    Preconditioner p(*model, PreconditionerOptions().fisher(FisherType::Exact).weight_sharing(sharing));
    p.update_statistics(forward, x, LossKind::SquaredError);
    model->zero_grad();
    const auto z = forward(x);
    kfac::loss(z, torch::zeros_like(z), LossKind::SquaredError).backward();
    p.step();
    const auto exact = exact_fisher(forward, p.layers(), x, LossKind::SquaredError, /*true_fisher=*/true).block(0);
    EXPECT_EQ(p.curvature(0).locations(), pool ? 1 : 6);
    EXPECT_LT(max_abs_diff(p.curvature(0).to_dense(), exact) / exact.abs().max().item<double>(), 1e-10)
        << (pool ? "reduce, pooled" : "expand, per position");
  }
}

struct DampingCase {
  DampingMode mode;
  InverseMethod inverse;
};

void check_dense_solve(torch::nn::Sequential model, const at::Tensor& x, const at::Tensor& y, DampingCase dc) {
  const double damping = 0.3;
  Preconditioner p(*model, PreconditionerOptions()
                               .damping(damping)
                               .damping_mode(dc.mode)
                               .inverse_method(dc.inverse)
                               .fisher(FisherType::Empirical));
  stats_and_step(p, model, x, y, LossKind::SoftmaxCrossEntropy);
  for (size_t i = 0; i < p.layers().size(); ++i) {
    const auto& c = dynamic_cast<const KfacCurvature&>(p.curvature(i));
    const auto A = c.factor_a(), G = c.factor_g();
    const double T = static_cast<double>(c.locations());
    const int64_t da = A.size(0), dg = G.size(0);
    auto V = torch::randn({dg, da}, torch::kDouble);
    at::Tensor dense;
    if (dc.mode == DampingMode::Eigen) {
      dense = T * torch::kron(A, G) + damping * torch::eye(da * dg, torch::kDouble);
    } else {
      const double pi = std::sqrt((A.trace().item<double>() / da) / (G.trace().item<double>() / dg));
      const double gamma = std::sqrt(damping / T);
      dense = T * torch::kron(A + pi * gamma * torch::eye(da, torch::kDouble),
                              G + gamma / pi * torch::eye(dg, torch::kDouble));
    }
    auto expected = unvec(torch::linalg_solve(dense, vec(V).unsqueeze(1)).squeeze(1), dg, da);
    auto got = c.precondition(V, damping);
    EXPECT_LT(max_abs_diff(got, expected) / expected.abs().max().item<double>(), 1e-9)
        << p.layers()[i].name << " (" << p.layers()[i].kind->kind_name() << ", T=" << T << ")";
  }
}

class DenseSolve : public ::testing::TestWithParam<std::tuple<DampingCase, bool>> {};

TEST_P(DenseSolve, PreconditionedGradientEqualsDenseSolve) {
  const auto [dc, bias] = GetParam();
  torch::manual_seed(9);
  check_dense_solve(mlp({4, 5, 3}, bias), torch::randn({6, 4}, torch::kDouble), torch::randint(0, 3, {6}), dc);
  check_dense_solve(cnn(3, bias), torch::randn({4, 2, 5, 5}, torch::kDouble), torch::randint(0, 3, {4}), dc);
}

INSTANTIATE_TEST_SUITE_P(
    AllDampingForms, DenseSolve,
    ::testing::Combine(::testing::Values(DampingCase{DampingMode::Eigen, InverseMethod::Eigen},
                                         DampingCase{DampingMode::Factored, InverseMethod::Eigen},
                                         DampingCase{DampingMode::Factored, InverseMethod::Cholesky}),
                       ::testing::Bool()),
    [](const ::testing::TestParamInfo<DenseSolve::ParamType>& info) {
      const auto& dc = std::get<0>(info.param);
      return to_string(dc.mode) + "_" + to_string(dc.inverse) + (std::get<1>(info.param) ? "_bias" : "_nobias");
    });

}  // namespace
}  // namespace kfac::test
