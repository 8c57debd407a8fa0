#include "train.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <limits>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <tuple>

#include <unistd.h>

#include "baselines.h"
#include "data.h"
#include "kfac/curvature/registry.h"
#include "kfac/distributed/collectives.h"
#include "kfac/kfac.h"
#include "kfac/util/enum_names.h"
#include "util/text.h"
#include "lr_schedule.h"
#include "models.h"
#include "progress.h"
#include "run_checkpoint.h"
#include "run_optimizer.h"
#include "step_profile.h"

namespace kfac::tool {

PreconditionerOptions with_method(PreconditionerOptions options, const std::string& spec) {
  std::vector<std::string> parts;
  for (size_t start = 0, plus = 0; plus != std::string::npos; start = plus + 1) {
    plus = spec.find('+', start);
    parts.push_back(spec.substr(start, plus == std::string::npos ? plus : plus - start));
  }
  if (!is_registered_method(parts[0])) {
    auto valid = baseline_names();
    for (const auto& m : registered_methods()) valid.push_back(m);
    const auto close = closest_spelling(parts[0], valid);
    KFAC_CHECK(false, "unknown method '", spec, "'; valid methods: ", join(valid),
               " (a curvature method may add a global stage: METHOD+SPACE)",
               close.empty() ? "" : "; did you mean '" + close + "'?");
  }
  options.method(parts[0]);
  auto stage = options.global_stage();
  if (parts.size() > 1) apply_global_stage_spelling(parts[1], stage, options.own_blocks());
  for (size_t i = 2; i < parts.size(); ++i) {
    KFAC_CHECK(parts[i] == "krylov", "method spec '", spec, "': unknown part '", parts[i],
               "'; the form is METHOD, "
               "METHOD+SPACE or METHOD+SPACE+krylov");
    options.with(TwoLevelOptions(options.get<TwoLevelOptions>()).krylov(true));
  }
  return options.global_stage(stage);
}

double default_lr(const std::string& method, const std::string& model) { return model == "autoencoder" ? 0.1 : 0.05; }

double default_momentum(const std::string& method) { return 0.5; }
double default_kl_clip(const std::string& model) { return model == "autoencoder" ? 0.1 : 0.01; }

int64_t grown_batch_size(int64_t step, int64_t initial, int64_t dataset) {
  const double f = std::min(static_cast<double>(step) / 499.0, 1.0);
  const auto m = static_cast<int64_t>(initial * std::pow(static_cast<double>(dataset) / initial, f));
  return std::min(dataset, std::max(initial, m / 50 * 50));
}

namespace {

// Deterministic minibatches: a stream through permutations of the data set, the e-th drawn from a generator
// seeded with (seed, e); a batch that would cross the end starts the next permutation.
class Batches {
 public:
  Batches(int64_t n, uint64_t seed) : n_(n), seed_(seed) {}
  at::Tensor next(int64_t size) {
    size = std::min(size, n_);
    if (!perm_.defined() || pos_ + size > n_) {
      auto gen = at::make_generator<at::CPUGeneratorImpl>(seed_ * 1000003ULL + static_cast<uint64_t>(++epoch_));
      perm_ = at::randperm(n_, gen, at::kLong);
      pos_ = 0;
    }
    pos_ += size;
    return perm_.narrow(0, pos_ - size, size);
  }

