// Building a Preconditioner: the layers checked (names, kinds, tied weights) and registered with one curvature each
// (the layer kind's own block or the method's, in the factor dtype), the global stage, the placement over ranks, the
// refresh executor, the fallback parameters and the registration report; set_damping, which checks λ against the
// factor dtype as construction does. The rest of the class: preconditioner.cpp.
#include <torch/nn/module.h>

#include <cmath>
#include <limits>
#include <map>
#include <regex>
#include <set>
#include <utility>

#include "kfac/curvature/registry.h"
#include "kfac/distributed/placement.h"
#include "kfac/errors.h"
#include "kfac/global/stage_registry.h"
#include "kfac/nn/module_registry.h"
#include "kfac/preconditioner/preconditioner.h"
#include "preconditioner/fallback.h"
#include "preconditioner/refresh_executor.h"
#include "preconditioner/schedule.h"
#include "preconditioner/statistics_pass.h"
#include "util/text.h"

namespace kfac {

Preconditioner::Preconditioner(torch::nn::Module& model, PreconditionerOptions options,
                               std::shared_ptr<Communicator> communicator)
    : Preconditioner(find_layers(model), module_parameters(model), std::move(options), std::move(communicator)) {}

Preconditioner::Preconditioner(std::vector<Layer> layers, const std::vector<ModuleParameters>& modules,
                               PreconditionerOptions options, std::shared_ptr<Communicator> communicator)
    : Preconditioner(std::move(layers), std::move(options), std::move(communicator)) {
  registration_.fallback = fallback_parameters(modules, layers_, &registration_.frozen);
  std::vector<at::Tensor> params;
  params.reserve(registration_.fallback.size());
  for (const auto& f : registration_.fallback) params.push_back(f.parameter);
  fallback_ = std::make_unique<Fallback>(std::move(params), options_.fallback_options());
}

namespace {
// The layers whose names do not match `pattern` (the option exclude); the others' names go to `excluded`.
std::vector<Layer> without_excluded(std::vector<Layer> layers, const std::string& pattern,
                                    std::vector<std::string>& excluded) {
  if (pattern.empty()) return layers;
  const std::regex re(pattern);
  std::vector<Layer> kept;
  for (auto& l : layers) {
    if (std::regex_search(l.name, re))
      excluded.push_back(l.name);
    else
      kept.push_back(std::move(l));
  }
  return kept;
}

// λ enters the factors as λ·π and λ/π and the spectrum as products with eigenvalues: beyond the square root of the
// factor dtype's largest value they overflow to infinity (1e80 in float32, 1e300 in float64).
void check_damping_fits(double damping, at::ScalarType dtype) {
  const double largest = dtype == at::kDouble     ? std::numeric_limits<double>::max()
                         : dtype == at::kHalf     ? 65504.0
                         : dtype == at::kBFloat16 ? 3.38e38
                                                  : static_cast<double>(std::numeric_limits<float>::max());
  const double bound = std::sqrt(largest);
  KFAC_CHECK(damping <= bound, "damping ", damping, " does not fit ", c10::toString(dtype),
             " factors: it must be at "
             "most ",
             bound,
             " (the square root of the dtype's largest value) so that damped factors stay finite; "
             "lower it, or use factor_dtype float64");
}
}  // namespace

Preconditioner::Preconditioner(std::vector<Layer> layers, PreconditionerOptions options,
                               std::shared_ptr<Communicator> communicator)
    : layers_((validate(options), without_excluded(std::move(layers), options.exclude(), excluded_))),
      options_(std::move(options)),
      schedule_(std::make_unique<Schedule>(options_.schedule_options())),
      statistics_(std::make_unique<StatisticsPass>(layers_, options_.fisher_options())),
      failures_(std::make_unique<FailurePolicy>(layers_.size(), options_.max_consecutive_failures())),
      damping_(options_.damping()) {
  registration_.excluded = excluded_;
  KFAC_CHECK(!layers_.empty(), excluded_.empty()
                                   ? "no K-FAC layers to precondition; build the model from kfac::nn::Linear / "
                                     "kfac::nn::Conv2d or pass kfac::Layer values explicitly"
                                   : "no K-FAC layers to precondition: the option exclude ('" + options_.exclude() +
                                         "') matches every layer (" + join_quoted(excluded_) + ")");
  std::set<std::string> names;
  std::map<const void*, std::string> params;  // parameter → its layer
  for (auto& layer : layers_) {
    KFAC_CHECK(layer.kind && layer.slot, "layer '", layer.name, "' has no layer kind or capture slot");
    KFAC_CHECK(names.insert(layer.name).second, "layer name '", layer.name, "' is registered twice");
    for (const auto& p : layer.kind->parameters()) {
      const auto [it, fresh] = params.emplace(parameter_storage(p), layer.name);
      KFAC_CHECK(fresh, "layers '", it->second, "' and '", layer.name,
                 "' share a parameter (tied weights): one block would see only its own uses. Untie the weights, "
                 "or register one module that is called twice");
    }
    if (!layer.weight_sharing) layer.weight_sharing = options_.weight_sharing();
    layer.slot->set_name(layer.name);
    layer.slot->set_kind(layer.kind);
    const auto& w = layer.kind->weight();
    // Factors of bf16/fp16 parameters accumulate and decompose in float32: half precision loses the eigenvectors
    // of the small eigenvalues (and LibTorch has no bf16 trace or eigh). Directions are cast back to the parameter.
    const bool reduced = w.scalar_type() == at::kBFloat16 || w.scalar_type() == at::kHalf;
    const auto dtype = options_.factor_dtype().value_or(reduced ? at::kFloat : w.scalar_type());
    check_damping_fits(damping_, dtype);
    CurvatureContext context{layer.name,
                             {layer.kind->dim_a(), layer.kind->dim_g()},
                             options_.damping_mode(),
                             options_.numerics_options(),
                             options_.own_blocks().subset(method_option_tables(options_.method())),
                             w.options().dtype(dtype),
                             options_.layer_options(),
                             options_.method(),
                             *layer.weight_sharing,
                             statistics_product_dtype(options_.statistics_precision(), w.is_cuda())};
    auto own = make_kind_curvature(layer.kind->own_block(), context);
    curvatures_.push_back(own ? std::move(own) : make_curvature(options_.method(), std::move(context)));
    const auto& curvature = *curvatures_.back();
    const auto form = curvature.form();
    registration_.blocks.push_back({layer.name, layer.kind->kind_name(),
                                    form.empty() ? to_string(*layer.weight_sharing) : form, curvature.structure(),
                                    curvature.memory_bytes(), curvature.diagonal_by_size()});
  }
  global_ = make_global_stage(options_.global_stage(),
                              {options_.own_blocks(), options_.method(), options_.damping_mode()});
  for (const auto& layer : layers_)  // both form Fisher-vector products from the Kronecker statistics
    KFAC_CHECK(!(global_ || options_.retain_statistics()) || layer.kind->kronecker(),
               global_ ? "the global stage (" + global_->name() + ")" : "retain_statistics",
               " needs Kronecker blocks (Linear, Conv2d, ...), but layer '", layer.name, "' is a ",
               layer.kind->kind_name(), " block; use global_stage none, or leave that module out of K-FAC");
  std::vector<BlockShape> shapes;
  for (const auto& c : curvatures_) shapes.push_back(c->shape());
  placement_ = std::make_unique<Placement>(std::move(communicator), shapes, options_.grad_worker_fraction());
  KFAC_CHECK(!placement_->distributed() || !global_ || placement_->everyone_works(), "the global stage (",
             global_->name(),
             ") applies the one-level solve to arbitrary vectors on every "
             "rank: it needs grad_worker_fraction 1, got ",
             options_.grad_worker_fraction());
  if (placement_->distributed() || options_.background_refresh())  // both move state by running_statistics()
    for (const auto& c : curvatures_)
      KFAC_CHECK(!c->running_statistics().empty(), "method '", c->method(),
                 "' does not declare its running "
                 "statistics (Curvature::running_statistics), so it cannot be used in a distributed run or with "
                 "background_refresh");
  executor_ = make_refresh_executor(options_, *placement_);
  registration_.fallback_kind = to_string(options_.fallback());
}

void Preconditioner::set_damping(double damping) {
  KFAC_CHECK(std::isfinite(damping) && damping > 0, "damping must be finite and > 0, got ", damping);
  for (const auto& c : curvatures_) check_damping_fits(damping, c->dtype());
  damping_ = damping;
}

}  // namespace kfac
