// Data-parallel training over c10d (Gloo on 127.0.0.1, ranks as threads sharing an in-memory store): the ranks
// together must reproduce one process on the concatenated batch, for every method, a two-level method and every
// gradient-worker fraction; the owner assignment must be balanced and deterministic; a rank that stops answering must
// make the others fail within the timeout; and checkpoints must resume on another number of ranks.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <sstream>
#include <thread>

#include "distributed/assignment.h"
#include "kfac/distributed/collectives.h"
#include "kfac/kfac.h"
#include "support/helpers.h"
#include "support/method_lists.h"
#include "support/tiny_models.h"

namespace kfac::test {
namespace {

// Runs fn(rank, communicator) on `ranks` threads joined through one in-memory store; rethrows the first error.
void run_ranks(int ranks, const std::function<void(int, std::shared_ptr<Communicator>)>& fn,
               std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
  static std::atomic<int> group{0};
  const std::string store = "test-group-" + std::to_string(group++);
  std::vector<std::thread> threads;
  std::vector<std::exception_ptr> errors(static_cast<size_t>(ranks));
  for (int r = 0; r < ranks; ++r)
    threads.emplace_back([&, r] {
      try {
        ProcessGroupOptions o;
        o.rank = r, o.world_size = ranks, o.in_process_store = store, o.timeout = timeout;
        fn(r, connect(o));
      } catch (...) {
        errors[static_cast<size_t>(r)] = std::current_exception();
      }
    });
  for (auto& t : threads) t.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

// Multi-rank tests need c10d process groups (present unless the Gloo headers were missing at build time).
class Distributed : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!multi_process_available()) GTEST_SKIP() << "built without c10d process groups";
  }
};

TEST(Assignment, DeterministicAndWithinTheLptBoundOfTheOptimum) {
  const std::vector<double> costs{9, 7, 6, 5, 5, 4, 2};
  for (int ranks = 1; ranks <= 4; ++ranks) {
    const auto owners = assign_owners(costs, ranks);
    EXPECT_EQ(owners, assign_owners(costs, ranks));
    auto makespan = [&](const std::vector<int>& o) {
      std::vector<double> load(static_cast<size_t>(ranks), 0.0);
      for (size_t i = 0; i < o.size(); ++i) load[static_cast<size_t>(o[i])] += costs[i];
      return *std::max_element(load.begin(), load.end());
    };
    double best = 1e300;  // brute force over every assignment
    std::vector<int> a(costs.size(), 0);
    while (true) {
      best = std::min(best, makespan(a));
      size_t k = 0;
      while (k < a.size() && ++a[k] == ranks) a[k++] = 0;
      if (k == a.size()) break;
    }
    EXPECT_LE(makespan(owners), (4.0 / 3.0 - 1.0 / (3.0 * ranks)) * best + 1e-12) << ranks << " ranks";
  }
}

TEST(Assignment, MoreRanksThanLayersGivesEachLayerItsOwnRank) {
  const auto owners = assign_owners({1, 3, 2}, 5);
  EXPECT_EQ(owners, (std::vector<int>{2, 0, 1}));
  EXPECT_EQ(gradient_workers(4, 5, 0.4), (std::vector<int>{4, 0}));
  EXPECT_EQ(gradient_workers(1, 5, 0.01), (std::vector<int>{1}));
  EXPECT_THROW(gradient_workers(0, 2, 0.0), c10::Error);
}

