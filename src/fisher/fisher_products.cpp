#include "kfac/fisher/fisher_products.h"

#include <ATen/ATen.h>

#include "kfac/distributed/collectives.h"
#include "kfac/errors.h"

namespace kfac {

CapturedFisher::CapturedFisher(std::vector<LayerStatistics> layers, std::shared_ptr<Communicator> comm)
    : layers_(std::move(layers)), comm_(std::move(comm)) {
  for (const auto& s : layers_)
    KFAC_CHECK(s.g.size(0) == rows() && s.examples() == examples(),
               "CapturedFisher: every layer must come from "
               "the same statistics pass; got [S, B] = [",
               s.g.size(0), ", ", s.examples(), "] and [", rows(), ", ", examples(), "]");
}

at::Tensor CapturedFisher::project(size_t layer, const at::Tensor& v) const {
  const auto& s = layers_.at(layer);
  // (ā V ᵀ) is [B, T, d_G]; its dot product with g over (t, d_G) gives ⟨V, ∇_sb⟩.
  const auto av = at::matmul(s.a, v.t());
  return (s.g * av.unsqueeze(0)).sum(at::IntArrayRef{2, 3});
}

at::Tensor CapturedFisher::combine(size_t layer, const at::Tensor& weights) const {
  const auto& s = layers_.at(layer);
  // Σ_{s,b,t} w_sb g_sbt ā_btᵀ: weight g, sum over the rows s, then one product over (b, t).
  const auto gw = (s.g * weights.view({weights.size(0), weights.size(1), 1, 1})).sum(0);  // [B, T, d_G]
  return at::matmul(gw.reshape({-1, gw.size(2)}).t(), s.a.reshape({-1, s.a.size(2)}));
}

std::vector<at::Tensor> CapturedFisher::multiply(const std::vector<at::Tensor>& v) const {
  KFAC_CHECK(!empty(), "no captured statistics: Fisher–vector products need a statistics step first");
  KFAC_CHECK(v.size() == layers_.size(), "Fisher–vector product: ", v.size(), " matrices for ", layers_.size(),
             " layers");
  at::Tensor u;
  for (size_t i = 0; i < v.size(); ++i) {
    const auto p = project(i, v[i].to(layers_[i].a.scalar_type()));
    u = u.defined() ? u + p : p;
  }
  u = u / static_cast<double>(examples());
  std::vector<at::Tensor> out;
  for (size_t i = 0; i < v.size(); ++i) out.push_back(combine(i, u).to(v[i].scalar_type()));
  if (comm_) all_reduce_mean(*comm_, out);
  return out;
}

std::vector<at::Tensor> CapturedFisher::multiply_damped(const std::vector<at::Tensor>& v, double damping) const {
  auto out = multiply(v);
  for (size_t i = 0; i < v.size(); ++i) out[i].add_(v[i], damping);
  return out;
}

}  // namespace kfac
