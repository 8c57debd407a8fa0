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

at::Tensor loss(const at::Tensor& output, const at::Tensor& targets, LossKind kind) {
  const auto& l = kind.likelihood();
  const auto z = flatten_output(output);
  l.check_targets(z, targets);
  return l.loss(z, targets);
}

at::Tensor output_gradient_rows(const at::Tensor& output, LossKind kind, FisherType fisher, int64_t samples,
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

}  // namespace kfac
