// CUDA against the CPU in float64, whenever a CUDA device is present (skipped otherwise): every registered method on
// every registered layer kind (Linear expand and reduce, Conv2d, Embedding, LayerNorm, BatchNorm2d, a user kind),
// attention, every global stage, the fallback, batched refined eigenbases, mixed precision, checkpoints across
// devices, and cuSOLVER failures through the decomposition policy.
//
// The runs use the empirical Fisher, so no target is sampled and both devices see the same statistics. Tolerances,
// relative to the largest entry of the CPU float64 result: float64 on CUDA 1e-8 (only reduction order differs),
// float32 1e-3 (the factors' decompositions in float32 at damping 1e-2), bfloat16 parameters with float32 factors
// 5e-2 (bf16 keeps 8 mantissa bits: activations and gradients are rounded to ~4e-3 in every layer, and the solve at
// damping 1e-2 amplifies that in the factors' small directions).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <sstream>

#include "kfac/kfac.h"
#include "support/helpers.h"
#include "support/layer_examples.h"
#include "support/method_lists.h"
#include "support/tiny_models.h"

namespace kfac::test {
namespace {

double tolerance(at::ScalarType dtype) { return dtype == at::kDouble ? 1e-8 : dtype == at::kFloat ? 1e-3 : 5e-2; }

// The parameters' gradients after each of `steps` preconditioned steps, in float64 on the CPU.
std::vector<std::vector<at::Tensor>> directions(torch::nn::Sequential net, const PreconditionerOptions& options,
                                                const at::Tensor& x, const at::Tensor& y, int steps) {
  Preconditioner p(*net, options);
  std::vector<std::vector<at::Tensor>> out;
  for (int s = 0; s < steps; ++s) {
    const auto stats = stats_and_step(p, net, x, y, LossKind::SoftmaxCrossEntropy);
    EXPECT_FALSE(stats.skipped) << stats.step;
    EXPECT_EQ(stats.refresh_failures, 0) << stats.step;
    std::vector<at::Tensor> grads;
    for (const auto& param : net->parameters()) {
      EXPECT_EQ(param.grad().device(), param.device());
      EXPECT_EQ(param.grad().scalar_type(), param.scalar_type());
      grads.push_back(param.grad().detach().to(torch::kCPU, torch::kDouble, /*non_blocking=*/false, /*copy=*/true));
    }
    out.push_back(std::move(grads));
  }
  return out;
}

// `make` built twice from one seed: on the CPU in float64 (the oracle) and on CUDA in `dtype`; both run `options`.
void expect_cuda_matches_cpu(const std::function<torch::nn::Sequential()>& make, const at::Tensor& inputs,
                             int64_t classes, PreconditionerOptions options, at::ScalarType dtype) {
  options.fisher(FisherType::Empirical).damping(1e-2).refresh_period(1);
  torch::manual_seed(7);
  auto cpu = make();
  torch::manual_seed(7);
  auto gpu = make();
  cpu->to(torch::kDouble);
  gpu->to(torch::kCUDA, dtype);
  const auto x = inputs.is_floating_point() ? inputs.to(torch::kDouble) : inputs;
  const auto out = cpu->forward(x);
  const auto y = torch::randint(0, classes, out.sizes().slice(0, out.dim() - 1));
  const auto want = directions(cpu, options, x, y, 3);
  const auto got = directions(gpu, options, x.is_floating_point() ? x.to(torch::kCUDA, dtype) : x.cuda(), y.cuda(), 3);
  for (size_t s = 0; s < want.size(); ++s)
    for (size_t i = 0; i < want[s].size(); ++i) {
      const double scale = std::max(want[s][i].abs().max().item<double>(), 1e-12);
      EXPECT_LE(max_abs_diff(got[s][i], want[s][i]) / scale, tolerance(dtype))
          << "step " << s << ", parameter " << i << ", " << c10::toString(dtype);
    }
}

class CudaLayerKinds : public ::testing::TestWithParam<std::tuple<std::string, std::string>> {};

TEST_P(CudaLayerKinds, EveryMethodMatchesCpuFloat64) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const auto& [kind, method] = GetParam();
  const auto& e = layer_examples().at(kind);
  torch::manual_seed(3);
  const auto x = e.inputs();
  for (auto dtype : {at::kDouble, at::kFloat})
    expect_cuda_matches_cpu(e.model, x, e.classes, options_for_spec(method), dtype);
  if (kind == "Linear")  // sequence inputs: the reduce approximation too
    expect_cuda_matches_cpu(e.model, x, e.classes, options_for_spec(method).weight_sharing(WeightSharing::Reduce),
                            at::kFloat);
}

std::vector<std::tuple<std::string, std::string>> kinds_and_methods() {
  std::vector<std::tuple<std::string, std::string>> out;
  for (const auto& kind : registered_layer_kinds())
    for (const auto& method : every_method()) out.emplace_back(kind, method);
  return out;
}

INSTANTIATE_TEST_SUITE_P(Registered, CudaLayerKinds, ::testing::ValuesIn(kinds_and_methods()), [](const auto& info) {
  return std::get<0>(info.param) + "_" + spec_test_name(std::get<1>(info.param));
});

class CudaGlobalStages : public ::testing::TestWithParam<std::string> {};

TEST_P(CudaGlobalStages, MatchCpuFloat64) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  torch::manual_seed(5);
  const auto x = torch::randn({6, 2, 5, 5});
  for (auto dtype : {at::kDouble, at::kFloat})
    expect_cuda_matches_cpu([] { return cnn(3); }, x, 3, options_for_spec(GetParam()), dtype);
}

