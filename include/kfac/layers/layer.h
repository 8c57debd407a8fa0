// A registered layer: its name, its layer kind (how its parameters look as matrices) and the capture slot its
// forward taps. The preconditioner holds one per preconditioned module.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "kfac/layers/capture.h"
#include "kfac/layers/layer_kind.h"

namespace torch::nn {
class Module;
}

namespace kfac {

struct Layer {
  std::string name;
  std::shared_ptr<LayerKind> kind;
  std::shared_ptr<Slot> slot;
};

/// Collects the kfac::nn layers of a module tree (depth-first, named as in named_modules()).
std::vector<Layer> find_layers(torch::nn::Module& model);

}  // namespace kfac
