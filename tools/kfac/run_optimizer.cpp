#include "run_optimizer.h"

#include <algorithm>

#include "baselines.h"
#include "kfac/errors.h"
#include "kfac/fisher/likelihood.h"
#include "kfac/optim/kfac_optimizer.h"
#include "kfac/optim/parameterwise_optimizer.h"

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
    KFAC_CHECK(baseline->has_fallback_group || !cfg.fallback_lr,
               "--fallback-lr sets the rate of a K-FAC method's fallback parameters and of Muon's AdamW group; ",
               cfg.method, " has one rate (use --lr)");
    result.fallback_lr = cfg.fallback_lr.value_or(find_baseline("adamw")->default_lr(cfg.model));
    auto built = baseline->build(*model.net, {result.lr, result.momentum, cfg.weight_decay, result.fallback_lr, &cfg});
    opt_ = std::move(built.optimizer);
    result.registration = std::move(built.report);
    base_lr_ = std::move(built.base_lr);
    return;
  }
  result.fallback_lr = cfg.fallback_lr.value_or(result.lr);
  auto options = with_method(cfg.preconditioner, cfg.method);
  options.seed(cfg.seed);
  precond_ = std::make_shared<Preconditioner>(*model.net, options, std::move(comm));
  result.preconditioner_options = options;
  KFAC_CHECK(cfg.step_rule == "kl-clip" || cfg.step_rule == "qmodel", "unknown step rule '", cfg.step_rule,
             "'; valid: kl-clip, qmodel");
  KFAC_CHECK(cfg.step_rule != "qmodel" || (cfg.lr_schedule == "constant" && cfg.warmup_steps == 0 && !cfg.fallback_lr),
             "--step-rule qmodel chooses its own step sizes; --lr-schedule, --warmup-steps and --fallback-lr apply to "
             "the kl-clip step rule");
  if (cfg.step_rule == "qmodel") {
    qmodel_ = std::make_unique<QModelOptimizer>(precond_, cfg.qmodel);
    return;
  }
  const auto defaults =
      KfacOptimizerOptions(result.lr).momentum(result.momentum).weight_decay(cfg.weight_decay).kl_clip(result.kl_clip);
  // Group 0: everything but the fallback parameters (its rate is the one the KL clip reads); group 1: those, when
  // they have a rate of their own.
  std::vector<torch::optim::OptimizerParamGroup> groups;
  base_lr_ = {result.lr};
  if (!cfg.fallback_lr || precond_->registration().fallback.empty()) {
    groups.emplace_back(params);
  } else {
    const auto& fallback = precond_->registration().fallback;
    std::vector<at::Tensor> layer_params, fallback_params;
    for (const auto& p : params) {
      const bool in_fallback = std::any_of(fallback.begin(), fallback.end(), [&](const auto& f) {
        return parameter_storage(f.parameter) == parameter_storage(p);
      });
      (in_fallback ? fallback_params : layer_params).push_back(p);
    }
    groups.emplace_back(layer_params);
    groups.emplace_back(fallback_params,
                        std::make_unique<KfacOptimizerOptions>(KfacOptimizerOptions(defaults).lr(*cfg.fallback_lr)));
    base_lr_.push_back(*cfg.fallback_lr);
  }
  opt_ = std::make_unique<KfacOptimizer>(std::move(groups), precond_, defaults);
}

void RunOptimizer::scale_lr(double factor) {
  if (!opt_) return;  // the quadratic model has no rate
  auto& groups = opt_->param_groups();
  for (size_t i = 0; i < groups.size() && i < base_lr_.size(); ++i) groups[i].options().set_lr(base_lr_[i] * factor);
}

RunOptimizer::Capture RunOptimizer::before_forward(const at::Tensor& x, const at::Tensor& y, StepProfile& profile) {
  if (!precond_) return Capture::None;
  const auto start = std::chrono::steady_clock::now();
  const auto& fisher = precond_->options().fisher_options();
  auto capture = Capture::None;
  if (fisher.stats_fraction() < 1.0) {  // a subsample gets its own small forward
    precond_->update_statistics([this](const at::Tensor& in) { return model_.net->forward(in); }, x, model_.loss, y);
  } else if (fisher.fisher() == FisherType::Empirical) {
    // The empirical Fisher's rows are the loss's own per-example gradients: the training backward delivers them
    // (scaled back by the terms the loss averages), the same statistics as a separate pass at no extra cost.
    if (precond_->capture_backward(static_cast<double>(loss_terms(y, model_.loss))))
      capture = Capture::TrainingBackward;
  } else if (precond_->capture_forward()) {
    capture = Capture::SharedForward;
  }
  profile.lap(StepProfile::StatisticsPass, start);
  return capture;
}

void RunOptimizer::after_backward(Capture capture, const at::Tensor& output, const at::Tensor& y,
                                  StepProfile& profile) {
  if (capture != Capture::SharedForward) return;
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
  if (const auto* matrix = dynamic_cast<const ParameterwiseOptimizer*>(opt_.get())) {
    const auto& st = matrix->last_stats();
    return {st.skipped, st.refreshed, st.skipped && !st.messages.empty() ? st.messages.back() : ""};
  }
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
