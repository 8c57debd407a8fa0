#include "kfac/fisher/curvature_products.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/autograd.h>

#include "kfac/errors.h"

namespace kfac {

at::Tensor jacobian_vector_product(const at::Tensor& output, const ParamVector& params, const ParamVector& v) {
  KFAC_CHECK(params.size() == v.size(), "jacobian_vector_product: ", params.size(), " parameters but ", v.size(),
             " vector parts");
  auto u = at::zeros_like(output).requires_grad_(true);
  auto jtu = torch::autograd::grad({output}, params, {u}, /*retain_graph=*/true, /*create_graph=*/true,
                                   /*allow_unused=*/true);
  std::vector<at::Tensor> outs, grads;
  for (size_t i = 0; i < params.size(); ++i) {
    if (!jtu[i].defined()) continue;  // a parameter the output does not depend on contributes nothing
    outs.push_back(jtu[i]);
    grads.push_back(v[i].to(jtu[i].dtype()));
  }
  if (outs.empty()) return at::zeros_like(output);
  auto jv = torch::autograd::grad(outs, {u}, grads, /*retain_graph=*/true, false, /*allow_unused=*/true)[0];
  return jv.defined() ? jv.detach() : at::zeros_like(output);
}

at::Tensor output_hessian_product(const at::Tensor& output, const at::Tensor& z, LossKind loss) {
  const auto& l = loss.likelihood();
  // Positionwise outputs [B, T, C]: the per-example Hessian is block-diagonal over the positions.
  const auto out = l.positionwise() && output.dim() > 2 ? output.detach().reshape({-1, output.size(-1)})
                                                        : flatten_output(output.detach());
  return l.hessian_product(out, z.reshape_as(out)).reshape_as(z);
}

double gauss_newton_form(const at::Tensor& output, const at::Tensor& ju, const at::Tensor& jw, LossKind loss) {
  return (ju * output_hessian_product(output, jw, loss)).sum().item<double>() / static_cast<double>(output.size(0));
}

ParamVector gauss_newton_vector_product(const at::Tensor& output, const ParamVector& params, const ParamVector& v,
                                        LossKind loss) {
  const auto hjv = output_hessian_product(output, jacobian_vector_product(output, params, v), loss) /
                   static_cast<double>(output.size(0));
  auto g = torch::autograd::grad({output}, params, {hjv}, /*retain_graph=*/true, false, /*allow_unused=*/true);
  for (size_t i = 0; i < g.size(); ++i)
    if (!g[i].defined()) g[i] = at::zeros_like(params[i]);
  return g;
}

}  // namespace kfac
