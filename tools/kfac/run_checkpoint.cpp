#include "run_checkpoint.h"

#include <torch/serialize/archive.h>
#include <torch/torch.h>

#include <cstdio>
#include <fstream>

#include "kfac/errors.h"

namespace kfac::tool {

namespace {
std::string identity(const TrainConfig& c) { return c.model + "/" + c.method + "/" + c.step_rule; }
}  // namespace

void save_run(const std::string& path, const TrainConfig& config, torch::nn::Sequential& net,
              torch::optim::Optimizer* opt, QModelOptimizer* qmodel, const RunState& state) {
  torch::serialize::OutputArchive archive;
  archive.write("run", c10::IValue(identity(config)));
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
  const std::string tmp = path + ".tmp";
  archive.save_to(tmp);
  KFAC_CHECK(std::rename(tmp.c_str(), path.c_str()) == 0, "cannot move checkpoint '", tmp, "' to '", path, "'");
}

RunState load_run(const std::string& path, const TrainConfig& config, torch::nn::Sequential& net,
                  torch::optim::Optimizer* opt, QModelOptimizer* qmodel) {
  KFAC_CHECK(std::ifstream(path).good(), "--resume: checkpoint '", path, "' does not exist; run without --resume "
             "first (with --checkpoint '", path, "')");
  torch::serialize::InputArchive archive;
  archive.load_from(path);
  c10::IValue v;
  archive.read("run", v);
  KFAC_CHECK(v.toStringRef() == identity(config), "checkpoint '", path, "' was written by a run of ",
             v.toStringRef(), " (model/method/step rule), not ", identity(config));
  RunState s;
  archive.read("next_step", v);
  s.next_step = v.toInt();
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
