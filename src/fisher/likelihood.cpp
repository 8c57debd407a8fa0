#include "kfac/fisher/likelihood.h"

#include <ATen/ATen.h>

#include <cmath>
#include <list>
#include <mutex>

#include "kfac/errors.h"

namespace kfac {

// Built-in likelihoods (src/fisher/likelihoods/).
std::shared_ptr<const Likelihood> make_softmax_cross_entropy();
std::shared_ptr<const Likelihood> make_sigmoid_cross_entropy();
std::shared_ptr<const Likelihood> make_squared_error();

namespace {
struct Registry {
  std::mutex mutex;
  std::list<std::pair<std::string, std::shared_ptr<const Likelihood>>> entries{
      // a list: names keep their address
      {"softmax-cross-entropy", make_softmax_cross_entropy()},
      {"sigmoid-cross-entropy", make_sigmoid_cross_entropy()},
      {"squared-error", make_squared_error()},
  };
};
Registry& registry() {
  static Registry r;
  return r;
}
}  // namespace

LossKind LossKind::named(const std::string& name) {
  std::lock_guard<std::mutex> lock(registry().mutex);
  std::vector<std::string> names;
  for (const auto& [n, l] : registry().entries) {
    if (n == name) return LossKind(n.c_str());
    names.push_back(n);
  }
  throw_unknown_name("loss", name, names);
}

const Likelihood& LossKind::likelihood() const {
  std::lock_guard<std::mutex> lock(registry().mutex);
  for (const auto& [n, l] : registry().entries)
    if (n == name_) return *l;
  KFAC_CHECK(false, "loss '", name_, "' is not registered");
  std::abort();
}

LossKind register_likelihood(std::shared_ptr<const Likelihood> likelihood) {
  KFAC_CHECK(likelihood, "register_likelihood: null likelihood");
  const auto name = likelihood->name();
  {
    std::lock_guard<std::mutex> lock(registry().mutex);
    bool replaced = false;
    for (auto& [n, l] : registry().entries)
      if (n == name) l = likelihood, replaced = true;
    if (!replaced) registry().entries.emplace_back(name, std::move(likelihood));
  }
  return LossKind::named(name);
}

std::vector<std::string> registered_likelihoods() {
  std::lock_guard<std::mutex> lock(registry().mutex);
  std::vector<std::string> names;
  for (const auto& [n, l] : registry().entries) names.push_back(n);
  return names;
}

at::Tensor flatten_output(const at::Tensor& output) {
  KFAC_CHECK(output.dim() >= 2, "the network output must be [batch, ...], got shape ", output.sizes());
  return output.reshape({output.size(0), -1});
}

namespace {
// A positionwise likelihood's output [B, T, ..., C] as rows [B·T, C] (T = 1 for [B, C]).
bool has_positions(const Likelihood& l, const at::Tensor& output) { return l.positionwise() && output.dim() > 2; }
at::Tensor position_rows(const at::Tensor& output) { return output.reshape({-1, output.size(-1)}); }

at::Tensor flat_output_gradient_rows(const at::Tensor& output, LossKind kind, FisherType fisher, int64_t samples,
                                     const at::Tensor& targets, at::Generator generator) {
  const auto& l = kind.likelihood();
  const auto z = flatten_output(output);
  switch (fisher) {
    case FisherType::Empirical:
      l.check_targets(z, targets);
      return l.label_gradient(z, targets).unsqueeze(0);
    case FisherType::Sampled:
      // One row per sample, scaled so that the rows' outer products sum to the mean.
      return l.sample_gradients(z, samples, std::move(generator)) * (1.0 / std::sqrt(static_cast<double>(samples)));
    case FisherType::Exact:
      return l.fisher_factor(z);
  }
  return {};
}
}  // namespace

at::Tensor loss(const at::Tensor& output, const at::Tensor& targets, LossKind kind) {
  const auto& l = kind.likelihood();
  if (has_positions(l, output)) {
    const auto z = position_rows(output);
    KFAC_CHECK(targets.defined() && targets.numel() == z.size(0), "targets of the ", l.name(), " loss on outputs ",
               output.sizes(), " must hold one class per position, shape ", output.sizes().slice(0, output.dim() - 1),
               ", got ", targets.defined() ? targets.sizes() : at::IntArrayRef{});
    const auto t = targets.reshape({-1});
    l.check_targets(z, t);
    return l.loss(z, t);
  }
  const auto z = flatten_output(output);
  l.check_targets(z, targets);
  return l.loss(z, targets);
}

int64_t loss_terms(const at::Tensor& targets, LossKind kind) {
  KFAC_CHECK(targets.defined() && targets.dim() >= 1 && targets.size(0) > 0,
             "loss_terms needs the training targets with a batch dimension, got ",
             targets.defined() ? targets.sizes() : at::IntArrayRef{});
  // A positionwise loss averages over every position its class-index targets hold; the others over examples.
  return kind.likelihood().positionwise() ? targets.numel() : targets.size(0);
}

at::Tensor output_gradient_rows(const at::Tensor& output, LossKind kind, FisherType fisher, int64_t samples,
                                const at::Tensor& targets, at::Generator generator) {
  const auto& l = kind.likelihood();
  if (!has_positions(l, output)) return flat_output_gradient_rows(output, kind, fisher, samples, targets, generator);
  const int64_t batch = output.size(0), classes = output.size(-1);
  const auto rows = flat_output_gradient_rows(position_rows(output), kind, fisher, samples,
                                              targets.defined() ? targets.reshape({-1}) : targets, generator);
  const int64_t positions = rows.size(1) / batch;
  if (fisher != FisherType::Exact) return rows.reshape({rows.size(0), batch, positions * classes});
  // Block-diagonal over positions: row (t, c) holds position t's factor row c and zeros elsewhere.
  const auto per_position = rows.reshape({classes, batch, positions, classes});
  auto out = at::zeros({positions, classes, batch, positions, classes}, rows.options());
  for (int64_t t = 0; t < positions; ++t) out.select(0, t).select(2, t).copy_(per_position.select(2, t));
  return out.reshape({positions * classes, batch, positions * classes});
}

}  // namespace kfac