 private:
  int64_t n_;
  uint64_t seed_;
  int64_t epoch_ = -1, pos_ = 0;
  at::Tensor perm_;
};

// Resizes 28x28 images to the model's input side (the FACES architecture takes 25x25).
Dataset fit_images(Dataset d, int64_t side) {
  KFAC_CHECK((side == 0) == (d.images.scalar_type() == at::kLong),
             side == 0 ? "this model trains on text: use --dataset kjv (or --data-path with a text file)"
                       : "this model takes images; the text dataset kjv is for --model char-lm");
  if (side == 0 || d.images.size(1) == side * side) return d;
  const int64_t from = static_cast<int64_t>(std::lround(std::sqrt(static_cast<double>(d.images.size(1)))));
  KFAC_CHECK(from * from == d.images.size(1), "images of ", d.images.size(1), " pixels are not square");
  auto x = at::upsample_bilinear2d(d.images.reshape({-1, 1, from, from}), {side, side}, false);
  d.images = x.reshape({d.images.size(0), side * side}).clamp(0, 1);
  return d;
}

at::Tensor targets_of(const Model& m, const Dataset& d, const at::Tensor& idx) {
  return m.reconstructs_input ? d.images.index_select(0, idx) : d.labels.index_select(0, idx);
}

// Mean loss (and, for autoencoders, mean squared reconstruction error) over the first `examples` examples.
std::pair<double, double> evaluate(Model& m, const Dataset& d, int64_t examples, const torch::Device& device) {
  torch::NoGradGuard no_grad;
  const int64_t n = std::min(examples, d.size());
  double total = 0, squared = 0;
  for (int64_t start = 0; start < n; start += 1000) {
    const int64_t len = std::min<int64_t>(1000, n - start);
    auto idx = at::arange(start, start + len, at::kLong);
    auto x = d.images.index_select(0, idx).to(device);
    auto out = m.net->forward(x);
    total += kfac::loss(out, targets_of(m, d, idx).to(device), m.loss).item<double>() * len;
    if (m.reconstructs_input) squared += (torch::sigmoid(out) - x).pow(2).sum().item<double>();
  }
  return {total / n, m.reconstructs_input ? squared / n : NAN};
}

std::atomic<bool> g_interrupted{false};
std::atomic<bool> g_training{false};  // inside train()'s loop, where an interrupt can be checkpointed

// Peak resident memory of this process in MiB (Linux), NaN elsewhere.
double peak_rss_mib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  return NAN;
}

// Why a run stops after `done` steps for its skipped steps ("" if it goes on): `in_a_row` consecutive ones reached
// --max-skipped-steps, or `skipped` in all exceed --max-skipped-fraction of --steps (then the run could only fail).
std::string too_many_skipped(const TrainConfig& c, int64_t done, int64_t in_a_row, int64_t skipped) {
  std::ostringstream s;
  s << "after " << done << " steps, ";
  if (c.max_skipped_steps > 0 && in_a_row >= c.max_skipped_steps)
    s << "the last " << in_a_row << " were all skipped (--max-skipped-steps " << c.max_skipped_steps << ")";
  else if (static_cast<double>(skipped) > c.max_skipped_fraction * static_cast<double>(c.steps))
    s << skipped << " of the run's " << c.steps << " steps were skipped, more than --max-skipped-fraction "
      << c.max_skipped_fraction << " allows";
  else
    return "";
  return s.str();
}

}  // namespace

// Test seam for the fault test: KFAC_TEST_KILL_RANK=r and KFAC_TEST_KILL_STEP=k make rank r die (SIGKILL) at step k.
void maybe_die_for_test(int rank, int64_t step) {
  const char* r = std::getenv("KFAC_TEST_KILL_RANK");
  const char* k = std::getenv("KFAC_TEST_KILL_STEP");
  if (r && k && std::atoi(r) == rank && std::atoll(k) == step) std::raise(SIGKILL);
}

void request_interrupt(int signal) {
  if (!g_training.load()) _exit(128 + signal);  // nothing to save yet (or any more): stop at once
  g_interrupted.store(true);
}
bool interrupted() { return g_interrupted.load(); }

