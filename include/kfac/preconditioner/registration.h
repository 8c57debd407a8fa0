// What a preconditioner registered from a model, and what it did with the rest: every parameter of the model is
// either in a layer-kind block or in the fallback (src/preconditioner/fallback.h), and the report says which.
//
//   registered 5 blocks: 4 Linear (expand), 1 Conv2d (expand); diagonal above factor_full_max_dim: 'fc1' (A 9217
//   diagonal x G 128); fallback (identity) for 2 parameters: pos_embedding, attn.in_proj_weight (use
//   kfac::nn::MultiheadAttention)
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
    std::string name;               ///< the layer's name
    std::string kind;               ///< its layer kind, e.g. "Linear"
    std::string form;               ///< how its statistics are formed, e.g. "expand"
    std::string structure;          ///< its factors' sizes and structures, e.g. "A 9217 diagonal x G 128"
    int64_t memory_bytes = 0;       ///< its curvature state at registration (a refresh adds about as much again)
    bool diagonal_by_size = false;  ///< a factor side is diagonal because it exceeds factor_full_max_dim
  };
  struct FallbackParameter {
    std::string name;         ///< as in model.named_parameters()
    std::string module_type;  ///< the type of the module that holds it
    std::string hint;         ///< what to use instead, when a registered kind covers that module's purpose
    at::Tensor parameter;
  };
  std::vector<Block> blocks;
  std::vector<FallbackParameter> fallback;
  std::vector<std::string> frozen;    ///< parameters that do not require grad: left alone, like the optimizer does
  std::vector<std::string> excluded;  ///< layers the option exclude sent to the fallback
  std::string fallback_kind = "identity";

  /// One line: the blocks by kind and form, the blocks with a side made diagonal by factor_full_max_dim, the largest
  /// block when it holds kLargeBlockBytes or more, the fallback parameters (with hints), the excluded layers, then
  /// the frozen ones.
  std::string summary() const;
  /// One line per block: name, kind (form), factor sizes and structure, memory.
  std::string details() const;
  static constexpr int64_t kLargeBlockBytes = int64_t{64} << 20;
};

/// What identifies a parameter for tie detection: its storage (shared by tied weights, set_data included).
const void* parameter_storage(const at::Tensor& parameter);

/// A module as the fallback search sees it: any module tree (LibTorch's, or a Python model's through the bindings)
/// is flattened into these, outermost first, as named_modules() lists them.
struct ModuleParameters {
  std::string name;  ///< as in named_modules() ("" for the root)
  std::string type;  ///< the module's type, e.g. "torch::nn::LinearImpl"
  std::string hint;  ///< what to use instead, when a registered kind covers its purpose ("" when none)
  std::vector<std::pair<std::string, at::Tensor>> parameters;  ///< its own parameters (not its children's)
};

/// Every module of a LibTorch tree, with the registry's replacement hints.
std::vector<ModuleParameters> module_parameters(torch::nn::Module& model);

/// The fallback parameters of a model given its registered layers: every trainable parameter no layer holds, once
/// each, with the hint of the outermost module that has one; the frozen ones (no requires_grad) go to `frozen`.
/// Throws naming both modules if a layer's parameter is also held by another module.
std::vector<Registration::FallbackParameter> fallback_parameters(const std::vector<ModuleParameters>& modules,
                                                                 const std::vector<Layer>& layers,
                                                                 std::vector<std::string>* frozen = nullptr);

}  // namespace kfac
