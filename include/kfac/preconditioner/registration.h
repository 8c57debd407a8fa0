// What a preconditioner registered from a model, and what it did with the rest: every parameter of the model is
// either in a layer-kind block or in the fallback (kfac/preconditioner/fallback.h), and the report says which.
//
//   registered 5 blocks: 4 Linear (expand), 1 Conv2d; fallback (identity) for 2 parameters: pos_embedding,
//   attn.in_proj_weight (use kfac::nn::MultiheadAttention)
//
// A parameter used by two modules (tied weights) is refused when one of them is a registered layer: its block
// would see only one of the uses. Untie the weights, or register neither module.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

#include "kfac/layers/layer.h"

namespace torch::nn {
class Module;
}

namespace kfac {

struct Registration {
  struct Block {
    std::string name;  ///< the layer's name
    std::string kind;  ///< its layer kind, e.g. "Linear"
    std::string form;  ///< how its statistics are formed, e.g. "expand"
  };
  struct FallbackParameter {
    std::string name;         ///< as in model.named_parameters()
    std::string module_type;  ///< the type of the module that holds it
    std::string hint;         ///< what to use instead, when a registered kind covers that module's purpose
    at::Tensor parameter;
  };
  std::vector<Block> blocks;
  std::vector<FallbackParameter> fallback;
  std::string fallback_kind = "identity";

  /// One line: the blocks by kind and form, then the fallback parameters (with hints).
  std::string summary() const;
};

/// What identifies a parameter for tie detection: its storage (shared by tied weights, set_data included).
const void* parameter_storage(const at::Tensor& parameter);

/// The fallback parameters of `model` given its registered layers: every parameter no layer holds, once each.
/// Throws naming both modules if a layer's parameter is also held by another module.
std::vector<Registration::FallbackParameter> fallback_parameters(torch::nn::Module& model,
                                                                 const std::vector<Layer>& layers);

}  // namespace kfac
