#include "kfac/layers/layer_kind.h"

#include <ATen/ATen.h>

#include "kfac/errors.h"

namespace kfac {

std::array<int64_t, 2> LayerKind::grid(const at::Tensor& grad_output) const {
  return {1, expand_output_grad(grad_output).size(2)};
}

at::Tensor LayerKind::expand_input_at(const at::Tensor& input, const at::Tensor& positions) const {
  return expand_input(input).index_select(1, positions);
}

LayerStatistics LayerKind::statistics_at(const Tap& tap, const at::Tensor& positions, at::ScalarType dtype) const {
  const auto grid_of_tap = grid(tap.grad_output);
  LayerStatistics s;
  s.a = expand_input_at(tap.input, positions).to(dtype);
  s.g = expand_output_grad(tap.grad_output).index_select(2, positions).to(dtype);
  s.grid = {1, positions.size(0)};
  s.sampled_from = grid_of_tap[0] * grid_of_tap[1];
  return s;
}

at::Tensor LayerKind::to_matrix(const std::vector<at::Tensor>& tensors) const {
  KFAC_CHECK(tensors.size() == (has_bias() ? 2U : 1U), kind_name(), " layer: to_matrix needs ", has_bias() ? 2 : 1,
             " tensors (weight", has_bias() ? ", bias" : "", "), got ", tensors.size());
  auto w = tensors[0].reshape({weight_.size(0), -1});
  return has_bias() ? at::cat({w, tensors[1].reshape({-1, 1}).to(w.dtype())}, 1) : w;
}

std::vector<at::Tensor> LayerKind::from_matrix(const at::Tensor& m) const {
  const int64_t cols = bias_.defined() ? m.size(1) - 1 : m.size(1);
  std::vector<at::Tensor> parts{m.narrow(1, 0, cols).reshape(weight_.sizes()).to(weight_.dtype())};
  if (bias_.defined()) parts.push_back(m.select(1, cols).to(bias_.dtype()));
  return parts;
}

LayerStatistics LayerKind::expanded(const std::vector<Tap>& taps, at::ScalarType dtype,
                                    c10::optional<at::ScalarType> input_dtype) const {
  KFAC_CHECK(!taps.empty(), kind_name(), " layer: no recorded use to form statistics from");
  std::vector<at::Tensor> a, g;
  for (const auto& t : taps) {
    a.push_back(expand_input(t.input).to(input_dtype.value_or(dtype)));
    g.push_back(expand_output_grad(t.grad_output).to(dtype));
  }
  LayerStatistics s;
  // Several uses of the layer are more positions of it (their batch and target rows must agree).
  s.a = a.size() == 1 ? a[0] : at::cat(a, 1);
  s.g = g.size() == 1 ? g[0] : at::cat(g, 2);
  s.grid = taps.size() == 1 ? grid(taps[0].grad_output) : std::array<int64_t, 2>{1, s.a.size(1)};
  return s;
}

LayerStatistics LayerKind::statistics(const std::vector<Tap>& taps, WeightSharing sharing, at::ScalarType dtype) const {
  auto s = expanded(taps, dtype);
  if (sharing == WeightSharing::Reduce && s.locations() > 1) {
    // K-FAC-reduce: â_n = mean_t ā_{n,t} (the homogeneous 1 survives), ĝ_n = Σ_t g_{n,t}.
    s.a = s.a.mean(1, /*keepdim=*/true);
    s.g = s.g.sum(2, /*keepdim=*/true);
    s.grid = {1, 1};
  }
  return s;
}

at::Tensor LayerKind::grad_matrix() const {
  const auto& gw = weight_.grad();
  if (!gw.defined()) return {};
  std::vector<at::Tensor> grads{gw};
  if (bias_.defined()) grads.push_back(bias_.grad().defined() ? bias_.grad() : at::zeros_like(bias_));
  return to_matrix(grads);
}

void LayerKind::set_grad_matrix(const at::Tensor& m) const {
  const auto parts = from_matrix(m);
  const auto params = parameters();
  for (size_t i = 0; i < parts.size(); ++i) {
    auto& p = params[i];
    if (p.grad().defined())
      p.mutable_grad().copy_(parts[i]);
    else
      p.mutable_grad() = parts[i].clone();
  }
}

at::Tensor LayerKind::param_matrix() const {
  std::vector<at::Tensor> values;
  for (const auto& p : parameters()) values.push_back(p.detach());
  return to_matrix(values).clone();
}

bool LayerKind::frozen() const { return !weight_.requires_grad() && !(bias_.defined() && bias_.requires_grad()); }

std::vector<at::Tensor> LayerKind::parameters() const {
  if (bias_.defined()) return {weight_, bias_};
  return {weight_};
}

}  // namespace kfac
