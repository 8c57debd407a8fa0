// Exact Fisher–vector products from the per-example data of a statistics step, without forming per-example
// gradients (Koroko et al. 2023, `GTu_*` / `Gv_*`).
//
// For layer i, row s and example b, the per-example gradient is ∇_{sb,i} = Σ_t g_{sbt} ā_{bt}ᵀ ([d_G, d_A], exact for
// Linear and Conv2d alike), and the Fisher of the captured batch is F = (1/B) Σ_{s,b} ∇_{sb} ∇_{sb}ᵀ
// (kfac/curvature/curvature.h). Two primitives give everything else:
//   project(i, V)  u_{sb} = ⟨V, ∇_{sb,i}⟩ = Σ_t g_{sbt}ᵀ V ā_{bt}                    [S, B]
//   combine(i, w)  Σ_{s,b} w_{sb} ∇_{sb,i}                                           [d_G, d_A]
//   multiply(v)    F v = (1/B) Σ_{s,b} ∇_{sb} ⟨∇_{sb}, v⟩, layer by layer           (one project + combine each)
// Each costs one pass over the layer's B·T·d_A·d_G products, like a backward pass. The statistics are those of the
// last statistics step, so between statistics steps the products use that (stale) batch.
#pragma once

#include <ATen/core/Tensor.h>

#include <vector>

#include "kfac/curvature/curvature.h"
#include "kfac/distributed/communicator.h"

namespace kfac {

class CapturedFisher {
 public:
  CapturedFisher() = default;
  /// One LayerStatistics per layer, all from the same statistics pass (same S and B). With a communicator of
  /// several ranks (each holding its shard of the batch, equal sizes), multiply() averages over ranks, so it is the
  /// product with the Fisher of the whole batch; project() and combine() stay local.
  explicit CapturedFisher(std::vector<LayerStatistics> layers, std::shared_ptr<Communicator> comm = nullptr);

  bool empty() const { return layers_.empty(); }
  size_t layers() const { return layers_.size(); }
  int64_t examples() const { return layers_.front().examples(); }
  int64_t rows() const { return layers_.front().g.size(0); }
  const LayerStatistics& statistics(size_t layer) const { return layers_.at(layer); }

  /// ⟨V, ∇_{sb,i}⟩ for every row and example, [S, B].
  at::Tensor project(size_t layer, const at::Tensor& v) const;
  /// Σ_{s,b} w_{sb} ∇_{sb,i} for weights w of shape [S, B].
  at::Tensor combine(size_t layer, const at::Tensor& weights) const;
  /// F v for v given as one [d_G, d_A] matrix per layer (in the statistics' dtype).
  std::vector<at::Tensor> multiply(const std::vector<at::Tensor>& v) const;
  /// (F + λI) v.
  std::vector<at::Tensor> multiply_damped(const std::vector<at::Tensor>& v, double damping) const;

 private:
  std::vector<LayerStatistics> layers_;
  std::shared_ptr<Communicator> comm_;
};

}  // namespace kfac
