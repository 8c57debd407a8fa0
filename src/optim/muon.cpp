#include "kfac/optim/muon.h"

#include <ATen/ATen.h>
#include <torch/nn/modules/embedding.h>

#include <algorithm>
#include <cmath>
#include <sstream>

#include "kfac/errors.h"
#include "util/text.h"

namespace kfac {

const OptionTable<MuonOptions>& MuonOptions::table() {
  using O = MuonOptions;
  static const OptionTable<O> t(
      "muon", "Muon (kfac::Muon, Python's kronfac.Muon): orthogonalized momentum for hidden weight matrices",
      {field<O>(KFAC_FIELD(O, lr), "Learning rate", bounded(positive())),
       field<O>(KFAC_FIELD(O, momentum), "Momentum μ of the buffer that is orthogonalized",
                bounded(between(0, 1, false, true))),
       field<O>(KFAC_FIELD(O, nesterov), "Orthogonalize the Nesterov look-ahead G + μ(B − G) instead of B"),
       field<O>(KFAC_FIELD(O, ns_steps), "Newton-Schulz iterations", bounded(between(1, 100))),
       field<O>(KFAC_FIELD(O, weight_decay), "Decoupled weight decay λ: W ← W(1 − ηλ) before the update",
                bounded(at_least(0))),
       field<O>(KFAC_FIELD(O, adjust_lr),
                "Scale of the orthogonal update: original (√max(1, rows/cols), Jordan et al.) or match_rms_adamw "
                "(0.2·√max(rows, cols), Moonlight; AdamW's learning rate carries over)",
                {std::nullopt, "", {"original", "match_rms_adamw"}}),
       field<O>(KFAC_FIELD(O, orthogonalize),
                "Orthogonalize this group's matrices; false: AdamW (embeddings, the output head, vectors)"),
       field<O>(KFAC_FIELD(O, beta1), "Adam's first-moment decay (Muon: the AdamW group's)",
                bounded(between(0, 1, false, true))),
       field<O>(KFAC_FIELD(O, beta2), "Adam's second-moment decay (Muon: the AdamW group's)",
                bounded(between(0, 1, false, true))),
       field<O>(KFAC_FIELD(O, eps), "Adam's ε in m̂ / (√v̂ + ε)", bounded(positive()))});
  return t;
}

at::Tensor newton_schulz_orthogonalize(const at::Tensor& g, int64_t steps) {
  KFAC_CHECK(g.dim() >= 2, "Newton-Schulz orthogonalizes matrices; got a tensor of shape ", g.sizes());
  // Jordan et al.'s quintic coefficients (also torch.optim.Muon's defaults).
  constexpr double a = 3.4445, b = -4.7750, c = 2.0315;
  const auto dtype = (g.scalar_type() == at::kHalf || g.scalar_type() == at::kBFloat16) ? at::kFloat : g.scalar_type();
  auto x = g.reshape({g.size(0), -1}).to(dtype);
  const bool tall = x.size(0) > x.size(1);
  if (tall) x = x.t();
  x = x / x.norm().clamp_min(1e-7);
  for (int64_t k = 0; k < steps; ++k) {
    const auto gram = at::mm(x, x.t());
    const auto poly = at::addmm(gram, gram, gram, b, c);  // bA + cA²
    x = at::addmm(x, poly, x, a, 1);                      // aX + (bA + cA²)X
  }
  if (tall) x = x.t();
  return x.reshape(g.sizes()).to(g.scalar_type());
}

MuonSplit muon_split(const std::vector<MuonParameter>& params) {
  MuonSplit split;
  int64_t head = -1;  // the last module holding a matrix
  for (const auto& p : params)
    if (p.value.dim() >= 2) head = std::max(head, p.module);
  std::vector<std::string> matrices, embeddings, heads;
  size_t vectors = 0;
  for (const auto& p : params) {
    if (!p.value.requires_grad()) continue;
    if (p.value.dim() < 2) {
      ++vectors;
    } else if (p.in_embedding) {
      embeddings.push_back(p.name);
    } else if (p.module == head) {
      heads.push_back(p.name);
    } else {
      matrices.push_back(p.name);
      split.orthogonalized.push_back(p.value);
      continue;
    }
    split.adamw.push_back(p.value);
  }
  std::ostringstream r;
  r << "Muon orthogonalizes " << matrices.size() << " matri" << (matrices.size() == 1 ? "x" : "ces");
  if (!matrices.empty()) r << " (" << join(matrices) << ")";
  r << "; AdamW takes " << split.adamw.size() << " parameter" << (split.adamw.size() == 1 ? "" : "s") << ":";
  if (!embeddings.empty()) r << " embeddings " << join(embeddings) << ";";
  if (!heads.empty()) r << " the output head " << join(heads) << ";";
  r << " " << vectors << " biases and gains";
  split.report = r.str();
  return split;
}

MuonSplit muon_split(const torch::nn::Module& model) {
  std::vector<MuonParameter> params;
  int64_t index = 0;
  for (const auto& item : model.named_modules("", /*include_self=*/true)) {
    const bool embedding = dynamic_cast<const torch::nn::EmbeddingImpl*>(item.value().get()) != nullptr;
    for (const auto& p : item.value()->named_parameters(/*recurse=*/false))
      params.push_back({(item.key().empty() ? "" : item.key() + ".") + p.key(), p.value(), embedding, index});
    ++index;
  }
  return muon_split(params);
}

std::vector<torch::optim::OptimizerParamGroup> muon_groups(const MuonSplit& split, const MuonOptions& options,
                                                           double adamw_lr) {
  std::vector<torch::optim::OptimizerParamGroup> groups;
  if (!split.orthogonalized.empty())
    groups.emplace_back(split.orthogonalized, std::make_unique<MuonOptions>(MuonOptions(options).orthogonalize(true)));
  if (!split.adamw.empty())
    groups.emplace_back(split.adamw,
                        std::make_unique<MuonOptions>(MuonOptions(options).orthogonalize(false).lr(adamw_lr)));
  return groups;
}

Muon::Muon(std::vector<torch::optim::OptimizerParamGroup> groups, const MuonOptions& defaults)
    : ParameterwiseOptimizerOf(std::move(groups), defaults, "muon") {
  validate_groups();
}

void Muon::validate_group(const torch::optim::OptimizerOptions& options, size_t group) const {
  ParameterwiseOptimizerOf::validate_group(options, group);
  if (!options_of(options).orthogonalize()) return;
  const auto& params = param_groups_[group].params();
  for (size_t i = 0; i < params.size(); ++i)
    KFAC_CHECK(params[i].dim() >= 2, "Muon orthogonalizes matrices, but ", parameter_name(group, i, params[i]),
               " is not one; give biases, gains, embeddings and the output head to a group with orthogonalize = "
               "false (AdamW), e.g. kfac::muon_groups(kfac::muon_split(model), ...)");
}

ParameterUpdate Muon::update(const at::Tensor& param, const at::Tensor& grad, const TensorState& state,
                             const torch::optim::OptimizerOptions& options, int64_t t, const std::string&) {
  const auto& o = options_of(options);
  ParameterUpdate u;
  const auto decayed = o.weight_decay() > 0 ? param * (1 - o.lr() * o.weight_decay()) : param;
  if (!o.orthogonalize()) {
    u.value = decayed - o.lr() * adam_direction(grad, state, u.state, o.beta1(), o.beta2(), o.eps(), t);
    return u;
  }
  const auto it = state.find("momentum_buffer");
  auto buffer = at::lerp(it == state.end() ? at::zeros_like(grad) : it->second, grad, 1 - o.momentum());
  const auto look = o.nesterov() ? at::lerp(grad, buffer, o.momentum()) : buffer;
  const double rows = static_cast<double>(param.size(0)), cols = static_cast<double>(param.numel()) / rows;
  const double scale = o.adjust_lr() == "original" ? std::sqrt(std::max(1.0, rows / cols))
                                                   : 0.2 * std::sqrt(std::max(rows, cols));
  u.value = decayed - (o.lr() * scale) * newton_schulz_orthogonalize(look, o.ns_steps());
  u.state["momentum_buffer"] = std::move(buffer);
  return u;
}

}  // namespace kfac
