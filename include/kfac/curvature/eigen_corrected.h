// Eigenvalue correction (George et al. 2018) of any Kronecker-factored method: keep the Kronecker-factored
// eigenbasis U = Q_L ⊗ Q_R of the base method's factors, replace its eigenvalues by the second moments of the
// per-example gradients projected on U,
//     S = E[(Q_Rᵀ ∇ Q_L)^∘2]   ([d_G, d_A]; the Frobenius-optimal diagonal in that basis),
// and precondition with Q_R [(Q_Rᵀ V Q_L) ⊘ (S + λ')] Q_Lᵀ, S + λ' = base.damped_spectrum(S, λ).
//   EKFAC  = EigenCorrected<KfacCurvature>   (basis of A, G)
//   TEKFAC = EigenCorrected<TkfacCurvature>  (basis of Φ, Ψ)
// Schedule: the basis is recomputed at each refresh (or refined from the previous one: eigenbasis_iterations); S is
// updated (EMA) every spectrum_period-th statistics update once a basis exists; at a refresh S is reset to the base
// method's eigenvalues (c · d_R d_Lᵀ) when reset_spectrum is set (default), so right after such a refresh the method
// equals its base in the exact-Tikhonov form (and a statistics step followed by a refresh skips the S update that
// the reset would overwrite). Without reset, S carries on with its EMA (its old entries then refer to the previous basis).
// per_position_spectrum estimates S with the T positions of a sequence or conv map as examples, dropping the
// cross-position terms of each example's gradient: one product instead of per-example gradients (docs/design.md §4).
// A diagonal factor (kfac/linalg/factor.h) has the identity basis: its Q is undefined and its side is not rotated.
#pragma once

#include <ATen/ATen.h>

#include <torch/arg.h>

#include <string>

#include "kfac/curvature/per_example.h"
#include "kfac/linalg/factor.h"

namespace kfac {

/// The options of EKFAC and TEKFAC.
struct EigenCorrectedOptions {
  static const OptionTable<EigenCorrectedOptions>& table();
  TORCH_ARG(int64_t, spectrum_period) = 1;
  TORCH_ARG(bool, reset_spectrum) = true;
  TORCH_ARG(bool, per_position_spectrum) = false;
};

template <class Base>
class EigenCorrected : public Base {
 public:
  EigenCorrected(CurvatureContext context, std::string name)
      : Base(std::move(context)),
        name_(std::move(name)),
        options_(this->context_.method_options.template get<EigenCorrectedOptions>()) {}

  std::string method() const override { return name_; }
  /// Its block is damped in the eigenbasis, not in factored form.
  c10::optional<Curvature::FactoredDamping> factored_damping() const override { return c10::nullopt; }
  /// The per-example spectrum squares per-example sums over positions, which a sample of them would bias; the
  /// per-position one is a sum over positions, which a sample estimates without bias (docs/design.md §5).
  bool takes_sampled_positions() const override {
    return options_.per_position_spectrum() && Base::takes_sampled_positions();
  }

  void update(const LayerStatistics& given, double decay) override {
    Base::update(given, decay);  // the base casts what it multiplies (K-FAC: statistics_precision; TKFAC: nothing)
    if (!spectrum_.defined() || this->updates_ % options_.spectrum_period() != 0) return;
    if (this->refresh_follows_ && options_.reset_spectrum()) return;  // the refresh resets S in this step
    const auto stats = this->in_product_dtype(given);
    const auto moment = options_.per_position_spectrum() ? projected_second_moment_per_position(stats, q_a_, q_g_)
                                                         : projected_second_moment(stats, q_a_, q_g_);
    spectrum_.mul_(decay).add_(moment, 1.0 - decay);
  }

  void refresh(double damping) override { this->refresh_by_plan(damping); }

  std::vector<linalg::FactorRequest> plan_refresh(double /*damping*/) override {
    const double floor = this->context_.numerics.eigenvalue_floor();
    const int64_t k = this->context_.numerics.eigenbasis_iterations();
    return {linalg::FactorRequest::eig_of(this->input_factor(), this->what("input factor"), floor, q_a_, k),
            linalg::FactorRequest::eig_of(this->output_factor(), this->what("output factor"), floor, q_g_, k)};
  }

  void finish_refresh(std::vector<linalg::FactorRequest>& d, double /*damping*/) override {
    linalg::throw_if_failed(d);
    const auto &el = d[0].eig, &er = d[1].eig;
    const bool first = !spectrum_.defined();
    q_a_ = el.vectors, q_g_ = er.vectors;
    if (first || options_.reset_spectrum()) spectrum_ = at::outer(er.values, el.values) * this->kronecker_scale();
    this->mark_ready();
  }

  at::Tensor to_dense() const override {
    if (!spectrum_.defined()) return Base::to_dense();
    const auto& options = this->tensor_options();
    const auto u = at::kron(linalg::basis_dense(q_a_, this->shape().dim_a, options),
                            linalg::basis_dense(q_g_, this->shape().dim_g, options));
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
    if (!spectrum_.defined()) return Base::lowest_mode();
    const int64_t k = spectrum_.argmin().item<int64_t>();
    const auto column = [&](const at::Tensor& q, int64_t n, int64_t i) {
      return q.defined() ? q.select(1, i) : at::eye(n, this->tensor_options()).select(1, i);
    };
    return at::outer(column(q_g_, this->shape().dim_g, k / spectrum_.size(1)),
                     column(q_a_, this->shape().dim_a, k % spectrum_.size(1)));
  }

  const at::Tensor& spectrum() const { return spectrum_; }
  const at::Tensor& basis_input() const { return q_a_; }
  const at::Tensor& basis_output() const { return q_g_; }

 protected:
  at::Tensor precondition_impl(const at::Tensor& v, double damping) const override {
    const auto v_kfe = linalg::right_multiply(linalg::left_multiply_t(q_g_, v), q_a_);
    const auto scaled = v_kfe / this->damped_spectrum(spectrum_, damping);
    return linalg::left_multiply(q_g_, linalg::right_multiply_t(scaled, q_a_));
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
