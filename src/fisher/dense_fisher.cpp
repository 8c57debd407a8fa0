#include "kfac/fisher/dense_fisher.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/autograd.h>

#include "kfac/errors.h"

namespace kfac {

at::Tensor vec(const at::Tensor& m) { return m.t().reshape({-1}); }
at::Tensor unvec(const at::Tensor& v, int64_t rows, int64_t cols) { return v.reshape({cols, rows}).t(); }

at::Tensor flat_grad(const at::Tensor& scalar, const std::vector<Layer>& layers) {
  std::vector<at::Tensor> params;
  for (const auto& l : layers)
    for (const auto& p : l.kind->parameters()) params.push_back(p);
  auto grads = torch::autograd::grad({scalar}, params, {}, /*retain_graph=*/true, false, /*allow_unused=*/true);
  std::vector<at::Tensor> out;
  size_t k = 0;
  for (const auto& l : layers) {
    std::vector<at::Tensor> parts;
    for (const auto& p : l.kind->parameters()) {
      parts.push_back(grads[k].defined() ? grads[k] : at::zeros_like(p));
      ++k;
    }
    out.push_back(vec(l.kind->to_matrix(parts)));
  }
  return at::cat(out);
}

DenseFisher exact_fisher(const Forward& forward, const std::vector<Layer>& layers, const at::Tensor& inputs,
                         LossKind loss, bool true_fisher, const at::Tensor& targets) {
  DenseFisher f;
  int64_t total = 0;
  for (const auto& l : layers) {
    f.offsets.push_back(total);
    total += l.kind->dim_a() * l.kind->dim_g();
  }
  f.offsets.push_back(total);
  f.matrix = at::zeros({total, total}, at::kDouble);
  const int64_t batch = inputs.size(0);
  auto add = [&](const at::Tensor& g, double w) { f.matrix += w * at::outer(g, g); };
  const auto& likelihood = loss.likelihood();
  for (int64_t b = 0; b < batch; ++b) {
    const auto out = forward(inputs.narrow(0, b, 1));
    if (likelihood.positionwise() && out.dim() > 2) {  // one distribution per position: a sum of their Fishers
      const auto rows = out.reshape({-1, out.size(-1)});
      KFAC_CHECK(true_fisher, "the dense oracle's empirical Fisher takes [B, C] outputs");
      for (int64_t t = 0; t < rows.size(0); ++t)
        for (const auto& [scalar, weight] : likelihood.oracle_terms(rows[t])) add(flat_grad(scalar, layers), weight);
      continue;
    }
    auto z = out.reshape({-1});
    if (!true_fisher) {
      add(flat_grad(kfac::loss(z.unsqueeze(0), targets.narrow(0, b, 1), loss), layers), 1.0);
      continue;
    }
    for (const auto& [scalar, weight] : likelihood.oracle_terms(z)) add(flat_grad(scalar, layers), weight);
  }
  f.matrix /= static_cast<double>(batch);
  return f;
}

}  // namespace kfac
