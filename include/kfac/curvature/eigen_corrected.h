// Eigenvalue correction (George et al. 2018) of any Kronecker-factored method: keep the Kronecker-factored
// eigenbasis U = Q_L ⊗ Q_R of the base method's factors, replace its eigenvalues by the second moments of the
// per-example gradients projected on U,
//     S = E[(Q_Rᵀ ∇ Q_L)^∘2]   ([d_G, d_A]; the Frobenius-optimal diagonal in that basis),
// and precondition with Q_R [(Q_Rᵀ V Q_L) ⊘ (S + λ')] Q_Lᵀ, λ' = base.spectrum_damping(λ).
//   EKFAC  = EigenCorrected<KfacCurvature>   (basis of A, G)
//   TEKFAC = EigenCorrected<TkfacCurvature>  (basis of Φ, Ψ)
// Schedule: the basis is recomputed at each refresh; S is updated (EMA) every spectrum_period-th statistics update
// once a basis exists; at a refresh S is reset to the base method's eigenvalues (c · d_R d_Lᵀ) when reset_spectrum
// is set (default), so right after such a refresh the method equals its base in the
// exact-Tikhonov form. Without reset, S carries on with its EMA (its old entries then refer to the previous basis).
#pragma once

#include <ATen/ATen.h>

#include <torch/arg.h>

#include <string>

#include "kfac/curvature/per_example.h"
#include "kfac/linalg/psd.h"

namespace kfac {

/// The options of EKFAC and TEKFAC.
struct EigenCorrectedOptions {
  static const OptionTable<EigenCorrectedOptions>& table();
  TORCH_ARG(int64_t, spectrum_period) = 1;
  TORCH_ARG(bool, reset_spectrum) = true;
};

template <class Base>
class EigenCorrected : public Base {
 public:
  EigenCorrected(CurvatureContext context, std::string name)
      : Base(std::move(context)),
        name_(std::move(name)),
        options_(this->context_.method_options.template get<EigenCorrectedOptions>()) {}

  std::string method() const override { return name_; }

  void update(const LayerStatistics& stats, double decay) override {
    Base::update(stats, decay);
    if (!q_a_.defined() || this->updates_ % options_.spectrum_period() != 0) return;
    spectrum_.mul_(decay).add_(projected_second_moment(stats, q_a_, q_g_), 1.0 - decay);
  }

  void refresh(double damping) override {
    const double floor = this->context_.numerics.eigenvalue_floor();
    auto el = linalg::eigh_psd(this->input_factor(), this->what("input factor"), floor);
    auto er = linalg::eigh_psd(this->output_factor(), this->what("output factor"), floor);
    const bool first = !q_a_.defined();
    q_a_ = el.vectors, q_g_ = er.vectors;
    if (first || options_.reset_spectrum()) spectrum_ = at::outer(er.values, el.values) * this->kronecker_scale();
    this->mark_ready();
  }

  at::Tensor to_dense() const override {
    if (!q_a_.defined()) return Base::to_dense();
    const auto u = at::kron(q_a_, q_g_);
    return at::matmul(u * spectrum_.t().reshape({1, -1}), u.t());
  }

  std::vector<std::pair<at::Tensor*, bool>> running_statistics() override {
    auto out = Base::running_statistics();
    out.emplace_back(&spectrum_, false);
    return out;
  }

  /// The base method's decompositions and the basis (state that is not a running statistic), and the spectrum when
  /// the refresh resets it.
  std::vector<at::Tensor*> refreshed_state() override {
    auto out = Base::refreshed_state();
    if (options_.reset_spectrum()) out.push_back(&spectrum_);
    return out;
  }

  /// The basis vector with the smallest corrected eigenvalue.
  at::Tensor lowest_mode() const override {
    if (!q_a_.defined()) return Base::lowest_mode();
    const int64_t k = spectrum_.argmin().item<int64_t>();
    return at::outer(q_g_.select(1, k / spectrum_.size(1)), q_a_.select(1, k % spectrum_.size(1)));
  }

  const at::Tensor& spectrum() const { return spectrum_; }
  const at::Tensor& basis_input() const { return q_a_; }
  const at::Tensor& basis_output() const { return q_g_; }

 protected:
  at::Tensor precondition_impl(const at::Tensor& v, double damping) const override {
    const auto v_kfe = q_g_.t().mm(v).mm(q_a_);
    return q_g_.mm(v_kfe / (spectrum_ + this->spectrum_damping(damping))).mm(q_a_.t());
  }

  std::vector<std::pair<std::string, at::Tensor*>> state_tensors() override {
    auto state = Base::state_tensors();
    state.insert(state.end(), {{"basis_input", &q_a_}, {"basis_output", &q_g_}, {"spectrum", &spectrum_}});
    return state;
  }

 private:
  std::string name_;
  EigenCorrectedOptions options_;
  at::Tensor q_a_, q_g_, spectrum_;
};

}  // namespace kfac
