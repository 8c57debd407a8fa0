#include "run_optimizer.h"

#include "baselines.h"
#include "kfac/errors.h"
#include "kfac/fisher/likelihood.h"
#include "kfac/optim/kfac_optimizer.h"

namespace kfac::tool {

RunOptimizer::RunOptimizer(const TrainConfig& cfg, Model& model, std::shared_ptr<Communicator> comm,
                           TrainResult& result)
    : model_(model), cfg_(cfg) {
  const auto* baseline = find_baseline(cfg.method);
  result.lr = cfg.lr.value_or(baseline ? baseline->default_lr(cfg.model) : default_lr(cfg.method, cfg.model));
  result.momentum = cfg.momentum.value_or(baseline ? baseline->default_momentum : default_momentum(cfg.method));
  result.kl_clip = cfg.kl_clip.value_or(default_kl_clip(cfg.model));
  auto params = model.net->parameters();
  if (baseline) {
    opt_ = baseline->build(params, {result.lr, result.momentum, cfg.weight_decay});
    return;
  }
  auto options = with_method(cfg.preconditioner, cfg.method);
  options.seed(cfg.seed);
  precond_ = std::make_shared<Preconditioner>(*model.net, options, std::move(comm));
  result.preconditioner_options = options;
  KFAC_CHECK(cfg.step_rule == "kl-clip" || cfg.step_rule == "qmodel", "unknown step rule '", cfg.step_rule,
             "'; valid: kl-clip, qmodel");
  if (cfg.step_rule == "qmodel")
    qmodel_ = std::make_unique<QModelOptimizer>(precond_, cfg.qmodel);
  else
    opt_ = std::make_unique<KfacOptimizer>(params, precond_,
                                           KfacOptimizerOptions(result.lr)
                                               .momentum(result.momentum)
                                               .weight_decay(cfg.weight_decay)
                                               .kl_clip(result.kl_clip));
}

bool RunOptimizer::before_forward(const at::Tensor& x, const at::Tensor& y, StepProfile& profile) {
  if (!precond_) return false;
  const auto start = std::chrono::steady_clock::now();
  // Statistics on the whole batch share the training forward; a subsample gets its own small forward.
  const bool shared = precond_->options().stats_fraction() == 1.0 && precond_->capture_forward();
  if (!shared)
    precond_->update_statistics([this](const at::Tensor& in) { return model_.net->forward(in); }, x, model_.loss, y);
  profile.lap(StepProfile::StatisticsPass, start);
  return shared;
}

void RunOptimizer::after_backward(bool shared_forward, const at::Tensor& output, const at::Tensor& y,
                                  StepProfile& profile) {
  if (!shared_forward) return;
  const auto start = std::chrono::steady_clock::now();
  precond_->statistics_from_forward(output, model_.loss, y);
  profile.lap(StepProfile::StatisticsPass, start);
}

RunOptimizer::Outcome RunOptimizer::step(const at::Tensor& output, double loss, const std::function<double()>& loss_at,
                                         StepProfile& profile) {
  // The last message of a skipped step says why (the direction or the update was not finite) and what to change.
  const auto reason = [](const StepStats& st) { return st.skipped && !st.messages.empty() ? st.messages.back() : ""; };
  if (qmodel_) {
    const auto st = qmodel_->step(output, model_.loss, loss, loss_at);
    return {st.preconditioner.skipped, st.preconditioner.refreshed, reason(st.preconditioner)};
  }
  const auto start = std::chrono::steady_clock::now();
  opt_->step();
  profile.lap(StepProfile::OptimizerStep, start);
  if (!precond_) return {};
  const auto& st = static_cast<KfacOptimizer&>(*opt_).last_stats();
  profile.add(StepProfile::FactorUpdate, st.seconds_statistics);
  profile.add(StepProfile::Refresh, st.seconds_refresh);
  profile.add(StepProfile::Precondition, st.seconds_precondition);
  profile.add(StepProfile::GlobalStage, st.seconds_global);
  return {st.skipped, st.refreshed, reason(st)};
}

void RunOptimizer::use_averages_for_evaluation() {
  if (qmodel_ && cfg_.qmodel.averaging_decay() > 0) qmodel_->swap_averages();
}

}  // namespace kfac::tool
