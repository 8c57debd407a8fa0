#include "kfac/layers/embedding_kind.h"

#include <ATen/ATen.h>

#include "kfac/errors.h"
#include "kfac/layers/kind_definition.h"

namespace kfac {

EmbeddingKind::EmbeddingKind(at::Tensor weight) : LayerKind(std::move(weight), {}) {
  KFAC_CHECK(weight_.dim() == 2, "Embedding weight must be 2-D [num_embeddings, dim], got shape ", weight_.sizes());
}

at::Tensor EmbeddingKind::expand_input(const at::Tensor& ids) const {
  KFAC_CHECK(ids.dim() >= 1 && !at::isFloatingType(ids.scalar_type()),
             "Embedding input must be integer ids [B, ...], got ", ids.scalar_type(), " of shape ", ids.sizes());
  return ids.reshape({ids.size(0), -1, 1});
}

at::Tensor EmbeddingKind::expand_output_grad(const at::Tensor& g) const {
  KFAC_CHECK(g.dim() >= 3 && g.size(-1) == dim_g(), "Embedding output gradients must be [S, B, ..., ", dim_g(),
             "], got shape ", g.sizes());
  return g.reshape({g.size(0), g.size(1), -1, dim_g()});
}

at::Tensor EmbeddingKind::to_matrix(const std::vector<at::Tensor>& tensors) const {
  KFAC_CHECK(tensors.size() == 1, "Embedding: to_matrix needs the weight only, got ", tensors.size(), " tensors");
  return tensors[0].t();
}

std::vector<at::Tensor> EmbeddingKind::from_matrix(const at::Tensor& m) const { return {m.t().to(weight_.dtype())}; }

LayerStatistics EmbeddingKind::statistics(const std::vector<Tap>& taps, WeightSharing /*sharing*/,
                                          at::ScalarType dtype) const {
  return expanded(taps, dtype, at::kLong);  // ā: the ids [B, T, 1], int64 whatever the factor dtype
}

KindDefinition embedding_definition() {
  return {"Embedding",
          {"torch.nn.Embedding"},
          {"weight", "max_norm", "sparse"},
          [](const ModuleConfig& c) {
            if (c.has("max_norm"))
              return KindChoice::refuse("max_norm " + c.show("max_norm") +
                                        " rewrites the weight in the forward; K-FAC needs it unset (None)");
            if (c.flag("sparse", false)) return KindChoice::refuse("sparse gradients: K-FAC needs sparse=False");
            return KindChoice::accept(std::make_shared<EmbeddingKind>(c.tensor("weight")));
          },
          "torch::nn::EmbeddingImpl",
          "kfac::nn::Embedding"};
}

}  // namespace kfac
