#include "compare.h"
#include "run_checkpoint.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <system_error>
#include <tuple>
#include <vector>

#include "atomic_file.h"
#include "baselines.h"
#include "kfac/errors.h"
#include "runtime_report.h"

namespace kfac::tool {

namespace fs = std::filesystem;

namespace {
// The smoothed minibatch loss at the end of a run: a less noisy "final loss", read like the times to target.
double final_minibatch_loss(const TrainResult& r) { return smoothed_loss(r.history, r.history.size() - 1); }

// Runs argv[0] (looked up in PATH) with these arguments in `dir`, stderr to `dir`/`log`; no shell, so a folder name
// with quotes, spaces, `$` or newlines is only a name. True if it ran and exited with 0.
bool run_in(const std::string& dir, std::vector<std::string> args, const std::string& log) {
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addchdir_np(&actions, dir.c_str());
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = 0;
  const int spawned = posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  int status = 0;
  return spawned == 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

std::string in_folder(const std::string& dir, const std::string& file) { return dir + "/" + file; }

// The files gnuplot writes itself (its log through run_in): checked like the tool's own before it runs.
const std::vector<std::string> kGnuplotOutputs{"plot.log", "loss_vs_step.png", "loss_vs_seconds.png"};

void write_plots(const std::string& dir, const std::vector<TrainResult>& runs, const std::string& title) {
  std::ostringstream gp;
  gp << "set terminal pngcairo size 900,600 enhanced font 'sans,11'\n"
     << "set datafile separator ','\nset key top right\nset grid\n"
     << "set ylabel 'training loss (minibatch)'\n";
  for (const auto& [file, column, label] : {std::tuple<const char*, int, const char*>{"loss_vs_step.png", 1, "step"},
                                            {"loss_vs_seconds.png", 3, "wall-clock seconds"}}) {
    gp << "set output '" << file << "'\nset title '" << title << "'\nset xlabel '" << label << "'\nplot ";
    for (size_t i = 0; i < runs.size(); ++i)
      gp << (i ? ", " : "") << "'" << runs[i].config.method << ".csv' every ::1 using " << column
         << ":2 with lines lw 2 title '" << runs[i].config.method << "'";
    gp << "\n";
  }
  write_file_atomically(dir + "/plot.gp", gp.str());
  for (const auto& file : kGnuplotOutputs) check_output_path(in_folder(dir, file), "--out");
  if (!run_in(dir, {"gnuplot", "plot.gp"}, "plot.log"))
    std::fprintf(stderr, "warning: gnuplot failed or is missing (see %s/plot.log); the plots were not made\n",
                 dir.c_str());
}

// Before any training: the report folder is a folder (made if missing) and every file of the report can be written
// there, none of them a device, folder, fifo or socket (or a link to one).
void check_report_folder(const CompareConfig& cfg) {
  std::error_code ec;
  KFAC_CHECK(!fs::exists(cfg.out_dir, ec) || fs::is_directory(cfg.out_dir, ec), "--out '", cfg.out_dir,
             "' is not a folder; give the report folder's name");
  fs::create_directories(cfg.out_dir, ec);
  KFAC_CHECK(!ec, "--out '", cfg.out_dir, "': cannot make the report folder (", ec.message(), ")");
  std::vector<std::string> files = kGnuplotOutputs;
  for (const auto* file : {"plot.gp", "runtime.json", "summary.md"}) files.emplace_back(file);
  for (const auto& method : cfg.methods)
    for (const auto* extension : {".json", ".csv"}) files.push_back(method + extension);
  for (const auto& file : files) check_output_path(in_folder(cfg.out_dir, file), "--out");
}
}  // namespace

void write_history_csv(const TrainResult& r, const std::string& path) {
  std::ostringstream out;
  out << "step,train_loss,seconds\n";
  for (const auto& h : r.history) out << h.step << "," << h.train_loss << "," << h.seconds << "\n";
  write_file_atomically(path, out.str());
}

std::string method_checkpoint(const std::string& path, const std::string& method) {
  const fs::path p(path);
  return (p.parent_path() / (p.stem().string() + "." + method + p.extension().string())).string();
}

CompareOutcome run_compare(const CompareConfig& cfg) {
  KFAC_CHECK(!cfg.methods.empty(), "--methods is empty; give at least one method");
  check_report_folder(cfg);
  std::fprintf(stderr, "Report folder: %s\n", fs::absolute(cfg.out_dir).c_str());
  // Each method its own checkpoint (resumable on its own), every destination checked before the first run trains.
  std::vector<TrainConfig> configs;
  for (const auto& method : cfg.methods) {
    TrainConfig c = cfg.base;
    c.method = method;
    // The K-FAC methods' fallback group; a baseline has one rate, but Muon's AdamW group
    if (is_baseline(method) && !find_baseline(method)->has_fallback_group) c.fallback_lr.reset();
    if (!c.checkpoint.empty()) c.checkpoint = method_checkpoint(cfg.base.checkpoint, method);
    check_checkpoint_destination(c);
    configs.push_back(std::move(c));
  }
  std::vector<TrainResult> runs;
  for (const auto& c : configs) {
    const auto& method = c.method;
    runs.push_back(train(c));
    const auto& r = runs.back();
    write_metrics_json(r, cfg.out_dir + "/" + method + ".json");
    write_history_csv(r, cfg.out_dir + "/" + method + ".csv");
    std::fprintf(stderr, "%s: train loss %.5g, %.4f s/step, %lld skipped\n", method.c_str(), r.train_loss,
                 r.seconds_per_step, static_cast<long long>(r.skipped_steps));
  }
  const auto& base = cfg.base;
  std::ostringstream title;
  title << base.model << ", batch " << base.batch_size << ", " << base.steps << " steps, seed " << base.seed;
  write_plots(cfg.out_dir, runs, title.str());

  // The reference: AdamW when it ran (what a user would pick instead), else Adam, else none; the target is its final
  // minibatch loss, or the worst final loss of the runs.
  const TrainResult* reference = nullptr;
  for (const char* name : {"adam", "adamw"})
    for (const auto& r : runs)
      if (r.config.method == name) reference = &r;
  double target = -INFINITY;
  for (const auto& r : runs) target = std::max(target, final_minibatch_loss(r));
  const std::string ref = reference ? reference->config.method : "";
  const std::string ref_name = ref == "adamw" ? "AdamW" : "Adam";
  if (reference) target = final_minibatch_loss(*reference);
  const double ref_seconds = reference ? seconds_to_loss(reference->history, target) : NAN;
  const int64_t ref_steps = reference ? steps_to_loss(reference->history, target) : 0;
  const auto ratio = [](double v, double of) {
    char b[32];
    std::snprintf(b, sizeof(b), " (%.2f)", v / of);
    return std::isfinite(v / of) ? std::string(b) : std::string();
  };

  std::ostringstream md;
  md << "# kfac compare: " << title.str() << "\n\n"
     << "| method | lr | final train loss | test loss | s/step | median | refresh steps | step time / "
     << (reference ? ref_name : "–") << " | steps to "
     << (reference ? ref_name + "'s final loss" : "the worst final loss") << " (" << target
     << ") | seconds to it |\n|---|---|---|---|---|---|---|---|---|---|\n";
  char buf[512];
  for (const auto& r : runs) {
    const double t = seconds_to_loss(r.history, target);
    const int64_t n = steps_to_loss(r.history, target);
    std::snprintf(
        buf, sizeof(buf), "| %s | %g | %.4g | %.4g | %.4f | %.4f | %s | %s | ", r.config.method.c_str(), r.lr,
        r.train_loss, r.test_loss, r.seconds_per_step, r.timing.median,
        std::isnan(r.timing.refresh_mean) ? "–" : (std::to_string(r.timing.refresh_mean).substr(0, 6)).c_str(),
        reference ? (std::to_string(r.seconds_per_step / reference->seconds_per_step).substr(0, 4)).c_str() : "–");
    md << buf << (n ? std::to_string(n) + ratio(static_cast<double>(n), static_cast<double>(ref_steps)) : "not reached")
       << " | ";
    std::snprintf(buf, sizeof(buf), "%.1f", t);
    md << (std::isnan(t) ? "not reached" : buf + ratio(t, ref_seconds)) << " |\n";
  }
  md << "\nFinal losses are on the first " << base.eval_examples << " training and test examples after training. "
     << "s/step is the mean wall time of every step from step " << kTimingWarmup << " on, refresh steps included "
     << "(median and the refresh steps' mean beside it); times to target use the minibatch loss averaged over the "
     << "last 10 steps. Plots: loss_vs_step.png, loss_vs_seconds.png. Per-run metrics: <method>.json and "
     << "<method>.csv; the runtime report: runtime.json.\n\nRan with " << runtime_summary(runs.front().runtime)
     << ".\n";
  for (const auto& w : runs.front().runtime.warnings) md << "\n**Warning:** " << w.what << " (fix: " << w.fix << ")\n";
  write_file_atomically(cfg.out_dir + "/runtime.json", runtime_json(runs.front().runtime).dump(1) + "\n");
  write_file_atomically(cfg.out_dir + "/summary.md", md.str());
  CompareOutcome outcome{md.str(), {}};
  for (const auto& r : runs)
    if (!std::isfinite(r.train_loss) || !std::isfinite(r.test_loss)) outcome.non_finite.push_back(r.config.method);
  return outcome;
}

}  // namespace kfac::tool
