#include "kfac/options.h"

#include "kfac/curvature/registry.h"
#include "kfac/errors.h"

#include <cmath>

namespace kfac {

void validate(const PreconditionerOptions& o) {
  KFAC_CHECK(is_registered_method(o.method()), "unknown method '", o.method(), "'; valid methods: ",
             registered_method_names());
  KFAC_CHECK(std::isfinite(o.damping()) && o.damping() > 0, "damping must be finite and > 0, got ", o.damping(),
             "; typical values are 1e-4 to 1e-1");
  KFAC_CHECK(!(o.damping_mode() == DampingMode::Eigen && o.inverse_method() == InverseMethod::Cholesky),
             "inverse_method 'cholesky' cannot be combined with damping_mode 'eigen' (exact Tikhonov needs the "
             "eigendecomposition); use damping_mode 'factored' or inverse_method 'eigen'");
  KFAC_CHECK(o.stats_period() >= 1, "stats_period must be >= 1, got ", o.stats_period());
  KFAC_CHECK(o.refresh_period() >= 1, "refresh_period must be >= 1, got ", o.refresh_period());
  KFAC_CHECK(o.ema_decay() >= 0 && o.ema_decay() < 1, "ema_decay must be in [0, 1), got ", o.ema_decay());
  KFAC_CHECK(o.fisher_samples() >= 1, "fisher_samples must be >= 1, got ", o.fisher_samples());
  KFAC_CHECK(o.stats_fraction() > 0 && o.stats_fraction() <= 1, "stats_fraction must be in (0, 1], got ",
             o.stats_fraction());
  KFAC_CHECK(!o.factor_dtype() || *o.factor_dtype() == c10::kFloat || *o.factor_dtype() == c10::kDouble,
             "factor_dtype must be float32 or float64, got ", c10::toString(*o.factor_dtype()));
  KFAC_CHECK(std::isfinite(o.eigenvalue_floor()) && o.eigenvalue_floor() >= 0,
             "eigenvalue_floor must be finite and >= 0, got ", o.eigenvalue_floor());
  KFAC_CHECK(o.spectrum_period() >= 1, "spectrum_period must be >= 1, got ", o.spectrum_period());
  KFAC_CHECK(o.grad_worker_fraction() > 0 && o.grad_worker_fraction() <= 1, "grad_worker_fraction must be in (0, 1], "
             "got ", o.grad_worker_fraction());
  const auto& t = o.two_level();
  KFAC_CHECK(std::isfinite(t.weight()) && t.weight() >= 0, "two_level.weight (ω) must be finite and >= 0, got ",
             t.weight());
  KFAC_CHECK(!t.damping() || (std::isfinite(*t.damping()) && *t.damping() > 0),
             "two_level.damping (coarse λ_c) must be finite and > 0, got ", t.damping().value_or(0));
  KFAC_CHECK(t.period() >= 1, "two_level.period must be >= 1, got ", t.period());
  KFAC_CHECK(t.ema_decay() >= 0 && t.ema_decay() < 1, "two_level.ema_decay must be in [0, 1), got ", t.ema_decay());
  KFAC_CHECK(!t.krylov() || t.space() == CoarseSpace::Nicolaides || t.space() == CoarseSpace::Residual,
             "Krylov enrichment needs the nicolaides or residual coarse space, got '", to_string(t.space()),
             "' (the spectral vector is an eigenvector, so M⁻¹r is parallel to r)");
  KFAC_CHECK(t.space() != CoarseSpace::BlockTridiagonal ||
                 (o.method() == "kfac" && o.damping_mode() == DampingMode::Factored),
             "block-tridiagonal K-FAC is built from K-FAC's factored damping: it needs method 'kfac' and "
             "damping_mode 'factored', got method '", o.method(), "' and damping_mode '", to_string(o.damping_mode()),
             "'");
  KFAC_CHECK(o.max_consecutive_failures() >= 1, "max_consecutive_failures must be >= 1, got ",
             o.max_consecutive_failures());
}

std::string to_string(DampingMode mode) { return mode == DampingMode::Factored ? "factored" : "eigen"; }
bool inverts_by_cholesky(const PreconditionerOptions& o) {
  return o.inverse_method() == InverseMethod::Cholesky ||
         (o.inverse_method() == InverseMethod::Auto && o.damping_mode() == DampingMode::Factored &&
          o.eigenvalue_floor() == 0);
}

std::string to_string(InverseMethod method) {
  switch (method) {
    case InverseMethod::Auto: return "auto";
    case InverseMethod::Eigen: return "eigen";
    case InverseMethod::Cholesky: return "cholesky";
  }
  return "?";
}
std::string to_string(FisherType type) {
  switch (type) {
    case FisherType::Sampled: return "sampled";
    case FisherType::Empirical: return "empirical";
    case FisherType::Exact: return "exact";
  }
  return "?";
}

std::string to_string(TraceDamping d) { return d == TraceDamping::Normal ? "normal" : "trace-relative"; }

TraceDamping parse_trace_damping(const std::string& name) {
  if (name == "normal") return TraceDamping::Normal;
  if (name == "trace-relative") return TraceDamping::TraceRelative;
  KFAC_CHECK(false, "unknown trace damping '", name, "'; valid: normal, trace-relative");
  return TraceDamping::Normal;
}

DampingMode parse_damping_mode(const std::string& name) {
  if (name == "factored") return DampingMode::Factored;
  if (name == "eigen") return DampingMode::Eigen;
  KFAC_CHECK(false, "unknown damping mode '", name, "'; valid: factored, eigen");
  return DampingMode::Factored;
}
InverseMethod parse_inverse_method(const std::string& name) {
  if (name == "auto") return InverseMethod::Auto;
  if (name == "eigen") return InverseMethod::Eigen;
  if (name == "cholesky") return InverseMethod::Cholesky;
  KFAC_CHECK(false, "unknown inverse method '", name, "'; valid: auto, eigen, cholesky");
  return InverseMethod::Auto;
}
FisherType parse_fisher_type(const std::string& name) {
  if (name == "sampled") return FisherType::Sampled;
  if (name == "empirical") return FisherType::Empirical;
  if (name == "exact") return FisherType::Exact;
  KFAC_CHECK(false, "unknown Fisher type '", name, "'; valid: sampled, empirical, exact");
  return FisherType::Sampled;
}

namespace presets {
PreconditionerOptions kfac_paper() {
  return PreconditionerOptions()
      .damping_mode(DampingMode::Factored)
      .stats_period(1)
      .refresh_period(20)
      .stats_fraction(1.0 / 8.0)
      .fisher(FisherType::Sampled);
}
PreconditionerOptions pytorch_ports() {
  return PreconditionerOptions().damping(1e-3).damping_mode(DampingMode::Eigen).stats_period(10).refresh_period(
      100);
}
}  // namespace presets

}  // namespace kfac
