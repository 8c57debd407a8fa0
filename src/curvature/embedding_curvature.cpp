#include "kfac/curvature/embedding_curvature.h"

#include <ATen/ATen.h>

#include <cmath>

#include "kfac/errors.h"
#include "kfac/linalg/factor.h"
#include "kfac/linalg/psd.h"

namespace kfac {

EmbeddingCurvature::EmbeddingCurvature(CurvatureContext context)
    : Curvature(std::move(context)), corrected_(context_.method == "ekfac") {
  KFAC_CHECK(context_.method == "kfac" || corrected_, "layer '", layer_name(), "': an Embedding block supports the ",
             "methods kfac and ekfac, not '", context_.method,
             "'; use one of those, or a stock torch::nn::Embedding (then its weight gets the fallback)");
  if (corrected_) options_ = context_.method_options.get<EigenCorrectedOptions>();
  a_ = at::zeros({shape().dim_a}, context_.tensor_options);
  g_ = at::zeros({shape().dim_g, shape().dim_g}, context_.tensor_options);
}

EmbeddingCurvature::Pairs EmbeddingCurvature::by_pair(const at::Tensor& ids, const at::Tensor& values) const {
  const int64_t batch = ids.size(0), vocabulary = shape().dim_a;
  const auto key = (at::arange(batch, ids.options()).unsqueeze(1) * vocabulary + ids).reshape({-1});
  const auto [unique, inverse, counts] = at::_unique2(key, /*sorted=*/true, /*return_inverse=*/true,
                                                      /*return_counts=*/true);
  Pairs p{unique.remainder(vocabulary), unique.div(vocabulary, "floor"), {}, counts};
  if (values.defined()) {
    const int64_t samples = values.size(0), k = values.size(-1);
    p.sums = at::zeros({samples, unique.numel(), k}, values.options());
    p.sums.index_add_(1, inverse, values.reshape({samples, -1, k}));
  }
  return p;
}

void EmbeddingCurvature::update(const LayerStatistics& stats, double decay) {
  note_update(stats);
  const auto ids = stats.a.squeeze(-1);  // [B, T]
  const auto [lowest, highest] = at::aminmax(ids);
  const auto range = at::stack({lowest, highest}).cpu();  // one host read
  KFAC_CHECK(range[0].item<int64_t>() >= 0 && range[1].item<int64_t>() < shape().dim_a, "layer '", layer_name(),
             "': token ids must be in [0, ", shape().dim_a, ")");
  const int64_t batch = ids.size(0), positions = ids.size(1);
  const bool reduce = context_.weight_sharing == WeightSharing::Reduce;
  const auto& g = stats.g;  // [S, B, T, d]
  // Reduce needs the (example, token) pairs for the frequencies and for EKFAC's spectrum: formed once.
  const auto pairs = reduce ? by_pair(ids, {}) : Pairs{};
  const auto pair_weights = reduce ? (pairs.counts.to(a_.dtype()) / static_cast<double>(positions)).pow_(2)
                                   : at::Tensor();  // (c/T)²
  at::Tensor a_batch;
  if (reduce) {
    // diag((1/N) Σ_n â_n â_nᵀ) with â_n = c_n / T; ĝ_n = Σ_t g_{n,t}.
    a_batch = at::zeros_like(a_).index_add_(0, pairs.tokens, pair_weights) / static_cast<double>(batch);
    linalg::gram_update_(g_, g.sum(2), decay, (1.0 - decay) / static_cast<double>(batch));
    locations_ = 1;
  } else {
    const double rows = static_cast<double>(batch * positions);
    a_batch = at::bincount(ids.reshape({-1}), {}, shape().dim_a).to(a_.dtype()) / rows;
    linalg::gram_update_(g_, g, decay, (1.0 - decay) / rows);
  }
  a_.mul_(decay).add_(a_batch, 1.0 - decay);
  if (!corrected_ || !g_vecs_.defined() || updates_ % options_.spectrum_period() != 0) return;
  if (refresh_follows_ && options_.reset_spectrum()) return;  // the refresh resets the spectrum in this step
  // (1/B) Σ_{s,n} (Q_Gᵀ ∇_sn)^∘2, column v of ∇_sn being Σ_{t: v_nt = v} g_snt (expand) or ĝ_sn c_nv/T (reduce).
  const auto rotated = at::matmul(g, g_vecs_);  // [S, B, T, d]
  at::Tensor per_pair, tokens;                  // [P, d], [P]
  if (reduce) {
    per_pair = rotated.sum(2).index_select(1, pairs.examples).pow_(2).sum(0) * pair_weights.unsqueeze(1);
    tokens = pairs.tokens;
  } else {
    const auto expanded_pairs = by_pair(ids, rotated);
    per_pair = expanded_pairs.sums.pow(2).sum(0);
    tokens = expanded_pairs.tokens;
  }
  const auto moment = at::zeros({shape().dim_a, shape().dim_g}, a_.options()).index_add_(0, tokens, per_pair);
  spectrum_.mul_(decay).add_(moment.t(), (1.0 - decay) / static_cast<double>(batch));
}

std::vector<linalg::FactorRequest> EmbeddingCurvature::plan_refresh(double damping) {
  using linalg::FactorRequest;
  const double floor = context_.numerics.eigenvalue_floor();
  if (has_eigenbasis())
    return {FactorRequest::eig_of(g_, what("factor G"), floor, g_vecs_, context_.numerics.eigenbasis_iterations())};
  const double p = linalg::factored_damping_pi(a_, g_), gamma = std::sqrt(damping / static_cast<double>(locations_));
  return {
      FactorRequest::damped_inverse_of(a_, p * gamma, /*cholesky=*/false, floor, what("factor A (token frequencies)")),
      FactorRequest::damped_inverse_of(g_, gamma / p, inverts_by_cholesky(context_.damping_mode, context_.numerics),
                                       floor, what("factor G"))};
}

void EmbeddingCurvature::finish_refresh(std::vector<linalg::FactorRequest>& d, double /*damping*/) {
  linalg::check_finite(a_, what("factor A (token frequencies)"));
  linalg::throw_if_failed(d);
  if (has_eigenbasis()) {
    const bool first = !g_vecs_.defined();
    g_vals_ = d[0].eig.values, g_vecs_ = d[0].eig.vectors;
    if (corrected_ && (first || options_.reset_spectrum()))
      spectrum_ = at::outer(g_vals_, a_) * static_cast<double>(locations_);
  } else {
    a_inv_ = d[0].inverse, g_inv_ = d[1].inverse;
  }
  mark_ready();
}

at::Tensor EmbeddingCurvature::precondition_impl(const at::Tensor& v, double damping) const {
  const double t = static_cast<double>(locations_);
  if (corrected_) return g_vecs_.mm(g_vecs_.t().mm(v) / (spectrum_ + damping));
  if (context_.damping_mode == DampingMode::Eigen)
    return g_vecs_.mm(g_vecs_.t().mm(v) / (at::outer(g_vals_, a_) * t + damping));
  return g_inv_.mm(v).mul_(a_inv_.unsqueeze(0)).div_(t);
}

at::Tensor EmbeddingCurvature::to_dense() const {
  if (!corrected_ || !g_vecs_.defined()) return at::kron(at::diag(a_), g_) * static_cast<double>(locations_);
  const auto u = at::kron(at::eye(shape().dim_a, a_.options()), g_vecs_.contiguous());
  return at::matmul(u * spectrum_.t().reshape({1, -1}), u.t());
}

std::vector<std::pair<at::Tensor*, bool>> EmbeddingCurvature::running_statistics() {
  std::vector<std::pair<at::Tensor*, bool>> out{{&g_, true}, {&a_, false}};
  if (corrected_) out.emplace_back(&spectrum_, false);
  return out;
}

std::vector<at::Tensor*> EmbeddingCurvature::refreshed_state() {
  auto out = Curvature::refreshed_state();
  if (corrected_ && options_.reset_spectrum()) out.push_back(&spectrum_);
  return out;
}

std::vector<std::pair<std::string, at::Tensor*>> EmbeddingCurvature::state_tensors() {
  return {{"A", &a_},           {"G", &g_},           {"A_inv", &a_inv_},      {"G_inv", &g_inv_},
          {"G_vals", &g_vals_}, {"G_vecs", &g_vecs_}, {"spectrum", &spectrum_}};
}

}  // namespace kfac