TEST_F(Distributed, CollectivesMeanTrianglesAndBroadcastUnknownShapes) {
  run_ranks(3, [](int rank, std::shared_ptr<Communicator> comm) {
    auto v = torch::full({5}, static_cast<double>(rank), torch::kDouble);
    auto m = torch::full({2, 3}, static_cast<double>(rank * rank), torch::kFloat);
    all_reduce_mean(*comm, {v, m}, /*bucket_bytes=*/16);  // several buckets
    EXPECT_TRUE(torch::allclose(v, torch::full({5}, 1.0, torch::kDouble)));
    EXPECT_TRUE(torch::allclose(m, torch::full({2, 3}, 5.0 / 3.0, torch::kFloat)));
    auto s = torch::ones({3, 3}, torch::kDouble) * rank;
    s.fill_diagonal_(10.0 * rank);
    const auto before = comm->bytes();
    all_reduce_symmetric_mean(*comm, {s});
    EXPECT_EQ(comm->bytes() - before, 6 * 8) << "only the upper triangle is sent";
    auto expected = torch::ones({3, 3}, torch::kDouble);
    expected.fill_diagonal_(10.0);
    EXPECT_TRUE(torch::allclose(s, expected));
    std::vector<at::Tensor> t(3);
    if (rank == 1) t = {torch::arange(6, torch::kDouble).view({2, 3}), at::Tensor(), torch::ones({4}, torch::kDouble)};
    broadcast_tensors(*comm, t, 1, torch::kDouble);
    ASSERT_TRUE(t[0].defined() && t[2].defined());
    EXPECT_FALSE(t[1].defined());
    EXPECT_TRUE(torch::equal(t[0], torch::arange(6, torch::kDouble).view({2, 3})));
    EXPECT_EQ(t[2].sizes(), (std::vector<int64_t>{4}));
  });
}

// Trains copies of one tiny network: `ranks` data-parallel ranks on shards of each batch, and returns rank 0's
// parameters (all ranks must agree). ranks = 1 is the single process on the whole batch.
struct Training {
  std::string method = "kfac";
  std::string stage = "none";  ///< a global stage as METHOD+STAGE spells it ("nicolaides", "block-tridiagonal")
  double fraction = 1.0;
  bool conv = false;
  int steps = 4;
  bool tokens = false;  ///< token_model() with a softmax per position, adam fallback, the given weight sharing
  WeightSharing sharing = WeightSharing::Expand;
};

std::vector<at::Tensor> train(const Training& run, int ranks, const std::string& checkpoint_in = "",
                              std::string* checkpoint_out = nullptr, int save_after = -1) {
  torch::manual_seed(123);
  auto make = [&] { return run.tokens ? token_model() : run.conv ? cnn(3) : mlp({3, 5, 4, 2}); };
  auto base = make();
  const int64_t batch = 12;
  const auto x = run.tokens ? torch::randint(7, {batch, 5})
                 : run.conv ? torch::randn({batch, 2, 5, 5}, torch::kDouble)
                            : torch::randn({batch, 3}, torch::kDouble);
  const auto loss = run.conv || run.tokens ? LossKind::SoftmaxCrossEntropy : LossKind::SigmoidCrossEntropy;
  const auto y = run.tokens ? torch::randint(3, {batch, 5})
                 : run.conv ? torch::randint(3, {batch}, torch::kLong)
                            : torch::randint(2, {batch, 2}).to(torch::kDouble);
  std::vector<torch::nn::Sequential> models;
  for (int r = 0; r < ranks; ++r) {
    auto m = make();
    torch::NoGradGuard g;
    for (size_t i = 0; i < m->parameters().size(); ++i) m->parameters()[i].copy_(base->parameters()[i]);
    models.push_back(m);
  }
  std::vector<std::vector<at::Tensor>> result(static_cast<size_t>(ranks));
  run_ranks(ranks, [&](int rank, std::shared_ptr<Communicator> comm) {
    auto& model = models[static_cast<size_t>(rank)];
    auto options = PreconditionerOptions()
                       .method(run.method)
                       .fisher(FisherType::Exact)
                       .damping(1e-2)
                       .refresh_period(2)
                       .grad_worker_fraction(run.fraction)
                       .weight_sharing(run.sharing)
                       .fallback(run.tokens ? FallbackKind::Adam : FallbackKind::Identity);
    apply_global_stage_spelling(run.stage, options.global_options().global_stage(), options.own_blocks());
    auto pre = std::make_shared<Preconditioner>(*model, options, comm);
    KfacOptimizer opt(model->parameters(), pre, KfacOptimizerOptions(0.2).momentum(0.5).kl_clip(1e-2));
    if (!checkpoint_in.empty()) {
      std::stringstream in(checkpoint_in);
      torch::serialize::InputArchive archive;
      archive.load_from(in);
      opt.load(archive);
      torch::serialize::InputArchive params;
      archive.read("model", params);
      model->load(params);
    }
    const int64_t shard = batch / ranks;
    const auto xs = x.narrow(0, rank * shard, shard), ys = y.narrow(0, rank * shard, shard);
    for (int step = 0; step < run.steps; ++step) {
      opt.zero_grad();
      pre->update_statistics([&](const at::Tensor& in) { return model->forward(in); }, xs, loss, ys);
      kfac::loss(model->forward(xs), ys, loss).backward();
      opt.step();
      EXPECT_TRUE(opt.last_stats().messages.empty()) << opt.last_stats().messages.front();
      if (step == save_after) pre->synchronize_statistics();  // collective, before rank 0 saves
      if (step == save_after && rank == 0 && checkpoint_out) {
        torch::serialize::OutputArchive archive;
        opt.save(archive);
        torch::serialize::OutputArchive params;
        model->save(params);
        archive.write("model", params);
        std::stringstream out;
        archive.save_to(out);
        *checkpoint_out = out.str();
      }
    }
    for (const auto& p : model->parameters()) result[static_cast<size_t>(rank)].push_back(p.detach().clone());
  });
  for (int r = 1; r < ranks; ++r)
    for (size_t i = 0; i < result[0].size(); ++i)
      EXPECT_TRUE(torch::equal(result[0][i], result[static_cast<size_t>(r)][i])) << "rank " << r << " differs";
  return result[0];
}

