// Embedding blocks: equal to the K-FAC block of the equivalent one-hot linear layer (with the reduce factor's
// diagonal), exact where K-FAC is, and linear in the vocabulary in memory.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <sstream>

#include "kfac/fisher/dense_fisher.h"
#include "kfac/kfac.h"
#include "support/helpers.h"

namespace kfac::test {
namespace {

constexpr int64_t kVocabulary = 6;

// ids [B, T] → embedding (or one-hot → Linear without bias, the same map) → Linear → [B, T, 2] or pooled [B, 2].
struct TokenNetImpl : torch::nn::Module {
  TokenNetImpl(bool one_hot, bool pool) : one_hot(one_hot), pool(pool) {
    if (one_hot)
      register_module("lookup", lookup);
    else
      register_module("embed", embed);
    register_module("head", head);
    torch::NoGradGuard no_grad;
    lookup->weight.copy_(embed->weight.t());
  }
  torch::Tensor forward(const torch::Tensor& ids) {
    const auto h = one_hot ? lookup(torch::one_hot(ids, kVocabulary).to(lookup->weight.dtype())) : embed(ids);
    const auto z = head(h);
    return pool ? z.mean(1) : z;
  }
  bool one_hot, pool;
  kfac::nn::Embedding embed{kVocabulary, 3};
  kfac::nn::Linear lookup{torch::nn::LinearOptions(kVocabulary, 3).bias(false)}, head{3, 2};
};
TORCH_MODULE(TokenNet);

struct TokenRun {
  TokenNet net{nullptr};
  std::unique_ptr<Preconditioner> precond;
  DenseFisher exact;
};

TokenRun run(bool one_hot, bool pool, PreconditionerOptions options, int steps = 1) {
  torch::manual_seed(51);
  TokenRun r{TokenNet(one_hot, pool), nullptr, {}};
  r.net->to(torch::kDouble);
  const auto ids = torch::randint(0, kVocabulary - 1, {5, 4});  // the last token never occurs
  r.precond = std::make_unique<Preconditioner>(*r.net,
                                               options.fisher(FisherType::Exact).ema_decay(0).refresh_period(100));
  auto forward = [&](const at::Tensor& in) { return r.net->forward(in); };
  for (int s = 0; s < steps; ++s) {
    r.precond->update_statistics(forward, ids, LossKind::SquaredError);
    r.net->zero_grad();
    const auto z = r.net->forward(ids);
    kfac::loss(z, torch::zeros_like(z), LossKind::SquaredError).backward();
    r.precond->step();
  }
  r.exact = exact_fisher(forward, r.precond->layers(), ids, LossKind::SquaredError, true);
  return r;
}

double relative(const at::Tensor& a, const at::Tensor& b) { return max_abs_diff(a, b) / b.abs().max().item<double>(); }

TEST(Embedding, EqualsTheOneHotLinearLayerWithTheReduceFactorsDiagonal) {
  for (const auto sharing : {WeightSharing::Expand, WeightSharing::Reduce}) {
    const auto options = PreconditionerOptions().weight_sharing(sharing);
    const auto embedding = run(false, sharing == WeightSharing::Reduce, options);
    const auto linear = run(true, sharing == WeightSharing::Reduce, options);
    const auto& c = dynamic_cast<const KfacCurvature&>(linear.precond->curvature(0));
    // One-hot rows: A is diagonal under expand; under reduce the Embedding keeps its diagonal.
    const auto expected = at::kron(at::diag(at::diag(c.factor_a())), c.factor_g()) * static_cast<double>(c.locations());
    EXPECT_LT(relative(embedding.precond->curvature(0).to_dense(), expected), 1e-12) << to_string(sharing);
    EXPECT_LT(relative(embedding.precond->curvature(1).to_dense(), linear.precond->curvature(1).to_dense()), 1e-12);
    // The same preconditioned gradient for the same gradient matrix (factored damping, π from the traces).
    const auto v = torch::randn({3, kVocabulary}, torch::kDouble);
    if (sharing == WeightSharing::Expand) {
      EXPECT_LT(relative(embedding.precond->curvature(0).precondition(v, 0.1), c.precondition(v, 0.1)), 1e-10);
    }
  }
}

TEST(Embedding, KfacAndEkfacAreExactWhereKfacIs) {
  // Expand setting (a loss term per position) on a network linear after the lookup.
  for (const char* method : {"kfac", "ekfac"})
    for (int steps : {1, 2}) {  // the second step updates EKFAC's spectrum from the per-example gradients
      const auto r = run(false, false, PreconditionerOptions().method(method).damping_mode(DampingMode::Eigen), steps);
      EXPECT_LT(relative(r.precond->curvature(0).to_dense(), r.exact.block(0)), 1e-9) << method << " " << steps;
      // Eigen damping: (F + λI)⁻¹ exactly.
      const auto v = torch::randn({3, kVocabulary}, torch::kDouble);
      const auto dense = r.exact.block(0) + 0.1 * torch::eye(3 * kVocabulary, torch::kDouble);
      const auto want = unvec(torch::linalg_solve(dense, vec(v).unsqueeze(1)).squeeze(1), 3, kVocabulary);
      EXPECT_LT(relative(r.precond->curvature(0).precondition(v, 0.1), want), 1e-8) << method;
    }
}

TEST(Embedding, CheckpointRoundTrip) {
  for (const char* method : {"kfac", "ekfac"}) {
    const auto options = PreconditionerOptions().method(method).weight_sharing(WeightSharing::Reduce);
    const auto r = run(false, true, options, 2);
    std::stringstream bytes;
    torch::save(*r.precond, bytes);
    auto q = run(false, true, options, 1);
    torch::load(*q.precond, bytes);
    const auto v = torch::randn({3, kVocabulary}, torch::kDouble);
    EXPECT_TRUE(torch::equal(q.precond->curvature(0).to_dense(), r.precond->curvature(0).to_dense())) << method;
    EXPECT_TRUE(torch::equal(q.precond->curvature(0).precondition(v, 0.1),
                             r.precond->curvature(0).precondition(v, 0.1)))
        << method;
  }
}

TEST(Embedding, TokenIdsOutsideTheVocabularyAreRefusedByName) {
  const auto r = run(false, false, PreconditionerOptions());
  auto twin = r.precond->curvature(0).make_twin();
  const auto g = torch::randn({1, 2, 4, 3}, torch::kDouble);
  for (const int64_t bad : {kVocabulary, int64_t{-1}}) {
    auto ids = torch::randint(0, kVocabulary, {2, 4, 1});
    ids[1][2][0] = bad;
    try {
      twin->update(LayerStatistics{ids, g}, 0.5);
      FAIL() << bad;
    } catch (const c10::Error& e) {
      EXPECT_NE(std::string(e.what()).find("layer 'embed': token ids must be in [0, 6)"), std::string::npos)
          << e.what();
    }
  }
  twin->update(LayerStatistics{torch::randint(0, kVocabulary, {2, 4, 1}), g}, 0.5);  // in range: accepted
  EXPECT_TRUE(twin->has_statistics());
}

TEST(Embedding, MemoryIsLinearInTheVocabulary) {
  static constexpr int64_t vocabulary = 50000, dim = 16;
  struct NetImpl : torch::nn::Module {
    NetImpl() { register_module("embed", embed), register_module("head", head); }
    torch::Tensor forward(const torch::Tensor& ids) { return head(embed(ids)); }
    kfac::nn::Embedding embed{vocabulary, dim};
    kfac::nn::Linear head{dim, 3};
  };
  for (const char* method : {"kfac", "ekfac"}) {
    auto net = std::make_shared<NetImpl>();
    Preconditioner p(*net, PreconditionerOptions().method(method));
    const auto ids = torch::randint(0, vocabulary, {4, 8});
    p.update_statistics([&](const at::Tensor& in) { return net->forward(in); }, ids, LossKind::SoftmaxCrossEntropy);
    net->zero_grad();
    kfac::loss(net->forward(ids).select(1, 0), torch::zeros({4}, torch::kLong), LossKind::SoftmaxCrossEntropy)
        .backward();
    const auto stats = p.step();
    EXPECT_TRUE(std::isfinite(stats.grad_dot_direction));
    // kfac: A and its inverse as vectors, G and its inverse; ekfac: A, G, G's eigenpairs and the [d, V] spectrum.
    const int64_t floats = std::string(method) == "kfac" ? 2 * vocabulary + 2 * dim * dim
                                                         : vocabulary + 2 * dim * dim + dim + dim * vocabulary;
    EXPECT_EQ(p.curvature(0).memory_bytes(), floats * 4) << method;
  }
}

TEST(Embedding, RefusesTheTraceRestrictedMethodsAndTheGlobalStage) {
  for (const char* method : {"tkfac", "tekfac"}) {
    try {
      run(false, false, PreconditionerOptions().method(method));
      FAIL() << method;
    } catch (const c10::Error& e) {
      EXPECT_NE(std::string(e.what()).find("an Embedding block supports the methods kfac and ekfac"), std::string::npos)
          << e.what();
    }
  }
  EXPECT_THROW(run(false, false, PreconditionerOptions().global_stage("two-level")), c10::Error);
}

}  // namespace
}  // namespace kfac::test
