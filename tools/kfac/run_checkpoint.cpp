#include "run_checkpoint.h"

#include <torch/serialize/archive.h>
#include <torch/torch.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "atomic_file.h"
#include "baselines.h"
#include "kfac/errors.h"
#include "zip_check.h"

namespace kfac::tool {

namespace {
std::string identity(const TrainConfig& c) { return c.model + "/" + c.method + "/" + c.step_rule; }

// The shortest text that reads back as v (0.05, not 0.050000000000000003).
std::string number(double v) {
  std::string text;
  for (int p = 1; p <= 17; ++p) {
    std::ostringstream s;
    s.precision(p);
    s << v;
    text = s.str();
    if (std::strtod(text.c_str(), nullptr) == v) break;
  }
  return text;
}

// Two recorded values agree when their texts do, or when both are numbers that read back equal (records written
// with 17 digits before the shortest form).
bool same_value(const std::string& a, const std::string& b) {
  if (a == b) return true;
  char *end_a = nullptr, *end_b = nullptr;
  const double x = std::strtod(a.c_str(), &end_a), y = std::strtod(b.c_str(), &end_b);
  return !a.empty() && !b.empty() && *end_a == '\0' && *end_b == '\0' && x == y;
}

// The tool's options that shape the trajectory, as "name value" lines: a resumed run must ask for the same ones.
// (The step count, checkpointing, threads and output options may change. The preconditioner's options are recorded
// by its own checkpoint, which warns about each one that changed.)
std::string training_options(const TrainConfig& c) {
  const auto optional = [](const std::optional<double>& v) { return v ? number(*v) : std::string("default"); };
  std::ostringstream s;
  s << "dataset " << c.dataset << "\ndata-dir " << c.data_dir << "\nbatch-size " << c.batch_size << "\nbatch-growth "
    << c.batch_growth << "\nseed " << c.seed << "\nlr " << optional(c.lr) << "\nmomentum " << optional(c.momentum)
    << "\nkl-clip " << optional(c.kl_clip) << "\nweight-decay " << number(c.weight_decay) << "\nfallback-lr "
    << optional(c.fallback_lr) << "\nwarmup-steps " << c.warmup_steps << "\nlr-schedule " << c.lr_schedule
    << (c.lr_schedule == "cosine" ? " over " + std::to_string(c.steps) + " steps" : std::string()) << "\n"
    << baseline_options_text(c, c.method);
  return s.str();
}

std::map<std::string, std::string> parse_options(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    const auto space = line.find(' ');
    out[line.substr(0, space)] = space == std::string::npos ? "" : line.substr(space + 1);
  }
  return out;
}
}  // namespace

void check_checkpoint_destination(const TrainConfig& c) {
  if (c.checkpoint.empty()) return;
  // Refuses a device, folder, fifo or socket (or a link to one), and a folder that is missing or read-only.
  check_output_path(c.checkpoint, "--checkpoint");
  std::error_code ec;
  if (!c.resume && std::filesystem::exists(c.checkpoint, ec))
    KFAC_CHECK(c.overwrite, "checkpoint '", c.checkpoint,
               "' already exists; continue that run with --resume, or "
               "replace it with --overwrite");
}

