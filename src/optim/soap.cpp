#include "kfac/optim/soap.h"

#include <ATen/ATen.h>

#include <cmath>

#include "kfac/errors.h"
#include "gradient_factor_fields.h"
#include "kfac/linalg/psd.h"

namespace kfac {

const OptionTable<SoapOptions>& SoapOptions::table() {
  using O = SoapOptions;
  static const OptionTable<O> t(
      "soap", "SOAP (kfac::Soap, Python's kronfac.SOAP): Adam in the eigenbasis of Shampoo's factors",
      detail::with_gradient_factor_fields<O>(
          {
              field<O>(KFAC_FIELD(O, lr), "Learning rate", bounded(positive())),
              field<O>(KFAC_FIELD(O, beta1), "Adam's first-moment decay", bounded(between(0, 1, false, true))),
              field<O>(KFAC_FIELD(O, beta2), "Adam's second-moment decay (SOAP: in the eigenbasis)",
                       bounded(between(0, 1, false, true))),
              field<O>(KFAC_FIELD(O, eps), "Adam's ε in m̂ / (√v̂ + ε)", bounded(positive())),
              field<O>(KFAC_FIELD(O, weight_decay), "Decoupled weight decay λ: W ← W(1 − ηλ) after the update",
                       bounded(at_least(0))),
          },
          {field<O>(KFAC_FIELD(O, basis_refresh),
                    "How SOAP refreshes its eigenbases: qr (one power iteration and a QR from the previous basis, "
                    "published) or eigh (a full eigendecomposition)",
                    {std::nullopt, "", {"qr", "eigh"}}),
           field<O>(KFAC_FIELD(O, normalize_grads), "Scale SOAP's direction to unit root-mean-square")}));
  return t;
}

namespace {

// Eigenvectors of a factor, largest eigenvalue first (the published code's torch.flip of eigh's).
at::Tensor descending_eigenbasis(const at::Tensor& f, const std::string& what) {
  return linalg::eigh_psd(f, what).vectors.flip({1});
}

}  // namespace

Soap::Soap(std::vector<torch::optim::OptimizerParamGroup> groups, const SoapOptions& defaults)
    : ParameterwiseOptimizerOf(std::move(groups), defaults, "soap") {
  validate_groups();
}

ParameterUpdate Soap::update(const at::Tensor& param, const at::Tensor& grad, const TensorState& state,
                             const torch::optim::OptimizerOptions& options, int64_t, const std::string& name) {
  const auto& o = options_of(options);
  ParameterUpdate u;
  const auto g = param.dim() >= 2 ? grad.reshape({grad.size(0), -1}) : grad;
  // The sides with a basis: dimension 0 (left, rows) and 1 (right, columns) of a matrix up to the size cap.
  struct Side {
    const char *factor, *basis;
    int64_t dim;
  };
  std::vector<Side> sides;
  if (g.dim() == 2) {
    if (g.size(0) <= o.max_preconditioner_dim()) sides.push_back({"left", "left_basis", 0});
    if (g.size(1) <= o.max_preconditioner_dim()) sides.push_back({"right", "right_basis", 1});
  }
  const auto old = [&](const std::string& key) {
    const auto it = state.find(key);
    return it == state.end() ? at::Tensor() : it->second;
  };
  const auto update_factors = [&] {
    for (const auto& s : sides)
      u.state[s.factor] = gradient_factor(state, s.factor, s.dim == 0 ? g.t() : g, o.shampoo_beta());
  };
  const auto what = [&](const Side& s) { return "SOAP's " + std::string(s.factor) + " factor of " + name; };

  const auto counter = old("step");
  if (!counter.defined()) {  // the first step: factors and bases only, the weight unchanged (as published)
    update_factors();
    for (const auto& s : sides) {
      try {
        u.state[s.basis] = descending_eigenbasis(u.state.at(s.factor), what(s));
        u.refreshed = true;
      } catch (const NumericalError& e) {
        ++u.refresh_failures;
        u.messages.push_back(std::string(e.what()) + "; that side stays unrotated until the next refresh");
      }
    }
    u.state["step"] = at::zeros({}, at::kDouble);
    u.value = param;
    return u;
  }
  const int64_t k = static_cast<int64_t>(counter.item<double>()) + 1;
  // x in the basis (Q_Lᵀ x Q_R) and back (Q_L x Q_Rᵀ); a side without a basis stays as it is.
  const auto rotate = [&](at::Tensor x, bool back) {
    for (const auto& s : sides) {
      const auto q = old(s.basis);
      if (!q.defined()) continue;
      if (s.dim == 0)
        x = at::matmul(back ? q : q.t(), x);
      else
        x = at::matmul(x, back ? q.t() : q);
    }
    return x;
  };
  const auto zeros_or = [&](const std::string& key) {
    const auto t = old(key);
    return t.defined() ? t : at::zeros_like(g);
  };
  const auto m = at::lerp(zeros_or("exp_avg"), g, 1 - o.beta1());
  auto v = at::lerp(zeros_or("exp_avg_sq"), rotate(g, false).square(), 1 - o.beta2());
  const double step_size = o.lr() * std::sqrt(1 - std::pow(o.beta2(), static_cast<double>(k))) /
                           (1 - std::pow(o.beta1(), static_cast<double>(k)));
  auto direction = rotate(rotate(m, false) / (v.sqrt() + o.eps()), true);
  if (o.normalize_grads()) direction = direction / (direction.square().mean().sqrt() + 1e-30);
  auto value = param - step_size * direction.reshape(param.sizes());
  u.value = o.weight_decay() > 0 ? value * (1 - o.lr() * o.weight_decay()) : value;

  update_factors();
  if (k % o.precondition_frequency() == 0) {
    for (const auto& s : sides) {
      const auto q = old(s.basis);
      try {
        if (o.basis_refresh() == "eigh" || !q.defined()) {
          u.state[s.basis] = descending_eigenbasis(u.state.at(s.factor), what(s));
        } else {
          auto refined = linalg::refine_eigenbasis(u.state.at(s.factor), q, what(s));
          v = v.index_select(s.dim, refined.order);  // v's coordinates follow their eigenvectors
          u.state[s.basis] = std::move(refined.vectors);
        }
        u.refreshed = true;
      } catch (const NumericalError& e) {
        ++u.refresh_failures;
        u.messages.push_back(std::string(e.what()) + "; the previous basis is kept");
      }
    }
  }
  u.state["exp_avg"] = m;
  u.state["exp_avg_sq"] = v;
  u.state["step"] = at::full({}, static_cast<double>(k), at::kDouble);
  return u;
}

}  // namespace kfac
