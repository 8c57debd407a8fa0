// The contract every registered layer kind meets. Each kind of the registry needs an example module here (a kind
// registered without one fails the first test), then: the matrix view round-trips, the block is the right size,
// preconditioning solves with the block's own dense form, and a checkpoint restores it exactly.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <functional>
#include <map>
#include <sstream>

#include "kfac/kfac.h"
#include "support/helpers.h"
#include "support/layer_examples.h"

namespace kfac::test {
namespace {

std::vector<std::string> every_kind() {
  auto kinds = registered_layer_kinds();
  for (const auto& user : registered_module_kinds()) kinds.push_back(user);
  return kinds;
}

TEST(LayerKinds, EveryRegisteredKindHasAnExample) {
  layer_examples();  // registers the user's kind the examples hold
  for (const auto& kind : every_kind()) EXPECT_EQ(layer_examples().count(kind), 1U) << kind;
}

class LayerKindContract : public ::testing::TestWithParam<std::string> {};

std::unique_ptr<Preconditioner> trained(torch::nn::Sequential& net, const LayerExample& e, const at::Tensor& x) {
  auto p = std::make_unique<Preconditioner>(*net, PreconditionerOptions().damping_mode(DampingMode::Eigen));
  const auto out = net->forward(x);
  const auto y = torch::randint(0, e.classes, out.sizes().slice(0, out.dim() - 1));
  stats_and_step(*p, net, x, y, LossKind::SoftmaxCrossEntropy);
  return p;
}

TEST_P(LayerKindContract, MatrixViewBlockSolveAndCheckpoint) {
  const auto& e = layer_examples().at(GetParam());
  torch::manual_seed(61);
  auto net = e.model();
  net->to(torch::kDouble);
  const auto raw = e.inputs();
  const auto x = raw.is_floating_point() ? raw.to(torch::kDouble) : raw;
  auto p = trained(net, e, x);
  ASSERT_EQ(p->layers().size(), 1U);
  const auto& layer = p->layers()[0];
  // The registry's name, or the built-in kind a user's factory reuses.
  EXPECT_EQ(layer.kind->kind_name(), GetParam() == "UserProjection" ? "Linear" : GetParam());
  const auto& kind = *layer.kind;
  // The matrix view: [d_G, d_A], from_matrix → to_matrix is the identity, and the parts have the parameters' shapes.
  const auto m = torch::randn({kind.dim_g(), kind.dim_a()}, torch::kDouble);
  const auto parts = kind.from_matrix(m);
  const auto params = kind.parameters();
  ASSERT_EQ(parts.size(), params.size());
  for (size_t i = 0; i < parts.size(); ++i) EXPECT_EQ(parts[i].sizes(), params[i].sizes());
  EXPECT_TRUE(torch::equal(kind.to_matrix(parts), m));
  kind.set_grad_matrix(m);
  EXPECT_TRUE(torch::equal(kind.grad_matrix(), m));
  // The block: (d_A·d_G)², and with eigen damping the solve is (F + λI)⁻¹ of the block's dense form.
  const auto& c = p->curvature(0);
  const auto dense = c.to_dense();
  const int64_t n = kind.dim_a() * kind.dim_g();
  ASSERT_EQ(dense.sizes(), (std::vector<int64_t>{n, n}));
  const auto v = torch::randn({kind.dim_g(), kind.dim_a()}, torch::kDouble);
  const auto want =
      unvec(torch::linalg_solve(dense + 0.1 * torch::eye(n, torch::kDouble), vec(v).unsqueeze(1)).squeeze(1),
            kind.dim_g(), kind.dim_a());
  EXPECT_LT(max_abs_diff(c.precondition(v, 0.1), want), 1e-9 * std::max(1.0, want.abs().max().item<double>()));
  // A checkpoint into a fresh preconditioner restores the block exactly.
  std::stringstream bytes;
  torch::save(*p, bytes);
  torch::manual_seed(62);
  auto other = e.model();
  other->to(torch::kDouble);
  Preconditioner q(*other, PreconditionerOptions().damping_mode(DampingMode::Eigen));
  torch::load(q, bytes);
  EXPECT_TRUE(torch::equal(q.curvature(0).to_dense(), dense));
  EXPECT_TRUE(torch::equal(q.curvature(0).precondition(v, 0.1), c.precondition(v, 0.1)));
}

INSTANTIATE_TEST_SUITE_P(Registered, LayerKindContract, ::testing::ValuesIn(every_kind()),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

}  // namespace
}  // namespace kfac::test