double max_difference(const std::vector<at::Tensor>& a, const std::vector<at::Tensor>& b) {
  double d = 0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, (a[i] - b[i]).abs().max().item<double>());
  return d;
}

class RanksEqualOneProcess : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (!multi_process_available()) GTEST_SKIP() << "built without c10d process groups";
  }
};

TEST_P(RanksEqualOneProcess, TwoAndThreeRanks) {
  Training run;
  const auto spec = GetParam();
  run.method = spec.substr(0, spec.find('+'));
  if (spec.find('+') != std::string::npos) run.stage = spec.substr(spec.find('+') + 1);
  for (bool conv : {false, true}) {
    if (conv && run.stage == "block-tridiagonal") continue;
    run.conv = conv;
    const auto one = train(run, 1);
    const auto before = train(Training{run.method, run.stage, 1.0, conv, 0}, 1);
    EXPECT_GT(max_difference(one, before), 1e-3) << "training must move the parameters";
    for (int ranks : {2, 3}) EXPECT_LT(max_difference(train(run, ranks), one), 1e-10) << spec << " " << ranks;
  }
}

INSTANTIATE_TEST_SUITE_P(Methods, RanksEqualOneProcess, ::testing::ValuesIn(every_method_and_stage()),
                         [](const auto& info) { return spec_test_name(info.param); });

// Embedding, LayerNorm and sequence Linear blocks and the adam fallback: the ranks' averaged statistics (token
// frequencies, scale-and-shift blocks, EKFAC's [d, V] spectrum) equal one process's.
TEST_F(Distributed, TransformerKindsEqualOneProcess) {
  for (const char* method : {"kfac", "ekfac"})
    for (const auto sharing : {WeightSharing::Expand, WeightSharing::Reduce}) {
      Training run;
      run.method = method, run.tokens = true, run.sharing = sharing;
      const auto one = train(run, 1);
      Training still = run;
      still.steps = 0;
      EXPECT_GT(max_difference(one, train(still, 1)), 1e-3) << "training must move the parameters";
      for (int ranks : {2, 3})
        EXPECT_LT(max_difference(train(run, ranks), one), 1e-10) << method << " " << to_string(sharing) << " " << ranks;
    }
}

