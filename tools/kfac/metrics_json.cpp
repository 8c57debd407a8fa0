// write_metrics_json (train.h): a run's options, results, timing, runtime report and history as JSON.
#include <nlohmann/json.hpp>

#include <cmath>

#include "atomic_file.h"
#include "baselines.h"
#include "option_flags.h"
#include "runtime_report.h"
#include "train.h"

namespace kfac::tool {

namespace {
nlohmann::json finite_or_null(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(); }
}  // namespace

void write_metrics_json(const TrainResult& r, const std::string& path) {
  nlohmann::json j;
  j["method"] = r.config.method;
  j["model"] = r.config.model;
  j["steps"] = r.config.steps;
  j["batch_size"] = r.config.batch_size;
  j["lr"] = r.lr;
  j["lr_schedule"] = r.config.lr_schedule;
  j["warmup_steps"] = r.config.warmup_steps;
  const auto* baseline = find_baseline(r.config.method);
  if (r.preconditioner_options || (baseline && baseline->has_fallback_group)) j["fallback_lr"] = r.fallback_lr;
  j["momentum"] = r.momentum;
  j["kl_clip"] = r.kl_clip;
  j["seed"] = r.config.seed;
  j["step_rule"] = r.config.step_rule;
  if (r.preconditioner_options) j["preconditioner_options"] = options_json(*r.preconditioner_options);
  if (baseline && baseline->table) {  // the method's own options, as its table names them
    auto& o = j["optimizer_options"] = nlohmann::json::object();
    const auto& specs = baseline->table->specs();
    for (size_t i = 0; i < specs.size(); ++i)
      if (!set_by_the_tool_flags(specs[i]))
        o[specs[i].name] = option_json(baseline->table->get(baseline->block(r.config), i));
  }
  j["train_loss"] = r.train_loss;
  if (!std::isnan(r.train_squared_error)) j["train_squared_error"] = r.train_squared_error;
  j["test_loss"] = r.test_loss;
  j["seconds_per_step"] = r.seconds_per_step;
  j["timing"] = {{"definition", "wall time per step over every step from step " + std::to_string(kTimingWarmup) +
                                    " on, refresh steps included"},
                 {"mean", r.timing.mean},
                 {"median", r.timing.median},
                 {"refresh_step_mean", finite_or_null(r.timing.refresh_mean)},
                 {"timed_steps", r.timing.steps},
                 {"refresh_steps", r.timing.refresh_steps}};
  j["skipped_steps"] = r.skipped_steps;
  j["peak_rss_mib"] = r.peak_rss_mib;
  j["world_size"] = r.world_size;
  if (!r.registration.empty()) j["registration"] = r.registration;
  for (const auto& b : r.blocks)
    j["blocks"].push_back({{"name", b.name},
                           {"kind", b.kind},
                           {"form", b.form},
                           {"structure", b.structure},
                           {"memory_bytes", b.memory_bytes}});
  j["bytes_per_step"] = r.bytes_per_step;
  for (const auto& [name, seconds] : r.profile) {
    auto key = name;
    key.erase(0, key.find_first_not_of(' '));
    j["profile_seconds_per_step"][key] = seconds;
  }
  j["history"] = nlohmann::json::array();
  for (const auto& h : r.history)
    j["history"].push_back({{"step", h.step},
                            {"train_loss", h.train_loss},
                            {"seconds", h.seconds},
                            {"step_seconds", finite_or_null(h.step_seconds)},
                            {"refreshed", h.refreshed}});
  j["runtime"] = runtime_json(r.runtime);
  write_output(path, j.dump(1) + "\n");
}

}  // namespace kfac::tool
