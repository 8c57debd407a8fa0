#include "kfac/layers/scale_shift_kind.h"

#include <ATen/ATen.h>

#include "kfac/errors.h"

namespace kfac {

ScaleShiftKind::ScaleShiftKind(at::Tensor scale, at::Tensor shift, Features features, std::string kind_name)
    : LayerKind(std::move(scale), std::move(shift)), features_(features), kind_name_(std::move(kind_name)) {
  KFAC_CHECK(weight_.defined() && (!bias_.defined() || weight_.sizes() == bias_.sizes()), kind_name_,
             ": K-FAC needs the scale (elementwise_affine / affine), and a shift of its shape if any");
}

at::Tensor ScaleShiftKind::to_positions(const at::Tensor& x, int64_t lead) const {
  const int64_t d = dim_g();
  auto sizes = x.sizes().vec();
  std::vector<int64_t> head(sizes.begin(), sizes.begin() + lead + 1);  // [lead..., B]
  auto out_sizes = head;
  out_sizes.push_back(-1);
  out_sizes.push_back(d);
  if (features_ == Features::Last) return x.reshape(out_sizes);
  // [lead..., B, C, spatial...] → [lead..., B, spatial..., C]
  KFAC_CHECK(x.dim() >= lead + 2 && x.size(lead + 1) == d, kind_name_, " input must be [B, ", d, ", ...], got shape ",
             x.sizes());
  return x.movedim(lead + 1, -1).reshape(out_sizes);
}

at::Tensor ScaleShiftKind::expand_input(const at::Tensor& normalized) const {
  KFAC_CHECK(normalized.numel() % dim_g() == 0 && normalized.dim() >= 2, kind_name_, " input of shape ",
             normalized.sizes(), " does not hold whole feature vectors of ", dim_g());
  return to_positions(normalized, 0);
}

at::Tensor ScaleShiftKind::expand_output_grad(const at::Tensor& g) const { return to_positions(g, 1); }

at::Tensor ScaleShiftKind::to_matrix(const std::vector<at::Tensor>& tensors) const {
  KFAC_CHECK(tensors.size() == static_cast<size_t>(dim_a()), kind_name_, ": to_matrix needs ",
             dim_a() == 2 ? "(scale, shift)" : "the scale", ", got ", tensors.size(), " tensors");
  if (dim_a() == 1) return tensors[0].reshape({-1, 1});
  return at::stack({tensors[0].reshape({-1}), tensors[1].reshape({-1}).to(tensors[0].dtype())}, 1);
}

std::vector<at::Tensor> ScaleShiftKind::from_matrix(const at::Tensor& m) const {
  std::vector<at::Tensor> parts{m.select(1, 0).reshape(weight_.sizes()).to(weight_.dtype())};
  if (bias_.defined()) parts.push_back(m.select(1, 1).reshape(bias_.sizes()).to(bias_.dtype()));
  return parts;
}

LayerStatistics ScaleShiftKind::statistics(const std::vector<Tap>& taps, WeightSharing /*sharing*/,
                                           at::ScalarType dtype) const {
  return expanded(taps, dtype);
}

}  // namespace kfac
