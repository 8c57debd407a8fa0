// The kfac command-line tool.
//   kfac train   --model autoencoder --method kfac --steps 200 --batch-size 1000
//   kfac compare --methods sgd,adam,kfac,ekfac --steps 100 --out reports/compare
//   kfac fisher  --model cnn
//   kfac info    [--json]
#include <CLI/CLI.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <thread>

#include "atomic_file.h"
#include "cli_checks.h"
#include "compare.h"
#include "fisher_lab.h"
#include "flag_effects.h"
#include "kfac/errors.h"
#include "util/text.h"
#include "kfac/distributed/communicator.h"
#include "kfac/runtime/setup.h"
#include "runtime_report.h"
#include "launch.h"
#include "lr_schedule.h"
#include "kfac/curvature/registry.h"
#include "kfac/global/two_level_options.h"
#include "kfac/optim/kfac_optimizer.h"
#include "kfac/optim/qmodel.h"
#include "kfac/preconditioner/options.h"
#include "baselines.h"
#include "data.h"
#include "models.h"
#include "option_flags.h"
#include "train.h"
#include "value_checks.h"

namespace {

using kfac::tool::TrainConfig;

// Bounds that keep a typo from starting thousands of threads or processes (each rank holds ~400 MiB).
constexpr int kMaxThreads = 1024, kMaxLocalRanks = 64;
constexpr int64_t kMaxSteps = 1'000'000'000'000, kMaxBatch = 1'000'000'000;
using kfac::tool::kInf;
using kfac::tool::real_in;
using kfac::tool::whole_in;

// Flags read after parsing.
struct RawFlags {
  int threads = 0;
};

// "name (doc); name (doc)" for a table's help text.
template <class Table>
std::string entries(const Table& table) {
  std::string s;
  for (const auto& e : table) s += (s.empty() ? "" : "; ") + e.name + " (" + e.doc + ")";
  return s;
}

// How the tool sets up the process (kfac/runtime/setup.h), for every subcommand.
void add_runtime_flags(CLI::App* sub, kfac::runtime::RuntimeSetup& setup) {
  sub->add_flag_function(
      "--keep-blas-kernel", [&setup](int64_t) { setup.select_blas_kernel = false; },
      "Keep the kernel OpenBLAS chose even when it is below the CPU's instruction set (default: "
      "start again once with OPENBLAS_CORETYPE set to the best one; also KFAC_BLAS_AUTOSELECT=0)");
  sub->add_flag_function(
      "--keep-subnormals", [&setup](int64_t) { setup.flush_denormal = false; },
      "Compute with subnormal floats instead of flushing them to zero (slower)");
  sub->add_flag_function(
      "--return-freed-memory", [&setup](int64_t) { setup.keep_freed_memory = false; },
      "Let glibc's malloc return freed memory to the system as it does by default (slower: the next step's "
      "tensors page-fault; default: keep it for reuse)");
}

// The training flags shared by `train` and `compare`.
void add_training_flags(CLI::App* t, TrainConfig& cfg, RawFlags& raw, bool with_method) {
  t->option_defaults()->always_capture_default();
  t->add_option("--model", cfg.model, "Model: " + entries(kfac::tool::model_table()))
      ->check(CLI::IsMember(kfac::tool::model_names()));
  t->add_option("--dataset", cfg.dataset, "Data: " + entries(kfac::tool::dataset_table()))
      ->check(CLI::IsMember(kfac::tool::dataset_names()));
  if (with_method)
    t->add_option("--method", cfg.method,
                  "Method: a baseline (" + kfac::join(kfac::tool::baseline_names()) + ") or a curvature method (" +
                      kfac::registered_method_names() + "), optionally with a global stage: kfac+residual");
  // Applied as soon as it is read, before the other flags' values (which CLI11 stores after parsing) override it.
  t->add_option_function<std::string>(
       "--preset", [&cfg](const std::string& name) { kfac::tool::apply_preset(name, cfg); },
       "Apply a named preset first (kfac-paper, pytorch-kfac, ekfac-paper, koroko: the papers' and reference codes' "
       "setups; char-lm-kfac, vit-kfac: the transformer sweep's settings); explicit flags override it")
      ->check(CLI::IsMember(kfac::tool::preset_names()))
      ->trigger_on_parse();
  t->add_option("--steps", cfg.steps, "Training steps")->check(whole_in(1, kMaxSteps));
  t->add_option("--batch-size", cfg.batch_size, "Minibatch size")->check(whole_in(1, kMaxBatch));
  // The step rule's flags come from KfacOptimizerOptions' table (name, range, doc). Unset = the method's default:
  // values, never sentinels, so a NaN is an error and not a default in disguise.
  const auto& step_rule = kfac::KfacOptimizerOptions::table();
  kfac::tool::add_step_flag(t, step_rule, "lr", cfg.lr,
                            "sgd 0.01 on the autoencoder, 0.05 otherwise; adam and adamw 1e-3; muon 0.03 (vit 0.01, "
                            "models outside the comparison 0.02); shampoo 3e-3 (vit and others 1e-3); soap 3e-3; "
                            "K-FAC methods 0.1 on the autoencoder, 0.05 otherwise");
  kfac::tool::add_step_flag(t, step_rule, "momentum", cfg.momentum,
                            "sgd 0.9, muon 0.95, K-FAC methods 0.5 (Adam, Shampoo and SOAP: --beta1)");
  kfac::tool::add_step_flag(t, step_rule, "weight_decay", cfg.weight_decay,
                            "for the other methods their own weight decay (AdamW's decoupled)");
  t->add_option("--lr-schedule", cfg.lr_schedule,
                "Learning-rate schedule after the warm-up, for every method: constant, or cosine (a half cosine "
                "from the rate to 0 at the last step)")
      ->check(CLI::IsMember(kfac::tool::lr_schedule_names()));
  t->add_option("--warmup-steps", cfg.warmup_steps, "Linear learning-rate warm-up over the first N steps")
      ->check(whole_in(0, kMaxSteps));
  t->add_option_function<double>(
       "--fallback-lr", [&cfg](double v) { cfg.fallback_lr = v; },
       "K-FAC methods: the rate of the fallback parameters (--exclude'd layers and parameters no layer kind "
       "covers; with --fallback adam, e.g. Adam's 1e-3), a parameter group of its own; muon: its AdamW group's "
       "(default 1e-3)")
      ->check(real_in(0, kInf, /*low_open=*/true))
      ->default_str("--lr");
  kfac::tool::add_step_flag(t, step_rule, "kl_clip", cfg.kl_clip,
                            "K-FAC methods 0.1 on the autoencoder, 0.01 otherwise");
  kfac::tool::add_preconditioner_flags(t, cfg.preconditioner);
  kfac::tool::add_block_flags(t, kfac::tool::baseline_blocks(cfg), kfac::tool::set_by_the_tool_flags);
  t->add_option("--step-rule", cfg.step_rule,
                "K-FAC methods: kl-clip (momentum + KL clipping) or qmodel (the "
                "K-FAC paper's quadratic model with adaptive λ and γ)")
      ->check(CLI::IsMember({"kl-clip", "qmodel"}));
  kfac::tool::add_block_flags(t, {{&kfac::QModelOptions::table(), &cfg.qmodel}}, [](const kfac::OptionSpec&) {
    return false;  // every field of the quadratic model (its momentum switch is --qmodel-momentum)
  });
  t->add_flag("--batch-growth", cfg.batch_growth,
              "Grow the batch exponentially from --batch-size to the training set by step 500 (the paper)");
  t->add_option("--seed", cfg.seed, "Seed of initialization, batches and sampled targets")
      ->check(whole_in(0, std::numeric_limits<int64_t>::max()));
  t->add_option("--data-dir,--data-path", cfg.data_dir, "Dataset directory or file (default: the installed one)");
  t->add_option("--device", cfg.device, "cpu or cuda");
  t->add_option("--threads", raw.threads,
                "Intra-op threads (0 = the available cores, shared among local ranks, "
                "unless OMP_NUM_THREADS is set)")
      ->check(whole_in(0, kMaxThreads));
  t->add_option("--eval-examples", cfg.eval_examples, "Examples used for the final train/test loss")
      ->check(whole_in(1, kMaxBatch));
  t->add_flag("--quiet", cfg.quiet, "No progress line");
  t->add_option("--checkpoint", cfg.checkpoint,
                "Checkpoint file (written atomically at the end, every "
                "--checkpoint-every steps, and on Ctrl-C)");
  t->add_option("--checkpoint-every", cfg.checkpoint_every, "Steps between checkpoints (0 = end and Ctrl-C only)")
      ->check(whole_in(0, kMaxSteps));
  t->add_flag("--resume", cfg.resume, "Continue the run saved in --checkpoint exactly where it stopped");
  t->add_flag("--overwrite", cfg.overwrite, "Replace an existing --checkpoint file instead of refusing to start");
  t->add_option("--max-skipped-steps", cfg.max_skipped_steps,
                "Stop the run with an error (exit 2, the last checkpoint kept) after this many skipped steps in a row "
                "(a non-finite direction or update leaves the weights unchanged); 0 = never")
      ->check(whole_in(0, kMaxSteps));
  t->add_option("--max-skipped-fraction", cfg.max_skipped_fraction,
                "Stop the run with an error as soon as more than this fraction of --steps were skipped; 1 = never")
      ->check(real_in(0, 1));
}

// Validates the preconditioner options once (with a method that has them all, for the comparison's sake).
void finish_config(const TrainConfig& cfg) {
  kfac::validate(kfac::PreconditionerOptions(cfg.preconditioner).method("kfac"));
}

// The exit code of a run that succeeded, unless its report never reached standard output (a full disk, a closed
// pipe): what printf leaves buffered is only written, and its failure only seen, here.
int stdout_checked() {
  if (std::fflush(stdout) == 0 && !std::ferror(stdout)) return 0;
  std::fprintf(stderr, "error: cannot write to standard output (%s)\n", std::strerror(errno));
  return 2;
}

bool is_rank0() {
  const char* rank = std::getenv("RANK");
  return rank == nullptr || std::atoi(rank) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  // LibTorch answers an invalid OMP_NUM_THREADS with a backtrace at its first thread query: refused first, by name.
  if (const char* omp = std::getenv("OMP_NUM_THREADS"); omp && !kfac::runtime::valid_thread_count(omp)) {
    std::fprintf(stderr,
                 "error: kfac: OMP_NUM_THREADS='%s' is not a whole number >= 1; unset it, set it to the number of "
                 "cores to use (e.g. OMP_NUM_THREADS=2), or use --threads\n",
                 omp);
    return 2;
  }
  CLI::App app{"kfac: Kronecker-factored natural-gradient optimizers for LibTorch"};
  app.require_subcommand(1);
  app.set_config("--config", "",
                 "Read options from a TOML/INI file ([train], [compare] or [fisher] sections, "
                 "keys named as the long flags, e.g. steps = 200); explicit flags override it");
  app.allow_config_extras(CLI::config_extras_mode::error);  // a misspelt key is an error, not ignored
  TrainConfig cfg;
  RawFlags raw;
  std::string metrics_json;
  auto* train = app.add_subcommand("train", "Train one model with one method on Fashion-MNIST and report metrics");
  add_training_flags(train, cfg, raw, /*with_method=*/true);
  train->add_option("--metrics-json", metrics_json,
                    "Write the metrics and loss history to this JSON file (- for standard output; the result line "
                    "then goes to standard error)");
  int nproc = 1, master_port = 0;
  bool profile = false;
  train->add_flag("--profile", profile, "Print where a step's time goes (mean seconds per step of each phase)");
  train
      ->add_option("--nproc", nproc,
                   "Data-parallel ranks to start on this machine (Gloo over 127.0.0.1); each "
                   "trains on 1/N of every batch. External launchers set RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT "
                   "instead")
      ->check(whole_in(1, kMaxLocalRanks));
  train->add_option("--master-port", master_port, "TCP port of rank 0's store for --nproc (0 = a free one)")
      ->check(whole_in(0, 65535));
  train
      ->add_option("--dist-timeout", cfg.dist_timeout_s,
                   "Seconds after which a dead or hung rank makes the others "
                   "stop with an error")
      ->check(real_in(0, static_cast<double>(kfac::kMaxTimeoutSeconds), true));

  kfac::tool::CompareConfig compare;
  auto* cmp = app.add_subcommand("compare", "Run several methods on the same data and seed; write a report folder "
                                            "(metrics, PNG plots, summary.md)");
  add_training_flags(cmp, cfg, raw, /*with_method=*/false);
  cmp->add_option("--methods", compare.methods,
                  "Methods to compare, e.g. adamw,kfac,ekfac (spaces around names are "
                  "ignored)")
      ->delimiter(',')
      ->transform([](std::string name) { return CLI::detail::trim_copy(name); });
  cmp->add_option("--out", compare.out_dir, "Report folder");

  kfac::tool::FisherLabConfig lab;
  auto* f = app.add_subcommand("fisher", "Curvature lab: each method's distance to the exact Fisher blocks and the "
                                         "angle of its direction to the exact natural gradient, on a tiny network");
  f->option_defaults()->always_capture_default();
  f->add_option("--model", lab.model, "Tiny model: mlp or cnn (7x7 average-pooled Fashion-MNIST)")
      ->check(CLI::IsMember({"mlp", "cnn"}));
  f->add_option("--examples", lab.examples, "Training examples in the exact Fisher")->check(whole_in(1, kMaxBatch));
  f->add_option("--damping", lab.damping, "Damping λ of the methods and of (F + λI)")->check(real_in(0, kInf, true));
  f->add_option("--methods", lab.methods,
                "Methods to compare, e.g. kfac,ekfac,kfac+residual (default: every method "
                "and kfac with every global stage)")
      ->delimiter(',');
  f->add_option("--combine", lab.combine, "Two-level combination of the METHOD+SPACE rows")
      ->check(CLI::IsMember(kfac::enum_choices<kfac::CoarseCombine>()));
  f->add_option("--seed", lab.seed, "Seed of the model's initialization")
      ->check(whole_in(0, std::numeric_limits<int64_t>::max()));
  f->add_option("--data-dir", lab.data_dir, "Directory with Fashion-MNIST IDX files");

  bool info_json = false;
  auto* info = app.add_subcommand("info", "Print the runtime report: LibTorch build, BLAS and its kernel, CPU and "
                                          "instruction sets, threads, subnormal mode, CUDA devices, and warnings "
                                          "with their fixes");
  info->add_flag("--json", info_json, "As JSON");
  kfac::runtime::RuntimeSetup setup;
  for (auto* sub : {train, cmp, f, info}) add_runtime_flags(sub, setup);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ConfigError& e) {
    // CLI11 says "INI was not able to parse train.stepz"; say which file, which key and what keys are.
    const std::string what = e.what(), marker = "parse ";
    const auto at = what.rfind(marker);
    const std::string key = at == std::string::npos ? what : what.substr(at + marker.size());
    std::fprintf(stderr,
                 "error: kfac: --config '%s': the key '%s' is not an option of its section, or its value does not "
                 "parse. Keys are the long flags without '--' in a [train], [compare] or [fisher] section (e.g. "
                 "steps = 200, batch-size = 64, method = \"ekfac\"); `kfac train --help` lists them\n",
                 app["--config"]->as<std::string>().c_str(), key.c_str());
    return 2;
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  // Before any work: the right BLAS kernel (may start the process again, so launched ranks inherit it), the cores
  // (LibTorch 1.13 counts physical ones; ranks started by --nproc share them), subnormals flushed.
  setup.threads = raw.threads;
  const auto runtime = kfac::runtime::configure_runtime(setup, argv);
  if (info->parsed()) {
    if (info_json)
      std::printf("%s\n", kfac::tool::runtime_json(runtime).dump(1).c_str());
    else
      std::cout << runtime;
    std::cout.flush();
    return stdout_checked();
  }
  if (train->parsed() && nproc > 1 && std::getenv("RANK") == nullptr)
    return kfac::tool::launch_local_ranks(nproc, master_port, cfg.dist_timeout_s, argv);
  const char* rank_env = std::getenv("RANK");
  if (!cfg.quiet && (rank_env == nullptr || std::atoi(rank_env) == 0))
    for (const auto& w : runtime.warnings)
      std::fprintf(stderr, "kfac: warning: %s\n  fix: %s\n", w.what.c_str(), w.fix.c_str());
  // Ctrl-C, a terminal hang-up, and SIGTERM (also what ranks get when their launcher dies, PR_SET_PDEATHSIG) all
  // checkpoint and stop after the current step.
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) std::signal(sig, [](int s) { kfac::tool::request_interrupt(s); });
  try {
    if (f->parsed()) {
      std::printf("%s", kfac::tool::fisher_lab_table(kfac::tool::run_fisher_lab(lab)).c_str());
      return stdout_checked();
    }
    const auto* sub = cmp->parsed() ? cmp : train;
    kfac::tool::finish_preset(cfg, [sub](const std::string& flag) { return sub->get_option(flag)->count() > 0; });
    finish_config(cfg);
    const auto model_dtype =
        c10::typeMetaToScalarType(torch::get_default_dtype());  // the tool's models are built in it
    if (cmp->parsed()) {
      // Every method is checked before the first one trains.
      std::vector<std::string> seen;
      for (const auto& method : compare.methods) {
        KFAC_CHECK(std::find(seen.begin(), seen.end(), method) == seen.end(), "--methods names '", method,
                   "' twice; each method runs once (its files are named after it)");
        seen.push_back(method);
        for (const auto& w : kfac::tool::ineffective_flags(*cmp, cfg, method))
          std::fprintf(stderr, "kfac: warning: %s\n", w.c_str());
        if (!kfac::tool::is_baseline(method)) kfac::validate(kfac::tool::with_method(cfg.preconditioner, method));
        kfac::tool::check_values_fit(cfg, method, model_dtype);
      }
      compare.base = cfg;
      const auto outcome = kfac::tool::run_compare(compare);
      std::printf("%s", outcome.summary.c_str());
      const int written = stdout_checked();
      if (!outcome.non_finite.empty()) {
        std::string names;
        for (const auto& m : outcome.non_finite) names += (names.empty() ? "" : ", ") + m;
        std::fprintf(stderr,
                     "error: the trained model of %s evaluates to a loss that is not finite although training ended "
                     "normally (the report includes it); lower --lr, raise --damping, or check the data\n",
                     names.c_str());
        return 2;
      }
      return written;
    }
    if (!kfac::tool::is_baseline(cfg.method)) kfac::validate(kfac::tool::with_method(cfg.preconditioner, cfg.method));
    kfac::tool::check_values_fit(cfg, cfg.method, model_dtype);
    if (is_rank0())
      for (const auto& w : kfac::tool::ineffective_flags(*train, cfg, cfg.method))
        std::fprintf(stderr, "kfac: warning: %s\n", w.c_str());
    if (is_rank0()) {  // the outputs, before training (the checkpoint's own checks are train()'s)
      kfac::tool::check_distinct_outputs({{"--checkpoint", cfg.checkpoint}, {"--metrics-json", metrics_json}});
      kfac::tool::check_output_path(metrics_json, "--metrics-json", /*allow_stdout=*/true);
    }
    const auto result = kfac::tool::train(cfg);
    if (!is_rank0()) return 0;                             // rank 0 reports for all
    FILE* report = metrics_json == "-" ? stderr : stdout;  // standard output holds the JSON alone
    std::fprintf(report,
                 "%s %s: train_loss %.6g  test_loss %.6g  seconds/step %.4f  (%lld steps, batch %lld, lr %g, "
                 "%lld skipped)",
                 cfg.method.c_str(), cfg.model.c_str(), result.train_loss, result.test_loss, result.seconds_per_step,
                 static_cast<long long>(cfg.steps), static_cast<long long>(cfg.batch_size), result.lr,
                 static_cast<long long>(result.skipped_steps));
    if (result.world_size > 1)
      std::fprintf(report, "  ranks %d, %.3f MB/step communicated per rank", result.world_size,
                   result.bytes_per_step / 1e6);
    std::fprintf(report, "\n");
    if (profile) {
      std::fprintf(report, "| phase (after warm-up) | s/step | share of the step |\n|---|---|---|\n");
      for (const auto& [name, seconds] : result.profile)
        std::fprintf(report, "| %s | %.4f | %.0f%% |\n", name.c_str(), seconds,
                     100.0 * seconds / result.seconds_per_step);
    }
    if (!metrics_json.empty()) kfac::tool::write_metrics_json(result, metrics_json);
    if (!std::isfinite(result.train_loss) || !std::isfinite(result.test_loss)) {
      std::fprintf(stderr,
                   "error: the trained model's evaluation loss is not finite (train %g, test %g) although training "
                   "ended normally: its weights or normalization statistics hold a NaN or an infinity, or its outputs "
                   "overflow on the evaluation data; lower --lr, raise --damping, or check the data\n",
                   result.train_loss, result.test_loss);
      return 2;
    }
  } catch (const kfac::tool::Interrupted& e) {
    if (is_rank0()) std::fprintf(stderr, "%s\n", e.what());  // rank 0 speaks for all
    return 130;
  } catch (const c10::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what_without_backtrace());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  }
  return stdout_checked();
}
