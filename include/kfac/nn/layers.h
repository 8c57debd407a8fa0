// Capture-enabled drop-in layers: kfac::nn::Linear, Conv2d, Conv1d and Embedding are torch::nn's modules (same
// options, same parameter names) whose forward taps the layer's Slot. A Preconditioner built from the model finds
// them by module name:
//
//   struct NetImpl : torch::nn::Module {
//     kfac::nn::Linear fc1{784, 128}, fc2{128, 10};
//     NetImpl() { register_module("fc1", fc1); register_module("fc2", fc2); }
//     torch::Tensor forward(torch::Tensor x) { return fc2(torch::relu(fc1(x))); }
//   };
//   kfac::Preconditioner precond(*net, options);
//
// A Linear layer takes inputs [B, ..., d]; the positions between batch and features share its weight and enter its
// factors by the preconditioner's weight_sharing option, or by the layer's own choice:
// `fc1->weight_sharing(kfac::WeightSharing::Reduce)`. What each accepts is its layer kind's decision
// (src/layers/*_kind.cpp), made at construction.
//
// Hand-written forward code can instead keep a kfac::Layer (linear_layer / conv2d_layer) and call
// `layer.slot->tap(x, y)` after computing y.
#pragma once

#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <memory>

#include "kfac/layers/layer.h"
#include "kfac/nn/stand_in.h"

namespace kfac::nn {

class LinearImpl : public torch::nn::LinearImpl, public StandIn {
 public:
  LinearImpl(int64_t in_features, int64_t out_features)
      : LinearImpl(torch::nn::LinearOptions(in_features, out_features)) {}
  explicit LinearImpl(const torch::nn::LinearOptions& options) : torch::nn::LinearImpl(options) {}
  torch::Tensor forward(const torch::Tensor& input);
  std::string kind_name() const override { return "Linear"; }
  ModuleConfig config() const override;
};
TORCH_MODULE(Linear);

class Conv2dImpl : public torch::nn::Conv2dImpl, public StandIn {
 public:
  Conv2dImpl(int64_t in_channels, int64_t out_channels, torch::ExpandingArray<2> kernel_size)
      : Conv2dImpl(torch::nn::Conv2dOptions(in_channels, out_channels, kernel_size)) {}
  explicit Conv2dImpl(const torch::nn::Conv2dOptions& options);
  torch::Tensor forward(const torch::Tensor& input);
  std::string kind_name() const override { return "Conv2d"; }
  ModuleConfig config() const override;
};
TORCH_MODULE(Conv2d);

/// torch::nn::Conv1d on [B, C, L]: a weight-sharing layer over its output positions (expand or reduce).
class Conv1dImpl : public torch::nn::Conv1dImpl, public StandIn {
 public:
  Conv1dImpl(int64_t in_channels, int64_t out_channels, torch::ExpandingArray<1> kernel_size)
      : Conv1dImpl(torch::nn::Conv1dOptions(in_channels, out_channels, kernel_size)) {}
  explicit Conv1dImpl(const torch::nn::Conv1dOptions& options);
  torch::Tensor forward(const torch::Tensor& input);
  std::string kind_name() const override { return "Conv1d"; }
  ModuleConfig config() const override;
};
TORCH_MODULE(Conv1d);

/// torch::nn::Embedding whose forward taps its ids and output: an Embedding block (kfac/layers/embedding_kind.h).
/// max_norm (which rewrites the weight in the forward) and sparse gradients are not supported.
class EmbeddingImpl : public torch::nn::EmbeddingImpl, public StandIn {
 public:
  EmbeddingImpl(int64_t num_embeddings, int64_t embedding_dim)
      : EmbeddingImpl(torch::nn::EmbeddingOptions(num_embeddings, embedding_dim)) {}
  explicit EmbeddingImpl(const torch::nn::EmbeddingOptions& options);
  torch::Tensor forward(const torch::Tensor& input);
  std::string kind_name() const override { return "Embedding"; }
  ModuleConfig config() const override;
};
TORCH_MODULE(Embedding);

}  // namespace kfac::nn

namespace kfac {
/// A Layer for a plain torch::nn::Linear, tapped by hand: `y = fc(x); layer.slot->tap(x, y);`.
Layer linear_layer(const std::string& name, const torch::nn::LinearImpl& module);
/// A Layer for a plain torch::nn::Conv2d (groups 1, zero padding), tapped by hand; an error if K-FAC has no block.
Layer conv2d_layer(const std::string& name, const torch::nn::Conv2dImpl& module);
}  // namespace kfac