void save_run(const std::string& path, const TrainConfig& config, torch::nn::Sequential& net,
              torch::optim::Optimizer* opt, QModelOptimizer* qmodel, const RunState& state) {
  torch::serialize::OutputArchive archive;
  archive.write("run", c10::IValue(identity(config)));
  archive.write("options", c10::IValue(training_options(config)));
  archive.write("next_step", c10::IValue(state.next_step));
  archive.write("skipped_steps", c10::IValue(state.skipped_steps));
  // One row per step: step, loss, seconds since the start, the step's own seconds, refreshed (0/1).
  auto history = torch::zeros({static_cast<int64_t>(state.history.size()), 5}, torch::kDouble);
  auto rows = history.accessor<double, 2>();
  for (size_t i = 0; i < state.history.size(); ++i) {
    const auto& h = state.history[i];
    const auto r = static_cast<int64_t>(i);
    rows[r][0] = static_cast<double>(h.step), rows[r][1] = h.train_loss, rows[r][2] = h.seconds;
    rows[r][3] = h.step_seconds, rows[r][4] = h.refreshed ? 1.0 : 0.0;
  }
  archive.write("history", history);
  torch::serialize::OutputArchive model(archive.compilation_unit()), optimizer(archive.compilation_unit());
  net->save(model);
  archive.write("model", model);
  if (opt) opt->save(optimizer);
  if (qmodel) qmodel->save(optimizer);
  archive.write("optimizer", optimizer);
  // Serialized in memory, then written by the checked atomic writer: LibTorch's file writer reports a failed write
  // (a full disk) from a destructor, which ends the process in std::terminate and leaves the .tmp behind.
  std::string bytes;
  archive.save_to([&bytes](const void* data, size_t size) {
    bytes.append(static_cast<const char*>(data), size);
    return size;
  });
  write_file_atomically(path, bytes);
}

RunState load_run(const std::string& path, const TrainConfig& config, torch::nn::Sequential& net,
                  torch::optim::Optimizer* opt, QModelOptimizer* qmodel) {
  KFAC_CHECK(std::ifstream(path).good(), "--resume: checkpoint '", path,
             "' does not exist; run without --resume "
             "first (with --checkpoint '",
             path, "')");
  verify_zip_crcs(path);
  torch::serialize::InputArchive archive;
  archive.load_from(path);
  c10::IValue v;
  archive.read("run", v);
  KFAC_CHECK(v.toStringRef() == identity(config), "checkpoint '", path, "' was written by a run of ", v.toStringRef(),
             " (model/method/step rule), not ", identity(config));
  if (archive.try_read("options", v)) {  // checkpoints from before this record have none to compare
    const auto saved = parse_options(v.toStringRef()), now = parse_options(training_options(config));
    std::string changed;
    for (const auto& [name, value] : now) {
      const auto it = saved.find(name);
      if (it != saved.end() && !same_value(it->second, value))
        changed.append("\n  --")
            .append(name)
            .append(": ")
            .append(it->second)
            .append(" in the checkpoint, ")
            .append(value)
            .append(" now");
    }
    KFAC_CHECK(changed.empty(), "--resume: checkpoint '", path,
               "' was written with other training options; resume "
               "with the checkpoint's values, or start a new run:",
               changed);
  }
  RunState s;
  archive.read("next_step", v);
  s.next_step = v.toInt();
  KFAC_CHECK(s.next_step <= config.steps, "--resume: checkpoint '", path, "' is at step ", s.next_step,
             ", beyond "
             "--steps ",
             config.steps, "; give --steps ", s.next_step, " or more");
  archive.read("skipped_steps", v);
  s.skipped_steps = v.toInt();
  torch::Tensor history;
  archive.read("history", history);
  KFAC_CHECK(history.dim() == 2 && history.scalar_type() == torch::kDouble &&
                 (history.size(1) == 3 || history.size(1) == 5),
             "checkpoint '", path, "': its loss history has shape ", history.sizes(), "; expected [steps, 5]");
  const auto rows = history.accessor<double, 2>();
  for (int64_t i = 0; i < history.size(0); ++i) {  // 3 columns: written before step times were kept
    HistoryPoint h{static_cast<int64_t>(rows[i][0]), rows[i][1], rows[i][2]};
    if (history.size(1) == 5) h.step_seconds = rows[i][3], h.refreshed = rows[i][4] != 0.0;
    s.history.push_back(h);
  }
  torch::serialize::InputArchive model, optimizer;
  archive.read("model", model);
  net->load(model);
  archive.read("optimizer", optimizer);
  if (opt) opt->load(optimizer);
  if (qmodel) qmodel->load(optimizer);
  return s;
}

}  // namespace kfac::tool
