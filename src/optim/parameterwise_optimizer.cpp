#include "kfac/optim/parameterwise_optimizer.h"

#include <ATen/ATen.h>
#include <torch/serialize/archive.h>

#include <sstream>

#include "kfac/errors.h"
#include "kfac/linalg/factor.h"
#include "util/serialize.h"
#include "util/text.h"

namespace kfac {

namespace {
std::string shape_text(const at::Tensor& t) {
  std::ostringstream s;
  s << t.sizes();
  return s.str();
}
std::string key(size_t g, size_t i) { return std::to_string(g) + "." + std::to_string(i); }
std::vector<std::string> split_names(const std::string& text) {
  std::vector<std::string> names;
  std::istringstream in(text);
  for (std::string name; std::getline(in, name, ',');)
    if (!name.empty()) names.push_back(name);
  return names;
}
}  // namespace

std::string parameter_name(size_t group, size_t index, const at::Tensor& param) {
  return "parameter " + std::to_string(index) + " of group " + std::to_string(group) + " " + shape_text(param);
}

ParameterwiseOptimizer::ParameterwiseOptimizer(std::vector<torch::optim::OptimizerParamGroup> groups,
                                               std::unique_ptr<torch::optim::OptimizerOptions> defaults,
                                               std::string method)
    : torch::optim::Optimizer(std::move(groups), std::move(defaults)), method_(std::move(method)) {
  KFAC_CHECK(!param_groups_.empty(), method_, " needs at least one parameter group");
  for (const auto& group : param_groups_) state_.emplace_back(group.params().size());
}

void ParameterwiseOptimizer::validate_groups() const {
  for (size_t g = 0; g < param_groups_.size(); ++g) validate_group(param_groups_[g].options(), g);
}

std::vector<torch::optim::OptimizerParamGroup> one_group(std::vector<at::Tensor> params) {
  return {torch::optim::OptimizerParamGroup(std::move(params))};
}

at::Tensor ParameterwiseOptimizer::step(LossClosure closure) {
  at::NoGradGuard no_grad;
  at::Tensor loss;
  if (closure) {
    at::AutoGradMode enable(true);
    loss = closure();
  }
  validate_groups();
  last_ = {};
  last_.step = step_ + 1;
  struct Pending {
    size_t group, index;
    ParameterUpdate update;
  };
  std::vector<Pending> pending;
  std::vector<at::Tensor> sums;
  std::vector<std::string> names;
  // The gradients first (one check for all): an update from a non-finite gradient is never computed.
  for (size_t g = 0; g < param_groups_.size(); ++g)
    for (size_t i = 0; i < param_groups_[g].params().size(); ++i) {
      const auto& p = param_groups_[g].params()[i];
      if (!p.grad().defined()) continue;
      sums.push_back(p.grad().sum(at::kDouble));  // in double: large finite entries must not overflow
      names.push_back(parameter_name(g, i, p));
    }
  const auto first_non_finite = [&]() -> std::string {
    if (sums.empty()) return "";
    const auto finite = at::isfinite(at::stack(sums)).to(at::kCPU);
    for (int64_t k = 0; k < finite.numel(); ++k)
      if (!finite[k].item<bool>()) return names[static_cast<size_t>(k)];
    return "";
  };
  if (const auto bad = first_non_finite(); !bad.empty()) {
    last_.skipped = true;
    last_.step = step_;
    last_.messages.push_back("step " + std::to_string(step_ + 1) + ": non-finite gradient in " + bad + "; " + method_ +
                             " skipped the step, weights and state unchanged");
    return loss;
  }
  sums.clear();
  names.clear();
  for (size_t g = 0; g < param_groups_.size(); ++g) {
    const auto& params = param_groups_[g].params();
    for (size_t i = 0; i < params.size(); ++i) {
      const auto& p = params[i];
      if (!p.grad().defined()) continue;
      const auto name = parameter_name(g, i, p);
      auto u = update(p.detach(), p.grad(), state_[g][i], param_groups_[g].options(), step_ + 1, name);
      sums.push_back(u.value.sum(at::kDouble));
      names.push_back(name);
      last_.refreshed = last_.refreshed || u.refreshed;
      last_.refresh_failures += u.refresh_failures;
      last_.messages.insert(last_.messages.end(), u.messages.begin(), u.messages.end());
      pending.push_back({g, i, std::move(u)});
    }
  }
  if (const auto bad = first_non_finite(); !bad.empty()) {
    last_.skipped = true;
    last_.step = step_;
    last_.messages.push_back("step " + std::to_string(step_ + 1) + ": the update of " + bad + " is not finite; " +
                             method_ + " skipped the step, weights and state unchanged (lower the learning rate)");
    return loss;
  }
  for (auto& [g, i, u] : pending) {
    param_groups_[g].params()[i].detach().copy_(u.value);
    for (auto& [name, tensor] : u.state) state_[g][i][name] = std::move(tensor);
  }
  ++step_;
  return loss;
}

void ParameterwiseOptimizer::save(torch::serialize::OutputArchive& archive) const {
  archive.write("method", c10::IValue(method_));
  archive.write("step", c10::IValue(step_));
  for (size_t g = 0; g < param_groups_.size(); ++g) {
    archive.write("lr." + std::to_string(g), c10::IValue(param_groups_[g].options().get_lr()));
    for (size_t i = 0; i < state_[g].size(); ++i) {
      std::vector<std::string> entries;
      for (const auto& [name, tensor] : state_[g][i]) {
        entries.push_back(name);
        archive.write("state." + key(g, i) + "." + name, tensor);
      }
      archive.write("entries." + key(g, i), c10::IValue(join(entries, ",")));
      archive.write("shape." + key(g, i), c10::IValue(shape_text(param_groups_[g].params()[i])));
    }
  }
}

void ParameterwiseOptimizer::load(torch::serialize::InputArchive& archive) {
  const auto saved = read_value(archive, "method").toStringRef();
  KFAC_CHECK(saved == method_, "this checkpoint holds a ", saved, " optimizer's state, not ", method_, "'s");
  decltype(state_) state(state_.size());
  for (size_t g = 0; g < param_groups_.size(); ++g) {
    const auto& params = param_groups_[g].params();
    c10::IValue shape;
    KFAC_CHECK(!archive.try_read("shape." + key(g, params.size()), shape), "the checkpoint's group ", g,
               " has more parameters than this optimizer's (", params.size(), ")");
    for (size_t i = 0; i < params.size(); ++i) {
      KFAC_CHECK(archive.try_read("shape." + key(g, i), shape), "the checkpoint has no state for ",
                 parameter_name(g, i, params[i]), ": it was saved with other parameter groups");
      KFAC_CHECK(shape.toStringRef() == shape_text(params[i]), "the checkpoint's ", parameter_name(g, i, params[i]),
                 " has shape ", shape.toStringRef(), ": it is another model's");
      state[g].emplace_back();
      const auto entries = read_value(archive, "entries." + key(g, i)).toStringRef();
      for (const auto& name : split_names(entries)) {
        at::Tensor t;
        archive.read("state." + key(g, i) + "." + name, t);
        state[g][i][name] = t.dim() == 0 ? t : t.to(params[i].device());
      }
    }
  }
  for (size_t g = 0; g < param_groups_.size(); ++g) {
    c10::IValue lr;
    if (archive.try_read("lr." + std::to_string(g), lr)) param_groups_[g].options().set_lr(lr.toDouble());
  }
  state_ = std::move(state);
  step_ = read_value(archive, "step").toInt();
}

at::Tensor adam_direction(const at::Tensor& grad, const TensorState& state, TensorState& out, double beta1,
                          double beta2, double eps, int64_t t, const std::string& prefix) {
  const auto get = [&](const std::string& name) {
    const auto it = state.find(prefix + name);
    return it == state.end() ? at::zeros_like(grad) : it->second;
  };
  auto m = at::lerp(get("exp_avg"), grad, 1 - beta1);
  auto v = at::lerp(get("exp_avg_sq"), grad * grad, 1 - beta2);
  const double c1 = 1 - std::pow(beta1, static_cast<double>(t)), c2 = 1 - std::pow(beta2, static_cast<double>(t));
  auto direction = (m / c1) / ((v / c2).sqrt() + eps);
  out[prefix + "exp_avg"] = std::move(m);
  out[prefix + "exp_avg_sq"] = std::move(v);
  return direction;
}

}  // namespace kfac

namespace kfac {

at::Tensor gradient_factor(const TensorState& state, const std::string& key, const at::Tensor& x, double beta) {
  const auto it = state.find(key);
  auto f = it == state.end() ? at::zeros({x.size(-1), x.size(-1)}, x.options()) : it->second.clone();
  linalg::factor_update_(f, x, beta, 1 - beta);
  return f;
}

}  // namespace kfac
