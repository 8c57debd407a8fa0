#include "kfac/optim/kfac_optimizer.h"

#include <ATen/ATen.h>
#include <torch/serialize/archive.h>

#include <cmath>

#include "kfac/distributed/collectives.h"
#include "kfac/errors.h"
#include "util/serialize.h"

namespace kfac {

const OptionTable<KfacOptimizerOptions>& KfacOptimizerOptions::table() {
  using O = KfacOptimizerOptions;
  static const OptionTable<O> t(
      "optimizer", "The K-FAC optimizer's step rule (KfacOptimizer, Python's KFACOptimizer)",
      {field<O>(KFAC_FIELD(O, lr), "Learning rate", bounded(positive())),
       field<O>(KFAC_FIELD(O, momentum), "Heavy-ball momentum", bounded(between(0, 1, false, true))),
       field<O>(KFAC_FIELD(O, weight_decay), "L2 weight decay, added to the direction after preconditioning",
                bounded(at_least(0))),
       field<O>(KFAC_FIELD(O, kl_clip), "KL-clip bound on lr² · |vᵀg| (Ba, Grosse & Martens 2017); 0 disables",
                bounded(at_least(0)))});
  return t;
}

void validate(const KfacOptimizerOptions& o) { KfacOptimizerOptions::table().validate(o); }

KfacOptimizer::KfacOptimizer(std::vector<at::Tensor> params, std::shared_ptr<Preconditioner> preconditioner,
                             const KfacOptimizerOptions& options)
    : KfacOptimizer(
          std::vector<torch::optim::OptimizerParamGroup>{torch::optim::OptimizerParamGroup(std::move(params))},
          std::move(preconditioner), options) {}

KfacOptimizer::KfacOptimizer(std::vector<torch::optim::OptimizerParamGroup> groups,
                             std::shared_ptr<Preconditioner> preconditioner, const KfacOptimizerOptions& defaults)
    : torch::optim::Optimizer(std::move(groups), std::make_unique<KfacOptimizerOptions>(defaults)),
      preconditioner_(std::move(preconditioner)) {
  KFAC_CHECK(!param_groups_.empty(), "KfacOptimizer needs at least one parameter group");
  for (auto& group : param_groups_) {
    validate(options(group));
    momentum_.emplace_back(group.params().size());
  }
  KFAC_CHECK(preconditioner_ != nullptr, "KfacOptimizer needs a preconditioner");
}

KfacOptimizerOptions& KfacOptimizer::options(torch::optim::OptimizerParamGroup& group) {
  return static_cast<KfacOptimizerOptions&>(group.options());
}

std::vector<at::Tensor> KfacOptimizer::all_parameters() const {
  std::vector<at::Tensor> params;
  for (const auto& group : param_groups_)
    for (const auto& p : group.params()) params.push_back(p);
  return params;
}

at::Tensor KfacOptimizer::step(LossClosure closure) {
  at::NoGradGuard no_grad;
  at::Tensor loss;
  if (closure) {
    at::AutoGradMode enable(true);
    loss = closure();
  }
  for (auto& group : param_groups_) validate(options(group));
  // data-parallel: every parameter's gradient averaged over ranks
  if (preconditioner_->communicator().size() > 1)
    all_reduce_gradients(preconditioner_->communicator(), all_parameters());
  last_ = preconditioner_->step();
  if (last_.skipped) return loss;

  const auto& first = options(param_groups_.front());
  const double vg = std::abs(last_.grad_dot_direction);
  if (first.kl_clip() > 0 && vg > 0)
    last_.clip_factor = std::min(1.0, std::sqrt(first.kl_clip() / (first.lr() * first.lr() * vg)));
  preconditioner_->scale_gradients(last_.clip_factor);

  // The whole update is computed and checked first: weights and momentum change only if every new value is finite.
  struct Update {
    at::Tensor parameter, value, velocity;
    at::Tensor* momentum;
  };
  std::vector<Update> updates;
  std::vector<at::Tensor> sums;
  for (size_t g = 0; g < param_groups_.size(); ++g) {
    auto& params = param_groups_[g].params();
    const auto& o = options(param_groups_[g]);
    for (size_t i = 0; i < params.size(); ++i) {
      auto& p = params[i];
      if (!p.grad().defined()) continue;
      Update u{p, {}, {}, &momentum_[g][i]};
      auto d = o.weight_decay() > 0 ? p.grad() + o.weight_decay() * p.detach() : p.grad();
      if (o.momentum() > 0) {
        u.velocity = u.momentum->defined() ? *u.momentum * o.momentum() + d : d.clone();
        d = u.velocity;
      }
      u.value = at::add(p.detach(), d, -o.lr());  // the kernel add_ would use: the same bits
      sums.push_back(u.value.sum().to(at::kDouble));
      updates.push_back(std::move(u));
    }
  }
  if (!sums.empty() && !at::isfinite(at::stack(sums)).all().item<bool>()) {
    last_.skipped = true;
    last_.messages.push_back("step " + std::to_string(last_.step) + ": the update (lr " + std::to_string(first.lr()) +
                             ") would make weights non-finite; step skipped, weights and momentum unchanged "
                             "(lower the learning rate, or enable kl_clip)");
    return loss;
  }
  for (auto& u : updates) {
    if (u.velocity.defined()) *u.momentum = u.velocity;
    u.parameter.detach().copy_(u.value);
  }
  return loss;
}

void KfacOptimizer::save(torch::serialize::OutputArchive& archive) const {
  // Group 0 under the names a one-group checkpoint has always used.
  for (size_t g = 0; g < param_groups_.size(); ++g) {
    const auto lr = static_cast<const KfacOptimizerOptions&>(param_groups_[g].options()).lr();
    archive.write(g == 0 ? "lr" : "lr_group_" + std::to_string(g), c10::IValue(lr));
  }
  std::vector<at::Tensor> momentum;
  for (const auto& group : momentum_) momentum.insert(momentum.end(), group.begin(), group.end());
  write_tensors(archive, "momentum_", momentum);
  write_nested(archive, "preconditioner", [&](auto& nested) { preconditioner_->save(nested); });
}

void KfacOptimizer::load(torch::serialize::InputArchive& archive) {
  for (size_t g = 0; g < param_groups_.size(); ++g) {
    c10::IValue lr;
    if (g == 0)
      archive.read("lr", lr);
    else if (!archive.try_read("lr_group_" + std::to_string(g), lr))
      continue;
    options(param_groups_[g]).lr(lr.toDouble());
  }
  const auto momentum = read_tensors(archive, "momentum_", all_parameters(), "momentum of parameter");
  size_t k = 0;
  for (auto& group : momentum_)
    for (auto& m : group) m = momentum.at(k++);
  read_nested(archive, "preconditioner", [&](auto& nested) { preconditioner_->load(nested); });
}

}  // namespace kfac