INSTANTIATE_TEST_SUITE_P(Registered, CudaGlobalStages, ::testing::ValuesIn(every_global_stage()),
                         [](const auto& info) { return spec_test_name(info.param); });

TEST(Cuda, AttentionMatchesCpuFloat64) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  torch::manual_seed(9);
  const auto x = torch::randn({3, 4, 8});
  for (const auto& method : every_method())
    for (auto dtype : {at::kDouble, at::kFloat})
      expect_cuda_matches_cpu([] { return self_attention_model(8, 2); }, x, 8, options_for_spec(method), dtype);
}

TEST(Cuda, FallbackParametersMatchCpuFloat64) {  // the token model's positional parameter has no K-FAC block
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  torch::manual_seed(11);
  const auto ids = torch::randint(0, 7, {4, 5});
  for (auto dtype : {at::kDouble, at::kFloat})
    expect_cuda_matches_cpu(token_model, ids, 3, PreconditionerOptions(), dtype);
}

// Three layers of A 7 x G 6: on CUDA their refreshes after the first refine the bases as one batch (batched.h).
TEST(Cuda, RefinedEigenbasesOfSameShapedLayersMatchCpuFloat64) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  torch::manual_seed(12);
  const auto x = torch::randn({16, 6});
  const std::vector<PreconditionerOptions> setups{
      PreconditionerOptions().method("ekfac").eigenbasis_iterations(1),
      PreconditionerOptions().method("tekfac").eigenbasis_iterations(2),
      PreconditionerOptions().damping_mode(DampingMode::Eigen).eigenbasis_iterations(1)};
  for (const auto& options : setups)
    for (auto dtype : {at::kDouble, at::kFloat})
      expect_cuda_matches_cpu([] { return mlp({6, 6, 6, 6, 3}); }, x, 3, options, dtype);
}

TEST(Cuda, BFloat16ModelWithFloat32FactorsMatchesCpuFloat64) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  torch::manual_seed(13);
  const auto x = torch::randn({6, 2, 5, 5});
  for (const auto& method : every_method())
    expect_cuda_matches_cpu([] { return cnn(3); }, x, 3, options_for_spec(method), at::kBFloat16);
}

TEST(Cuda, CheckpointMovesBetweenDevices) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  torch::manual_seed(17);
  auto gpu = cnn(3);
  gpu->to(torch::kCUDA, torch::kFloat);
  const auto x = torch::randn({6, 2, 5, 5}).cuda();
  const auto y = torch::randint(0, 3, {6}).cuda();
  for (const auto& method : every_method()) {
    const auto options = PreconditionerOptions().method(method).damping_mode(DampingMode::Eigen);
    Preconditioner saved(*gpu, options);
    stats_and_step(saved, gpu, x, y, LossKind::SoftmaxCrossEntropy);
    std::stringstream on_gpu;
    torch::save(saved, on_gpu);
    // Loaded on the CPU: the same blocks, on the CPU.
    auto cpu = cnn(3);
    cpu->to(torch::kFloat);
    Preconditioner on_cpu(*cpu, options);
    torch::load(on_cpu, on_gpu);
    // And back onto CUDA from the CPU's checkpoint.
    std::stringstream from_cpu;
    torch::save(on_cpu, from_cpu);
    Preconditioner back(*gpu, options);
    torch::load(back, from_cpu);
    for (size_t i = 0; i < saved.layers().size(); ++i) {
      const auto dense = saved.curvature(i).to_dense();
      ASSERT_TRUE(on_cpu.curvature(i).to_dense().device().is_cpu()) << method;
      ASSERT_TRUE(back.curvature(i).to_dense().is_cuda()) << method;
      EXPECT_TRUE(torch::equal(on_cpu.curvature(i).to_dense(), dense.cpu())) << method << " " << i;
      EXPECT_TRUE(torch::equal(back.curvature(i).to_dense(), dense)) << method << " " << i;
    }
  }
}

TEST(Cuda, SolverFailuresGoThroughTheDecompositionPolicy) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  // cuSOLVER's Cholesky on an indefinite matrix fails in float32 and in the float64 retry: a NumericalError.
  const auto indefinite = -torch::eye(4, torch::TensorOptions().device(torch::kCUDA).dtype(torch::kFloat));
  EXPECT_THROW(linalg::cholesky_inverse_psd(indefinite, 0.0, "factor"), NumericalError);
  // A non-finite factor is refused before cuSOLVER sees it.
  auto nan = torch::eye(4, indefinite.options());
  nan[1][2] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROW(linalg::eigh_psd(nan, "factor"), NumericalError);
  // A failed refresh keeps the previous decomposition and is counted, as on the CPU.
  torch::manual_seed(19);
  auto net = cnn(3);
  net->to(torch::kCUDA, torch::kFloat);
  const auto x = torch::randn({6, 2, 5, 5}).cuda();
  const auto y = torch::randint(0, 3, {6}).cuda();
  Preconditioner p(*net, PreconditionerOptions().refresh_period(1));
  EXPECT_EQ(stats_and_step(p, net, x, y, LossKind::SoftmaxCrossEntropy).refresh_failures, 0);
  linalg::testing::inject_decomposition_failures(2);  // the first block, in float32 and in the float64 retry
  const auto failed = stats_and_step(p, net, x, y, LossKind::SoftmaxCrossEntropy);
  EXPECT_EQ(failed.refresh_failures, 1);
  EXPECT_FALSE(failed.skipped);
  for (const auto& param : net->parameters()) EXPECT_TRUE(at::isfinite(param.grad()).all().item<bool>());
}

}  // namespace
}  // namespace kfac::test
