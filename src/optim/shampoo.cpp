#include "kfac/optim/shampoo.h"

#include <ATen/ATen.h>

#include <cmath>

#include "kfac/errors.h"
#include "gradient_factor_fields.h"
#include "kfac/linalg/psd.h"

namespace kfac {

const OptionTable<ShampooOptions>& ShampooOptions::table() {
  using O = ShampooOptions;
  static const OptionTable<O> t(
      "shampoo", "Shampoo (kfac::Shampoo, Python's kronfac.Shampoo) with Adam grafting, as Distributed Shampoo runs it",
      detail::with_gradient_factor_fields<O>(
          {
              field<O>(KFAC_FIELD(O, lr), "Learning rate", bounded(positive())),
              field<O>(KFAC_FIELD(O, beta1), "Adam's first-moment decay (Shampoo: of the gradient it preconditions)",
                       bounded(between(0, 1, false, true))),
              field<O>(KFAC_FIELD(O, beta2), "Adam's second-moment decay (Shampoo: of the grafted Adam step)",
                       bounded(between(0, 1, false, true))),
              field<O>(KFAC_FIELD(O, eps), "Adam's ε in m̂ / (√v̂ + ε)", bounded(positive())),
              field<O>(KFAC_FIELD(O, weight_decay), "Decoupled weight decay λ: W ← W(1 − ηλ) before the update",
                       bounded(at_least(0))),
          },
          {field<O>(KFAC_FIELD(O, root_epsilon), "ε added to each factor's eigenvalues before the inverse fourth root",
                    bounded(positive())),
           field<O>(KFAC_FIELD(O, grafting),
                    "Size of Shampoo's step: adam (each tile's direction scaled to Adam's norm there) or none",
                    {std::nullopt, "", {"adam", "none"}})}));
  return t;
}

std::vector<std::pair<int64_t, int64_t>> block_ranges(int64_t n, int64_t size) {
  std::vector<std::pair<int64_t, int64_t>> ranges;
  for (int64_t begin = 0; begin < n; begin += size) ranges.emplace_back(begin, std::min(n, begin + size));
  return ranges;
}

namespace {

// (f / correction + ε I)^(−1/4) under eigh_psd's policy.
at::Tensor inverse_fourth_root(const at::Tensor& f, double correction, double epsilon, const std::string& what) {
  const auto eig = linalg::eigh_psd(f / correction, what);
  return at::matmul(eig.vectors * (eig.values + epsilon).pow(-0.25).unsqueeze(0), eig.vectors.t());
}

}  // namespace

Shampoo::Shampoo(std::vector<torch::optim::OptimizerParamGroup> groups, const ShampooOptions& defaults)
    : ParameterwiseOptimizerOf(std::move(groups), defaults, "shampoo") {
  validate_groups();
}

ParameterUpdate Shampoo::update(const at::Tensor& param, const at::Tensor& grad, const TensorState& state,
                                const torch::optim::OptimizerOptions& options, int64_t t, const std::string& name) {
  const auto& o = options_of(options);
  ParameterUpdate u;
  auto direction = adam_direction(grad, state, u.state, o.beta1(), o.beta2(), o.eps(), t);
  if (param.dim() >= 2) {
    const auto g = grad.reshape({grad.size(0), -1});
    const auto m_hat = u.state.at("exp_avg").reshape(g.sizes()) / (1 - std::pow(o.beta1(), static_cast<double>(t)));
    auto d = direction.reshape(g.sizes());
    const bool refresh = t % o.precondition_frequency() == 0;
    const double correction = 1 - std::pow(o.shampoo_beta(), static_cast<double>(t));
    const auto rows = block_ranges(g.size(0), o.max_preconditioner_dim());
    const auto cols = block_ranges(g.size(1), o.max_preconditioner_dim());
    for (size_t i = 0; i < rows.size(); ++i)
      for (size_t j = 0; j < cols.size(); ++j) {
        const auto tile = std::to_string(i) + "." + std::to_string(j);
        const auto slice = [&](const at::Tensor& x) {
          return x.slice(0, rows[i].first, rows[i].second).slice(1, cols[j].first, cols[j].second);
        };
        const auto gt = slice(g);
        auto& left = u.state["left." + tile] = gradient_factor(state, "left." + tile, gt.t(), o.shampoo_beta());
        auto& right = u.state["right." + tile] = gradient_factor(state, "right." + tile, gt, o.shampoo_beta());
        if (refresh) {
          try {
            auto l = inverse_fourth_root(left, correction, o.root_epsilon(), "Shampoo's left factor of " + name);
            auto r = inverse_fourth_root(right, correction, o.root_epsilon(), "Shampoo's right factor of " + name);
            u.state["left_root." + tile] = std::move(l);
            u.state["right_root." + tile] = std::move(r);
            u.refreshed = true;
          } catch (const NumericalError& e) {
            ++u.refresh_failures;
            u.messages.push_back(std::string(e.what()) + "; the previous roots are kept");
          }
        }
        const auto root = [&](const std::string& key) {
          const auto fresh = u.state.find(key);
          if (fresh != u.state.end()) return fresh->second;
          const auto old = state.find(key);
          return old == state.end() ? at::Tensor() : old->second;
        };
        const auto l = root("left_root." + tile), r = root("right_root." + tile);
        if (!l.defined()) continue;  // Adam's direction until the first roots
        auto p = at::matmul(at::matmul(l, slice(m_hat)), r);
        if (o.grafting() == "adam") p = p * (slice(d).norm() / p.norm().clamp_min(1e-30));
        slice(d).copy_(p);
      }
    direction = d.reshape(param.sizes());
  }
  const auto decayed = o.weight_decay() > 0 ? param * (1 - o.lr() * o.weight_decay()) : param;
  u.value = decayed - o.lr() * direction;
  return u;
}

}  // namespace kfac
