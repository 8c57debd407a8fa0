// The inline and owner-rank executors, the failure policy, and the choice among the executors.
#include "preconditioner/refresh_executor.h"

#include <map>

#include "kfac/distributed/placement.h"
#include "kfac/errors.h"

namespace kfac {

std::unique_ptr<RefreshExecutor> make_background_refresher();  // background_refresh.cpp

RefreshOutcome refresh_layer(Curvature& curvature, size_t layer, double damping) {
  try {
    curvature.refresh(damping);
    return {layer, true, ""};
  } catch (const NumericalError& e) {
    return {layer, false, e.what()};
  }
}

std::vector<RefreshOutcome> refresh_layers(const std::vector<size_t>& layers,
                                           std::vector<std::unique_ptr<Curvature>>& curvatures, double damping) {
  // Every layer's decompositions first, in one linalg::decompose (same-shaped factors batched), then each layer
  // finishes from its own: a failure stays the failing layer's.
  std::vector<std::vector<linalg::FactorRequest>> plans(layers.size());
  std::vector<std::string> errors(layers.size());
  std::vector<linalg::FactorRequest*> all;
  for (size_t k = 0; k < layers.size(); ++k) {
    try {
      plans[k] = curvatures[layers[k]]->plan_refresh(damping);
    } catch (const NumericalError& e) {
      errors[k] = e.what();
    }
    for (auto& request : plans[k]) all.push_back(&request);
  }
  linalg::decompose(all);
  std::vector<RefreshOutcome> out;
  out.reserve(layers.size());
  for (size_t k = 0; k < layers.size(); ++k) {
    if (errors[k].empty()) {
      try {
        curvatures[layers[k]]->finish_refresh(plans[k], damping);
      } catch (const NumericalError& e) {
        errors[k] = e.what();
      }
    }
    out.push_back({layers[k], errors[k].empty(), errors[k]});
  }
  return out;
}

namespace {

class InlineRefresh final : public RefreshExecutor {
 public:
  std::string name() const override { return "inline"; }
  std::vector<RefreshOutcome> run(const RefreshRequest& r) override {
    if (r.due.empty()) return {};
    if (r.before_compute) r.before_compute();
    return refresh_layers(r.due, *r.curvatures, r.damping);
  }
};

class OwnerRankRefresh final : public RefreshExecutor {
 public:
  explicit OwnerRankRefresh(const Placement& placement) : placement_(placement) {}
  std::string name() const override { return "owner-rank"; }
  std::vector<RefreshOutcome> run(const RefreshRequest& r) override {
    std::vector<RefreshOutcome> out;
    if (r.due.empty()) return out;
    if (r.before_compute) r.before_compute();
    auto& curvatures = *r.curvatures;
    std::vector<Curvature*> all;
    all.reserve(curvatures.size());
    for (auto& c : curvatures) all.push_back(c.get());
    std::map<size_t, std::string> errors;  // known on the owner rank only
    const auto ok = placement_.refresh(
        r.due,
        [&](size_t i) {
          auto outcome = refresh_layer(*curvatures[i], i, r.damping);
          if (!outcome.ok) errors[i] = outcome.error;
          return outcome.ok;
        },
        all);
    for (size_t k = 0; k < r.due.size(); ++k) {
      const size_t i = r.due[k];
      const auto error = errors.count(i) ? errors[i]
                                         : "refresh of layer '" + curvatures[i]->layer_name() +
                                               "' failed on its owner rank " + std::to_string(placement_.owner(i));
      out.push_back({i, ok[k], ok[k] ? "" : error});
    }
    return out;
  }

 private:
  const Placement& placement_;
};

}  // namespace

std::unique_ptr<RefreshExecutor> make_refresh_executor(const PreconditionerOptions& options,
                                                       const Placement& placement) {
  if (placement.distributed()) {
    KFAC_CHECK(!options.background_refresh(),
               "background_refresh is not supported in distributed runs (each "
               "layer's owner rank refreshes it and broadcasts the result at once); turn it off");
    return std::make_unique<OwnerRankRefresh>(placement);
  }
  if (options.background_refresh()) return make_background_refresher();
  return std::make_unique<InlineRefresh>();
}

std::string FailurePolicy::record(const RefreshOutcome& o, const std::string& layer_name) {
  if (o.ok) {
    failures_[o.layer] = 0;
    decomposed_[o.layer] = true;
    return "";
  }
  const auto n = ++failures_[o.layer];
  auto message = o.error + (decomposed_[o.layer] ? " (keeping the previous decomposition)"
                                                 : " (no decomposition yet: using gradient/λ)");
  KFAC_CHECK(n < max_, "layer '", layer_name, "': ", n,
             " consecutive refresh failures (max_consecutive_failures=", max_, "). Last error: ", message,
             ". Try a larger damping, a smaller learning rate, factor_dtype "
             "float64, or check the data for NaN/Inf");
  return message;
}

}  // namespace kfac
