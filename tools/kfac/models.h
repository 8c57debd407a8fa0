// The tool's models, built from kfac::nn layers so the preconditioner finds them.
#pragma once

#include <torch/nn/modules/container/sequential.h>

#include <string>
#include <vector>

#include "kfac/fisher/likelihood.h"

namespace kfac::tool {

struct Model {
  std::string name;
  torch::nn::Sequential net;
  LossKind loss = LossKind::SoftmaxCrossEntropy;
  bool reconstructs_input = false;  ///< autoencoders: the target is the input
  int64_t image_side = 28;          ///< inputs are side x side images (data are resized to it); 0: token windows
};

/// The tool's models, one entry each (adding a model is one entry in models.cpp).
struct ModelEntry {
  std::string name;
  std::string doc;
  Model (*build)();
};
const std::vector<ModelEntry>& model_table();
/// Model names accepted by make_model.
std::vector<std::string> model_names();

/// "autoencoder": the K-FAC paper's MNIST autoencoder 784-1000-500-250-30-250-500-1000-784, logistic hidden units,
///                linear code layer, sparse initialization (15 nonzero N(0,1) incoming weights per unit), Bernoulli
///                output (sigmoid cross-entropy).
/// "mlp":         classifier 784-256-128-10 with ReLU, softmax cross-entropy.
/// "curves-autoencoder", "faces-autoencoder": the paper's CURVES (784-400-200-100-50-25-6-...) and FACES
///                (625-2000-1000-500-30-..., 25x25 inputs, Gaussian output) architectures.
/// "deep-linear": 784-64x16-10 with no nonlinearity (Koroko et al.'s deep linear network), softmax cross-entropy.
/// "cnn":         conv3x3(32)-pool-conv3x3(64)-pool-fc(1600,128)-fc(128,10) with ReLU, softmax cross-entropy.
/// "cuda-convnet": three 5x5 convolutions (32, 32, 64) with pooling and a linear classifier.
/// "resnet":      a small residual network: stem, two residual blocks (16 and 32 channels), global pooling.
Model make_model(const std::string& name);

/// Martens (2010) sparse initialization: `nonzero` incoming weights per unit drawn from N(0, 1), the rest and the
/// bias zero.
void sparse_init(torch::nn::Module& layer, int64_t nonzero);

}  // namespace kfac::tool
