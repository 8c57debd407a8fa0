// `kfac train`: one model, one method, a fixed number of steps; metrics as JSON.
#pragma once

#include <cmath>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "kfac/optim/muon.h"
#include "kfac/optim/qmodel.h"
#include "kfac/optim/shampoo.h"
#include "kfac/optim/soap.h"
#include "kfac/preconditioner/options.h"
#include "kfac/preconditioner/registration.h"
#include "history.h"
#include "kfac/runtime/runtime_info.h"

namespace kfac::tool {

struct TrainConfig {
  std::string preset;  ///< the --preset applied, if any
  std::string model = "autoencoder";
  std::string method = "kfac";  ///< a baseline (baselines.h) or a registered curvature method
  int64_t steps = 200;
  int64_t batch_size = 1000;
  std::optional<double> lr;        ///< unset = the method's default (default_lr)
  std::optional<double> momentum;  ///< unset = the method's default (default_momentum)
  double weight_decay = 0;
  std::string lr_schedule = "constant";  ///< lr_schedule.h: constant or cosine, after warmup_steps of linear warm-up
  int64_t warmup_steps = 0;
  /// K-FAC methods: the rate of the fallback parameters (excluded layers and parameters no layer kind covers), a
  /// parameter group of its own; unset = --lr. Muon: its AdamW group's rate; unset = AdamW's default.
  std::optional<double> fallback_lr;
  std::optional<double> kl_clip;  ///< unset = the model's default (default_kl_clip); 0 disables
  uint64_t seed = 0;
  PreconditionerOptions preconditioner;
  /// The options of the baselines that have a table (baselines.h): lr, momentum (Muon's) and weight_decay come from
  /// the flags above, the rest from the flags generated from the tables.
  MuonOptions muon;
  ShampooOptions shampoo;
  SoapOptions soap;
  std::string step_rule = "kl-clip";  ///< K-FAC methods: kl-clip (KfacOptimizer) or qmodel (QModelOptimizer)
  QModelOptions qmodel;
  /// The K-FAC paper's exponentially growing batch: batch_size at step 0 up to the whole training set at step 500.
  bool batch_growth = false;
  std::string dataset = "fashion-mnist";  ///< fashion-mnist | mnist | curves | idx | csv (data.h)
  std::string data_dir;                   ///< directory or file of the dataset (default: the installed one)
  std::string device = "cpu";
  int64_t eval_examples = 10000;
  bool quiet = false;
  std::string checkpoint;        ///< checkpoint file; written every checkpoint_every steps, at the end and on Ctrl-C
  int64_t checkpoint_every = 0;  ///< 0 = only at the end and on interruption
  bool resume = false;           ///< continue from `checkpoint`
  bool overwrite = false;        ///< replace an existing `checkpoint` when not resuming
  /// A skipped step (a non-finite direction or update: weights unchanged) is reported; the run stops with an error,
  /// keeping the last checkpoint, after this many in a row (0: never) or once more than `max_skipped_fraction` of
  /// `steps` were skipped (1: never).
  int64_t max_skipped_steps = 10;
  double max_skipped_fraction = 0.5;
  /// Data-parallel runs: ranks come from RANK / WORLD_SIZE / MASTER_ADDR / MASTER_PORT (set by `--nproc N` or an
  /// external launcher); each rank trains on its 1/WORLD_SIZE shard of every batch. Only rank 0 reports and saves.
  double dist_timeout_s = 60;  ///< a rank that dies or hangs makes the others fail within this
};

struct TrainResult {
  TrainConfig config;
  double lr = 0, momentum = 0, kl_clip = 0;  ///< the values used (defaults resolved)
  double fallback_lr = 0;                    ///< the fallback parameters' rate (K-FAC methods; = lr unless set)
  double train_loss = 0;                     ///< loss on the first eval_examples training examples after training
  double test_loss = 0;                      ///< loss on the first eval_examples test examples after training
  double train_squared_error = NAN;  ///< autoencoders: Σ‖σ(z) − x‖² per example (the K-FAC paper's metric)
  double seconds_per_step = 0;       ///< step_timing(history).mean
  StepTiming timing;
  int64_t skipped_steps = 0;
  double peak_rss_mib = 0;  ///< peak resident memory of the process (training only, before evaluation)
  int world_size = 1;       ///< ranks of a data-parallel run
  std::string
      registration;  ///< what the preconditioner registered and what got the fallback (K-FAC methods; Muon's split)
  std::vector<Registration::Block> blocks;  ///< each block's kind, factor structure and memory (K-FAC methods)
  double bytes_per_step = 0;  ///< bytes this rank passed to collectives per timed step (0 with one process)
  /// Mean seconds per timed step of each phase: statistics pass, forward + backward, optimizer step and, inside it,
  /// the preconditioner's factor update, refresh, preconditioning and global stage.
  std::vector<std::pair<std::string, double>> profile;
  std::vector<HistoryPoint> history;
  runtime::RuntimeInfo runtime;  ///< what the run ran on (BLAS kernel, threads, subnormal mode)
  /// The preconditioner's complete options (curvature methods only).
  std::optional<PreconditionerOptions> preconditioner_options;
};

/// Applies a method spec to preconditioner options: "kfac", or a one-level method with a global stage,
/// "kfac+nicolaides", "ekfac+residual", "kfac+block-tridiagonal", "kfac+residual+krylov" (sets method,
/// the global stage and krylov).
PreconditionerOptions with_method(PreconditionerOptions options, const std::string& spec);

/// Curvature methods' defaults (the baselines' are in their table, baselines.h): lr 0.1 on the autoencoder, 0.05
/// otherwise; momentum 0.5 (a 30-step grid on the autoencoder and 100 steps on the CNN: 0.9 overshoots).
double default_lr(const std::string& method, const std::string& model);
double default_momentum(const std::string& method);
/// KL-clip bound κ: 0.1 for the autoencoder (its loss sums 784 pixels), 0.01 otherwise (same grids).
double default_kl_clip(const std::string& model);
/// Named presets reproducing published setups (kfac-paper, pytorch-kfac, ekfac-paper, koroko; see train.cpp).
std::vector<std::string> preset_names();
/// Applies a named preset to a config (explicit flags are applied over it by the caller).
void apply_preset(const std::string& name, TrainConfig& config);
/// After parsing: a preset's values that depend on other flags (koroko's damping on --model, the transformer
/// presets' warm-up on --steps, which may come after --preset on the command line or in a config file) follow their
/// final values, unless given explicitly (`given("--damping")`).
void finish_preset(TrainConfig& c, const std::function<bool(const std::string&)>& given);
/// The paper's batch size at `step`: ⌊m1 (N/m1)^min(step/499, 1)⌋, rounded down to a multiple of 50.
int64_t grown_batch_size(int64_t step, int64_t initial, int64_t dataset);
TrainResult train(const TrainConfig& config);

/// Thrown by train() after an interruption (SIGINT) once the checkpoint is written.
struct Interrupted : std::runtime_error {
  using std::runtime_error::runtime_error;
};
/// Async-signal-safe: asks the running train() to checkpoint and stop after the current step; outside train()'s loop
/// (loading data, joining the process group, evaluating) the process exits at once with 128 + signal.
void request_interrupt(int signal);
bool interrupted();
void write_metrics_json(const TrainResult& result, const std::string& path);

}  // namespace kfac::tool
