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
  archive.write("timed_seconds", c10::IValue(state.timed_seconds));
  archive.write("timed_steps", c10::IValue(state.timed_steps));
  auto history = torch::zeros({static_cast<int64_t>(state.history.size()), 3}, torch::kDouble);
  for (size_t i = 0; i < state.history.size(); ++i) {
    const auto& h = state.history[i];
    history[i][0] = static_cast<double>(h.step), history[i][1] = h.train_loss, history[i][2] = h.seconds;
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
  archive.read("timed_seconds", v);
  s.timed_seconds = v.toDouble();
  archive.read("timed_steps", v);
  s.timed_steps = v.toInt();
  torch::Tensor history;
  archive.read("history", history);
  for (int64_t i = 0; i < history.size(0); ++i)
    s.history.push_back({static_cast<int64_t>(history[i][0].item<double>()), history[i][1].item<double>(),
                         history[i][2].item<double>()});
  torch::serialize::InputArchive model, optimizer;
  archive.read("model", model);
  net->load(model);
  archive.read("optimizer", optimizer);
  if (opt) opt->load(optimizer);
  if (qmodel) qmodel->load(optimizer);
  return s;
}

}  // namespace kfac::tool