TrainResult train(const TrainConfig& cfg) {
  KFAC_CHECK(!cfg.resume || !cfg.checkpoint.empty(), "--resume needs --checkpoint FILE");
  KFAC_CHECK(cfg.steps >= 1, "--steps must be >= 1, got ", cfg.steps);
  KFAC_CHECK(cfg.batch_size >= 1, "--batch-size must be >= 1, got ", cfg.batch_size);
  KFAC_CHECK(!cfg.lr || (std::isfinite(*cfg.lr) && *cfg.lr > 0), "--lr must be a finite number > 0, got ", *cfg.lr);
  KFAC_CHECK(!cfg.fallback_lr || (std::isfinite(*cfg.fallback_lr) && *cfg.fallback_lr > 0),
             "--fallback-lr must be a finite number > 0, got ", *cfg.fallback_lr);
  KFAC_CHECK(std::count(lr_schedule_names().begin(), lr_schedule_names().end(), cfg.lr_schedule) == 1,
             "unknown --lr-schedule '", cfg.lr_schedule, "'; valid: constant, cosine");
  KFAC_CHECK(cfg.warmup_steps >= 0 && cfg.warmup_steps <= cfg.steps, "--warmup-steps must be in [0, --steps ",
             cfg.steps, "], got ", cfg.warmup_steps);
  KFAC_CHECK(!cfg.momentum || (*cfg.momentum >= 0 && *cfg.momentum < 1), "--momentum must be in [0, 1), got ",
             *cfg.momentum);
  KFAC_CHECK(!cfg.kl_clip || (std::isfinite(*cfg.kl_clip) && *cfg.kl_clip >= 0),
             "--kl-clip must be a finite "
             "number >= 0, got ",
             *cfg.kl_clip);
  if (std::getenv("RANK") == nullptr || std::atoi(std::getenv("RANK")) == 0) check_checkpoint_destination(cfg);
  torch::Device device(cfg.device);
  KFAC_CHECK(!device.is_cuda() || torch::cuda::is_available(), "--device ", cfg.device,
             " requested but CUDA is not available in this LibTorch build or machine");

  TrainResult result;
  result.config = cfg;
  result.runtime = runtime::runtime_info();
  auto dist = ProcessGroupOptions::from_environment();
  dist.timeout = std::chrono::milliseconds(static_cast<int64_t>(cfg.dist_timeout_s * 1000));
  const auto comm = connect(dist);
  const int rank = comm->rank(), ranks = comm->size();
  KFAC_CHECK(ranks == 1 || (cfg.batch_size % ranks == 0 && !cfg.batch_growth), "a run on ", ranks,
             " ranks needs --batch-size divisible by the number of ranks (got ", cfg.batch_size,
             ") and no --batch-growth");
  const bool quiet = cfg.quiet || rank != 0;
  if (ranks > 1 && device.is_cuda() && !device.has_index()) {  // one GPU per local rank
    const char* local = std::getenv("LOCAL_RANK");
    const int count = static_cast<int>(torch::cuda::device_count());
    device = torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>((local ? std::atoi(local) : rank) % count));
  }
  result.world_size = ranks;

  torch::manual_seed(cfg.seed);
  Model model = make_model(cfg.model);
  KFAC_CHECK(cfg.dataset != "curves" || model.reconstructs_input,
             "the curves dataset has no labels; train an "
             "autoencoder on it (--model autoencoder, curves-autoencoder or faces-autoencoder)");
  const auto train_set = fit_images(load_dataset(cfg.dataset, cfg.data_dir, true), model.image_side);
  const auto test_set = fit_images(load_dataset(cfg.dataset, cfg.data_dir, false), model.image_side);
  // A batch beyond the data repeats examples, and one within --batch-size's range can need more memory than the
  // machine has (a billion char-lm windows): refused before anything is allocated, naming the data's size.
  KFAC_CHECK(cfg.batch_size <= train_set.size(), "--batch-size ", cfg.batch_size, " is larger than the ",
             train_set.size(), " training examples of --dataset ", cfg.dataset, "; use at most ", train_set.size());
  model.net->to(device);
  auto params = model.net->parameters();
  RunOptimizer optimizer(cfg, model, comm, result);
  auto* precond = optimizer.preconditioner();
  if (precond) {
    result.registration = precond->registration().summary();
    result.blocks = precond->registration().blocks;
    if (!quiet) std::cerr << result.registration << "\n";
  } else if (!result.registration.empty() && !quiet) {
    std::cerr << result.registration << "\n";  // Muon's parameter split
  }

  Batches batches(train_set.size(), cfg.seed);
  const auto batch_size = [&](int64_t step) {
    return cfg.batch_growth ? grown_batch_size(step, cfg.batch_size, train_set.size()) : cfg.batch_size;
  };
  RunState state;
  if (cfg.resume) {
    state = load_run(cfg.checkpoint, cfg, model.net, optimizer.optimizer(), optimizer.qmodel());
    for (int64_t s = 0; s < state.next_step; ++s) batches.next(batch_size(s));  // replay the batch stream
    // A --damping that differs from the checkpoint's takes effect now, except under the quadratic model, whose λ
    // adapts and is part of the state it resumes.
    if (precond && !optimizer.qmodel() && precond->damping() != precond->options().damping()) {
      precond->set_damping(precond->options().damping());
      precond->refresh_all();
    }
  }
  Progress progress(cfg.method + " " + cfg.model, cfg.steps, quiet);
  const double resumed_seconds = state.history.empty() ? 0.0 : state.history.back().seconds;
  const auto start = std::chrono::steady_clock::now();
  int64_t last_saved = cfg.resume ? state.next_step : -1;  // the step the checkpoint file holds (-1: none of this run)
  auto checkpoint = [&](int64_t next_step) {
    state.next_step = last_saved = next_step;
    if (precond) precond->synchronize_statistics();  // collective: the factors are averaged lazily
    if (rank != 0) return;                           // every rank holds the same state
    save_run(cfg.checkpoint, cfg, model.net, optimizer.optimizer(), optimizer.qmodel(), state);
  };
  StepProfile profile;
  int64_t skipped_in_a_row = 0;  // a resumed run counts from 0
  std::string last_skip_reason;
  bool checkpoint_due = false;
  struct TrainingScope {  // interrupts are checkpointed from here on, until the loop ends
    TrainingScope() { g_training.store(true); }
    ~TrainingScope() { g_training.store(false); }
  } training_scope;
  for (int64_t step = state.next_step; step < cfg.steps; ++step) {
    const auto t0 = std::chrono::steady_clock::now();
    const int64_t bytes_before_step = comm->bytes();
    profile.begin_step();
    auto idx = batches.next(batch_size(step));
    if (ranks > 1) idx = idx.narrow(0, rank * (idx.size(0) / ranks), idx.size(0) / ranks);  // this rank's shard
    const auto x = train_set.images.index_select(0, idx).to(device);
    const auto y = targets_of(model, train_set, idx).to(device);
    model.net->zero_grad();
    const auto capture = optimizer.before_forward(x, y, profile);
    const auto tp = std::chrono::steady_clock::now();
    auto output = model.net->forward(x);
    auto loss = kfac::loss(output, y, model.loss);
    loss.backward({}, /*retain_graph=*/optimizer.retains_graph(capture));
    profile.lap(StepProfile::ForwardBackward, tp);
    optimizer.after_backward(capture, output, y, profile);
    double value = loss.item<double>();  // also synchronizes an accelerator
    bool stop = interrupted();
    if (ranks > 1) {  // the whole batch's loss, and every rank stops at the same step
      const auto shared = comm->sum_over_ranks({value, stop ? 1.0 : 0.0});
      value = shared[0] / ranks, stop = shared[1] > 0;
      if (!optimizer.averages_gradients()) all_reduce_gradients(*comm, params);
    }
    if (!std::isfinite(value)) {  // every rank sees the same averaged value, so all stop here
      progress.finish();
      KFAC_CHECK(false, "step ", step, ": the training loss is ", value,
                 "; stopping (the weights or the data hold a "
                 "NaN or an infinity). ",
                 cfg.checkpoint.empty() ? std::string("No checkpoint was written")
                                        : "The checkpoint '" + cfg.checkpoint + "' keeps the last one written before",
                 "; lower --lr, raise --damping, or check the data for NaN/inf values");
    }
    maybe_die_for_test(rank, step);
    optimizer.scale_lr(lr_factor(cfg.lr_schedule, cfg.warmup_steps, step, cfg.steps));
    const auto outcome = optimizer.step(
        output, value, [&] { return kfac::loss(model.net->forward(x), y, model.loss).item<double>(); }, profile);
    const auto t1 = std::chrono::steady_clock::now();
    state.skipped_steps += outcome.skipped ? 1 : 0;
    skipped_in_a_row = outcome.skipped ? skipped_in_a_row + 1 : 0;
    if (outcome.skipped) last_skip_reason = outcome.skip_reason.empty() ? "no reason given" : outcome.skip_reason;
    profile.end_step(step >= kTimingWarmup || cfg.steps <= kTimingWarmup,  // as step_timing() counts them
                     comm->bytes() - bytes_before_step);
    state.history.push_back({step, value, resumed_seconds + std::chrono::duration<double>(t1 - start).count(),
                             std::chrono::duration<double>(t1 - t0).count(), outcome.refreshed});
    progress.update(step + 1, value, state.skipped_steps);
    // A periodic checkpoint waits for a step that moved the weights: the file never holds a state from inside a run
    // of skipped steps, and is the last good one when too many are skipped.
    checkpoint_due |= !cfg.checkpoint.empty() && cfg.checkpoint_every > 0 && (step + 1) % cfg.checkpoint_every == 0;
    if (checkpoint_due && skipped_in_a_row == 0) {
      checkpoint(step + 1);
      checkpoint_due = false;
    }
    const auto skipped_stop = too_many_skipped(cfg, step + 1, skipped_in_a_row, state.skipped_steps);
    if (!skipped_stop.empty()) {  // every rank counts the same skips (their directions agree), so all stop here
      progress.finish();
      KFAC_CHECK(false, skipped_stop, "; stopping. The last skipped step: ", last_skip_reason, ". ",
                 last_saved < 0 ? std::string("No checkpoint was written")
                                : "The checkpoint '" + cfg.checkpoint + "' keeps step " + std::to_string(last_saved) +
                                      ", the last one written",
                 "; raise --damping, lower --lr or --weight-decay, or keep --kl-clip above 0");
    }
    if (stop) {
      progress.finish();
      KFAC_CHECK(!cfg.checkpoint.empty(), "interrupted at step ", step + 1, " (no --checkpoint given, nothing saved)");
      checkpoint(step + 1);
      throw Interrupted("interrupted after step " + std::to_string(step + 1) + "; checkpoint written to '" +
                        cfg.checkpoint + "'; continue with --resume");
    }
  }
  progress.finish();
  if (!cfg.checkpoint.empty()) checkpoint(cfg.steps);
  result.history = state.history;
  result.skipped_steps = state.skipped_steps;
  result.timing = step_timing(state.history);
  result.seconds_per_step = result.timing.mean;
  result.profile = profile.means();
  result.bytes_per_step = profile.bytes_per_step();
  model.net->eval();
  result.peak_rss_mib = peak_rss_mib();
  optimizer.use_averages_for_evaluation();
  if (std::getenv("KFAC_TEST_POISON_EVALUATION")) {  // tests/cli/nonfinite.sh: weights that evaluate to NaN
    torch::NoGradGuard no_grad;
    model.net->parameters().front().fill_(std::numeric_limits<double>::quiet_NaN());
  }
  std::tie(result.train_loss, result.train_squared_error) = evaluate(model, train_set, cfg.eval_examples, device);
  result.test_loss = evaluate(model, test_set, cfg.eval_examples, device).first;
  return result;
}

}  // namespace kfac::tool