// The quadratic-model step rule: losses, gradients and curvature terms averaged over ranks.
std::vector<at::Tensor> train_qmodel(int ranks) {
  torch::manual_seed(321);
  const int64_t batch = 12;
  const auto x = torch::randn({batch, 3}, torch::kDouble);
  const auto y = torch::randn({batch, 2}, torch::kDouble);
  auto base = mlp({3, 5, 2});
  std::vector<torch::nn::Sequential> models;
  for (int r = 0; r < ranks; ++r) {
    auto m = mlp({3, 5, 2});
    torch::NoGradGuard g;
    for (size_t i = 0; i < m->parameters().size(); ++i) m->parameters()[i].copy_(base->parameters()[i]);
    models.push_back(m);
  }
  std::vector<at::Tensor> out;
  run_ranks(ranks, [&](int rank, std::shared_ptr<Communicator> comm) {
    auto& model = models[static_cast<size_t>(rank)];
    auto pre = std::make_shared<Preconditioner>(*model,
                                                PreconditionerOptions().fisher(FisherType::Exact).refresh_period(2),
                                                comm);
    QModelOptimizer opt(pre, QModelOptions().gamma_period(2));
    const int64_t shard = batch / ranks;
    const auto xs = x.narrow(0, rank * shard, shard), ys = y.narrow(0, rank * shard, shard);
    for (int step = 0; step < 4; ++step) {
      model->zero_grad();
      pre->update_statistics([&](const at::Tensor& in) { return model->forward(in); }, xs, LossKind::SquaredError);
      auto output = model->forward(xs);
      auto loss = kfac::loss(output, ys, LossKind::SquaredError);
      loss.backward({}, /*retain_graph=*/true);
      opt.step(output, LossKind::SquaredError, loss.item<double>(), [&] {
        torch::NoGradGuard g;
        return kfac::loss(model->forward(xs), ys, LossKind::SquaredError).item<double>();
      });
    }
    if (rank == 0)
      for (const auto& p : model->parameters()) out.push_back(p.detach().clone());
  });
  return out;
}

TEST_F(Distributed, QuadraticModelStepRuleEqualsOneProcess) {
  const auto one = train_qmodel(1);
  EXPECT_LT(max_difference(train_qmodel(2), one), 1e-10);
  EXPECT_LT(max_difference(train_qmodel(3), one), 1e-10);
}

TEST_F(Distributed, EveryGradientWorkerFractionGivesTheSameParameters) {
  Training run;
  run.conv = true;
  const auto one = train(run, 1);
  for (double fraction : {1.0 / 3.0, 2.0 / 3.0}) {
    run.fraction = fraction;
    EXPECT_LT(max_difference(train(run, 3), one), 1e-10) << fraction;
  }
}

TEST_F(Distributed, CheckpointResumesOnAnotherNumberOfRanks) {
  Training run;
  run.method = "ekfac";
  const auto uninterrupted = train(run, 1);
  std::string checkpoint;
  Training first = run;
  first.steps = 2;
  train(first, 2, "", &checkpoint, /*save_after=*/1);
  ASSERT_FALSE(checkpoint.empty());
  Training rest = run;
  rest.steps = 2;
  // The resumed run replays the batches of steps 2 and 3 (the same batch here) on three ranks.
  EXPECT_LT(max_difference(train(rest, 3, checkpoint), uninterrupted), 1e-10);
}

TEST_F(Distributed, ARankThatStopsAnsweringMakesTheOthersFailWithinTheTimeout) {
  const auto start = std::chrono::steady_clock::now();
  std::string error;
  try {
    run_ranks(
        2,
        [](int rank, std::shared_ptr<Communicator> comm) {
          std::vector<at::Tensor> t{torch::ones({4})};
          comm->all_reduce_sum(t);  // both ranks answer once
          if (rank == 1) {
            std::this_thread::sleep_for(std::chrono::seconds(4));  // then rank 1 hangs past the timeout
            return;
          }
          comm->all_reduce_sum(t);
        },
        std::chrono::seconds(1));
  } catch (const c10::Error& e) {
    error = e.what();
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_THAT(error, ::testing::HasSubstr("distributed all_reduce failed on rank 0 of 2"));
  EXPECT_LT(seconds, 4.0 + 3.0);  // the error came from the timeout, and the whole test did not hang
}

TEST_F(Distributed, OptionErrorsNameTheProblem) {
  EXPECT_THROW(train(Training{"kfac", "nicolaides", 0.5, false, 1}, 2), c10::Error);
  ProcessGroupOptions o;
  o.rank = 3, o.world_size = 2;
  EXPECT_THROW(connect(o), c10::Error);
  std::string background_error;
  run_ranks(2, [&](int rank, std::shared_ptr<Communicator> comm) {
    auto model = mlp({3, 2});
    try {
      Preconditioner p(*model, PreconditionerOptions().background_refresh(true), comm);
    } catch (const c10::Error& e) {
      if (rank == 0) background_error = e.what_without_backtrace();
    }
    comm->barrier();  // a rank that failed at once must not close its connections while the other still joins
  });
  EXPECT_THAT(background_error, ::testing::HasSubstr("background_refresh is not supported in distributed runs"));
}

}  // namespace
}  // namespace kfac::test
