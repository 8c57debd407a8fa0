#include "kfac/optim/qmodel.h"

#include <ATen/ATen.h>
#include <torch/serialize/archive.h>

#include <cmath>

#include "kfac/fisher/curvature_products.h"
#include "kfac/distributed/collectives.h"
#include "kfac/errors.h"
#include "util/serialize.h"

namespace kfac {

const OptionTable<QModelOptions>& QModelOptions::table() {
  using O = QModelOptions;
  static const OptionTable<O> t(
      "qmodel", "The quadratic-model step rule (Martens & Grosse 2015, sections 6-7)",
      {field<O>(KFAC_FIELD(O, initial_lambda), "Initial Levenberg-Marquardt damping lambda", bounded(positive())),
       field<O>(KFAC_FIELD(O, l2), "L2 coefficient eta of the objective (all parameters)", bounded(at_least(0))),
       field<O>(KFAC_FIELD(O, lambda_period), "Steps T1 between lambda updates", bounded(at_least(1))),
       field<O>(KFAC_FIELD(O, lambda_decay), "omega1 = lambda_decay^T1", bounded(between(0, 1, true, true))),
       field<O>(KFAC_FIELD(O, gamma_period), "Steps T2 between gamma adaptations", bounded(at_least(1))),
       field<O>(KFAC_FIELD(O, gamma_decay), "omega2 = gamma_decay^T2", bounded(between(0, 1, true, true))),
       field<O>(KFAC_FIELD(O, adapt_gamma), "Adapt gamma by trying candidates (else gamma = sqrt(lambda + eta))"),
       field<O>(KFAC_FIELD(O, gamma_max), "Upper bound on gamma; 0 = none", bounded(at_least(0))),
       field<O>(KFAC_FIELD(O, rho_includes_damping), "The reduction ratio's denominator includes lambda |delta|^2 / 2"),
       field<O>(KFAC_FIELD(O, momentum), "Use the previous update as a second direction"),
       field<O>(KFAC_FIELD(O, averaging_decay), "Decay of the iterate average used for evaluation; 0 disables",
                bounded(between(0, 1, false, true)))});
  return t;
}

void validate(const QModelOptions& o) { QModelOptions::table().validate(o); }

QuadraticSolution solve_quadratic_model(const std::array<std::array<double, 2>, 2>& m, const std::array<double, 2>& c,
                                        int n) {
  QuadraticSolution s;
  if (n == 2) {
    const double det = m[0][0] * m[1][1] - m[0][1] * m[1][0];
    if (std::isfinite(det) && std::abs(det) > 1e-12 * std::abs(m[0][0] * m[1][1])) {
      s.alpha = -(m[1][1] * c[0] - m[0][1] * c[1]) / det;
      s.mu = -(-m[1][0] * c[0] + m[0][0] * c[1]) / det;
      s.change = 0.5 * (s.alpha * c[0] + s.mu * c[1]);
      return s;
    }
  }
  s.alpha = m[0][0] > 0 ? -c[0] / m[0][0] : 0.0;
  s.change = 0.5 * s.alpha * c[0];
  return s;
}

double update_lambda(double lambda, double rho, double omega1) {
  if (!(rho >= 0.25)) return lambda / omega1;  // also NaN
  if (rho > 0.75) return lambda * omega1;
  return lambda;
}

std::vector<double> gamma_candidates(double gamma, double omega2, double eta, double gamma_max) {
  std::vector<double> out;
  for (double g : {gamma * omega2, gamma, gamma / omega2}) {
    g = std::max(g, std::sqrt(eta));
    if (gamma_max > 0) g = std::min(g, gamma_max);
    if (out.empty() || std::abs(out.back() - g) > 1e-15 * g) out.push_back(g);
  }
  return out;
}

namespace {
double dot(const std::vector<at::Tensor>& a, const std::vector<at::Tensor>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += (a[i] * b[i]).sum().item<double>();
  return s;
}
std::vector<at::Tensor> combine(double x, const std::vector<at::Tensor>& a, double y,
                                const std::vector<at::Tensor>& b) {
  std::vector<at::Tensor> out;
  for (size_t i = 0; i < a.size(); ++i) out.push_back(b.empty() ? a[i] * x : a[i] * x + b[i] * y);
  return out;
}
}  // namespace

QModelOptimizer::QModelOptimizer(std::shared_ptr<Preconditioner> preconditioner, QModelOptions options)
    : preconditioner_(std::move(preconditioner)), options_(options) {
  KFAC_CHECK(preconditioner_ != nullptr, "QModelOptimizer needs a preconditioner");
  const auto& fallback = preconditioner_->registration().fallback;
  KFAC_CHECK(fallback.empty(), "the quadratic-model step rule moves only the parameters of K-FAC blocks, but ",
             fallback.size(), " parameter(s) of the model have the fallback (first: '",
             fallback.empty() ? "" : fallback.front().name,
             "'); use KfacOptimizer (or another optimizer after Preconditioner::step()) for this model");
  validate(options_);
  lambda_ = options_.initial_lambda();
  gamma_ = std::sqrt(lambda_ + options_.l2());
}

double QModelOptimizer::l2_term() const {
  if (options_.l2() == 0) return 0;
  double s = 0;
  for (const auto& p : preconditioner_->parameters()) s += p.detach().pow(2).sum().item<double>();
  return 0.5 * options_.l2() * s;
}

QModelStats QModelOptimizer::step(const at::Tensor& output, LossKind loss, double local_loss,
                                  const std::function<double()>& local_evaluate) {
  auto& P = *preconditioner_;
  const auto params = P.parameters();
  const double eta = options_.l2();
  QModelStats qs;
  // Data-parallel runs: gradients, losses and the quadratic model's curvature terms are means over the ranks' shards.
  auto& comm = P.communicator();
  auto mean = [&](double local) { return comm.sum_over_ranks({local})[0] / comm.size(); };
  all_reduce_gradients(comm, params);
  const double loss_value = mean(local_loss);
  const auto evaluate = [&] { return mean(local_evaluate()); };
  const auto gauss_newton = [&](const at::Tensor& output, const at::Tensor& a, const at::Tensor& b, LossKind kind) {
    return mean(gauss_newton_form(output, a, b, kind));
  };
  {
    at::NoGradGuard no_grad;
    if (eta > 0)
      for (const auto& p : params)
        if (p.grad().defined()) p.mutable_grad().add_(p.detach(), eta);
  }
  const double h_old = loss_value + l2_term();
  std::vector<at::Tensor> g;
  for (auto& m : P.gradient_matrices()) g.push_back(m.clone());

  P.set_damping(gamma_ * gamma_);
  qs.preconditioner = P.step();
  if (qs.preconditioner.skipped) return qs;
  ++steps_;
  const auto& layers = P.layers();
  auto to_params = [&](const std::vector<at::Tensor>& mats) {
    ParamVector v;
    for (size_t i = 0; i < layers.size(); ++i)
      for (auto& part : layers[i].kind->from_matrix(mats[i])) v.push_back(part);
    return v;
  };
  auto negate = [](std::vector<at::Tensor> v) {
    for (auto& t : v) t = -t;
    return v;
  };

  const bool adapt = options_.adapt_gamma() && steps_ % options_.gamma_period() == 0;
  const double omega2 = std::pow(options_.gamma_decay(), static_cast<double>(options_.gamma_period()));
  const auto gammas = adapt ? gamma_candidates(gamma_, omega2, eta, options_.gamma_max()) : std::vector<double>{gamma_};
  const bool use_prev = options_.momentum() && !previous_.empty();
  const double shift = lambda_ + eta;

  // All Jacobian-vector products first: they need the forward graph, which moving the parameters invalidates.
  at::Tensor j_prev;
  double m11 = 0, c1 = 0;
  if (use_prev) {
    j_prev = jacobian_vector_product(output, params, to_params(previous_));
    m11 = gauss_newton(output, j_prev, j_prev, loss) + shift * dot(previous_, previous_);
    c1 = dot(g, previous_);
  }
  struct Candidate {
    double gamma;
    std::vector<at::Tensor> delta;
    QuadraticSolution solution;
    double objective = NAN;
  };
  std::vector<Candidate> candidates;
  double damping_in_use = gamma_;
  for (double gc : gammas) {
    std::vector<at::Tensor> dir;
    if (gc == gamma_) {
      dir = negate(P.gradient_matrices());
    } else {
      P.set_damping(gc * gc);
      P.refresh_all();
      damping_in_use = gc;
      dir = negate(P.precondition(g));
    }
    const auto j_dir = jacobian_vector_product(output, params, to_params(dir));
    std::array<std::array<double, 2>, 2> m{};
    std::array<double, 2> c{dot(g, dir), c1};
    m[0][0] = gauss_newton(output, j_dir, j_dir, loss) + shift * dot(dir, dir);
    if (use_prev) {
      m[0][1] = m[1][0] = gauss_newton(output, j_dir, j_prev, loss) + shift * dot(dir, previous_);
      m[1][1] = m11;
    }
    auto sol = solve_quadratic_model(m, c, use_prev ? 2 : 1);
    candidates.push_back({gc, combine(sol.alpha, dir, sol.mu, use_prev ? previous_ : std::vector<at::Tensor>{}), sol});
  }

  at::NoGradGuard no_grad;
  auto apply = [&](const std::vector<at::Tensor>& delta) {
    const auto parts = to_params(delta);
    for (size_t i = 0; i < params.size(); ++i) params[i].detach().add_(parts[i]);
  };
  size_t best = 0;
  if (candidates.size() > 1) {
    std::vector<at::Tensor> saved;
    saved.reserve(params.size());
    for (const auto& p : params) saved.push_back(p.detach().clone());
    for (size_t i = 0; i < candidates.size(); ++i) {
      apply(candidates[i].delta);
      candidates[i].objective = evaluate() + l2_term();
      for (size_t j = 0; j < params.size(); ++j) params[j].detach().copy_(saved[j]);
      if (!(candidates[i].objective >= candidates[best].objective)) best = i;  // NaN never wins over a number
    }
    qs.gamma_adapted = true;
  }
  const auto& chosen = candidates[best];
  gamma_ = chosen.gamma;
  if (damping_in_use != gamma_) {
    P.set_damping(gamma_ * gamma_);
    P.refresh_all();
  }
  std::vector<at::Tensor> sums;
  for (const auto& d : chosen.delta) sums.push_back(d.sum().to(at::kDouble));
  if (!at::isfinite(at::stack(sums)).all().item<bool>()) {  // never apply a non-finite update
    qs.preconditioner.skipped = true;
    qs.preconditioner.messages.push_back("step " + std::to_string(qs.preconditioner.step) +
                                         ": non-finite quadratic-model update; step skipped, weights unchanged");
    return qs;
  }
  apply(chosen.delta);
  previous_ = chosen.delta;
  qs.alpha = chosen.solution.alpha;
  qs.mu = chosen.solution.mu;
  qs.model_change = chosen.solution.change;
  if (!options_.rho_includes_damping()) qs.model_change -= 0.5 * lambda_ * dot(chosen.delta, chosen.delta);

  if (steps_ % options_.lambda_period() == 0) {
    const double h_new = std::isnan(chosen.objective) ? evaluate() + l2_term() : chosen.objective;
    qs.rho = (h_new - h_old) / qs.model_change;
    lambda_ = update_lambda(lambda_, qs.rho,
                            std::pow(options_.lambda_decay(), static_cast<double>(options_.lambda_period())));
  }
  if (!options_.adapt_gamma()) gamma_ = std::sqrt(lambda_ + eta);

  if (options_.averaging_decay() > 0) {
    // Zero-initialized EMA, debiased when swapped in (as Adam's moments), so early averages are not stale.
    const double d = options_.averaging_decay();
    if (averages_.empty())
      for (const auto& p : params) averages_.push_back(at::zeros_like(p.detach()));
    for (size_t i = 0; i < params.size(); ++i) averages_[i].mul_(d).add_(params[i].detach(), 1 - d);
  }
  qs.lambda = lambda_;
  qs.gamma = gamma_;
  return qs;
}

void QModelOptimizer::swap_averages() {
  KFAC_CHECK(!averages_.empty(), "no iterate averages yet (averaging_decay is 0, or no step was taken)");
  at::NoGradGuard no_grad;
  const auto params = preconditioner_->parameters();
  const double debias = 1.0 - std::pow(options_.averaging_decay(), static_cast<double>(steps_));
  for (size_t i = 0; i < params.size(); ++i) {
    auto tmp = params[i].detach().clone();
    params[i].detach().copy_(averages_[i] / debias);
    averages_[i].copy_(tmp * debias);
  }
}

void QModelOptimizer::save(torch::serialize::OutputArchive& archive) const {
  archive.write("lambda", c10::IValue(lambda_));
  archive.write("gamma", c10::IValue(gamma_));
  archive.write("steps", c10::IValue(steps_));
  write_tensors(archive, "previous_", previous_);
  write_tensors(archive, "average_", averages_);
  write_nested(archive, "preconditioner", [&](auto& nested) { preconditioner_->save(nested); });
}

void QModelOptimizer::load(torch::serialize::InputArchive& archive) {
  lambda_ = read_value(archive, "lambda").toDouble();
  gamma_ = read_value(archive, "gamma").toDouble();
  steps_ = read_value(archive, "steps").toInt();
  std::vector<at::Tensor> layer_shaped;
  for (const auto& l : preconditioner_->layers())
    layer_shaped.push_back(at::empty({l.kind->dim_g(), l.kind->dim_a()}, l.kind->weight().options()));
  previous_ = read_tensors(archive, "previous_", layer_shaped, "previous update of layer");
  if (!previous_.empty() && !previous_.front().defined()) previous_.clear();
  averages_ = read_tensors(archive, "average_", preconditioner_->parameters(), "iterate average of parameter");
  if (!averages_.empty() && !averages_.front().defined()) averages_.clear();
  read_nested(archive, "preconditioner", [&](auto& nested) { preconditioner_->load(nested); });
}

}  // namespace kfac
