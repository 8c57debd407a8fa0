#include "kfac/optim/kfac_optimizer.h"

#include <ATen/ATen.h>
#include <torch/serialize/archive.h>

#include <cmath>

#include "kfac/distributed/collectives.h"
#include "kfac/errors.h"
#include "kfac/util/serialize.h"

namespace kfac {

void validate(const KfacOptimizerOptions& o) {
  KFAC_CHECK(std::isfinite(o.lr()) && o.lr() > 0, "lr must be finite and > 0, got ", o.lr());
  KFAC_CHECK(o.momentum() >= 0 && o.momentum() < 1, "momentum must be in [0, 1), got ", o.momentum());
  KFAC_CHECK(std::isfinite(o.weight_decay()) && o.weight_decay() >= 0, "weight_decay must be >= 0, got ",
             o.weight_decay());
  KFAC_CHECK(std::isfinite(o.kl_clip()) && o.kl_clip() >= 0, "kl_clip must be >= 0 (0 disables), got ", o.kl_clip());
}

KfacOptimizer::KfacOptimizer(std::vector<at::Tensor> params, std::shared_ptr<Preconditioner> preconditioner,
                             const KfacOptimizerOptions& options)
    : torch::optim::Optimizer({torch::optim::OptimizerParamGroup(std::move(params))},
                              std::make_unique<KfacOptimizerOptions>(options)),
      preconditioner_(std::move(preconditioner)) {
  validate(options);
  KFAC_CHECK(preconditioner_ != nullptr, "KfacOptimizer needs a preconditioner");
  momentum_.resize(param_groups_.front().params().size());
}

KfacOptimizerOptions& KfacOptimizer::options() {
  return static_cast<KfacOptimizerOptions&>(param_groups_.front().options());
}

at::Tensor KfacOptimizer::step(LossClosure closure) {
  at::NoGradGuard no_grad;
  at::Tensor loss;
  if (closure) {
    at::AutoGradMode enable(true);
    loss = closure();
  }
  auto& o = options();
  validate(o);
  if (preconditioner_->communicator().size() > 1) {  // data-parallel: every parameter's gradient averaged over ranks
    std::vector<at::Tensor> params;
    for (const auto& group : param_groups_)
      for (const auto& p : group.params()) params.push_back(p);
    all_reduce_gradients(preconditioner_->communicator(), params);
  }
  last_ = preconditioner_->step();
  if (last_.skipped) return loss;

  const double lr = o.lr();
  const double vg = std::abs(last_.grad_dot_direction);
  if (o.kl_clip() > 0 && vg > 0) last_.clip_factor = std::min(1.0, std::sqrt(o.kl_clip() / (lr * lr * vg)));
  preconditioner_->scale_gradients(last_.clip_factor);

  // The whole update is computed and checked first: weights and momentum change only if every new value is finite.
  auto& params = param_groups_.front().params();
  std::vector<at::Tensor> updated(params.size()), velocity(params.size()), sums;
  for (size_t i = 0; i < params.size(); ++i) {
    auto& p = params[i];
    if (!p.grad().defined()) continue;
    auto d = o.weight_decay() > 0 ? p.grad() + o.weight_decay() * p.detach() : p.grad();
    if (o.momentum() > 0) {
      velocity[i] = momentum_[i].defined() ? momentum_[i] * o.momentum() + d : d.clone();
      d = velocity[i];
    }
    updated[i] = at::add(p.detach(), d, -lr);  // the kernel add_ would use: the same bits
    sums.push_back(updated[i].sum().to(at::kDouble));
  }
  if (!sums.empty() && !at::isfinite(at::stack(sums)).all().item<bool>()) {
    last_.skipped = true;
    last_.messages.push_back("step " + std::to_string(last_.step) + ": the update (lr " + std::to_string(lr) +
                             ") would make weights non-finite; step skipped, weights and momentum unchanged "
                             "(lower the learning rate, or enable kl_clip)");
    return loss;
  }
  for (size_t i = 0; i < params.size(); ++i) {
    if (!updated[i].defined()) continue;
    if (velocity[i].defined()) momentum_[i] = velocity[i];
    params[i].detach().copy_(updated[i]);
  }
  return loss;
}

void KfacOptimizer::save(torch::serialize::OutputArchive& archive) const {
  archive.write("lr", c10::IValue(static_cast<const KfacOptimizerOptions&>(param_groups_.front().options()).lr()));
  write_tensors(archive, "momentum_", momentum_);
  write_preconditioner(archive, "preconditioner", *preconditioner_);
}

void KfacOptimizer::load(torch::serialize::InputArchive& archive) {
  c10::IValue lr;
  archive.read("lr", lr);
  options().lr(lr.toDouble());
  momentum_ = read_tensors(archive, "momentum_", param_groups_.front().params(), "momentum of parameter");
  read_preconditioner(archive, "preconditioner", *preconditioner_);
}

}  // namespace kfac
