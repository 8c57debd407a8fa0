// `kfac fisher`, the curvature lab: on a small network and real data, how far each method's curvature is from the
// exact Fisher block, and how far its direction is from the exact damped natural gradient.
#pragma once

#include <string>
#include <vector>

namespace kfac::tool {

struct FisherLabConfig {
  std::string model = "mlp";  ///< tiny "mlp" (49-16-10, tanh) or "cnn" (two 3x3 convs + linear) on 7x7 images
  int64_t examples = 32;      ///< Fashion-MNIST training images, average-pooled to 7x7
  double damping = 1e-3;
  uint64_t seed = 0;
  std::string data_dir;
  std::vector<std::string> methods;  ///< empty = every registered method, then kfac with each global stage
  std::string combine = "additive";  ///< two-level combination of the kfac+SPACE rows
};

struct FisherLabRow {
  std::string method;
  std::vector<double> block_distance;  ///< per layer: ‖C − F_block‖_F / ‖F_block‖_F
  double angle_degrees = 0;            ///< between the method's direction and (F + λI)⁻¹ g, all layers
};

struct FisherLabResult {
  std::vector<std::string> layers;
  std::vector<FisherLabRow> rows;  ///< the methods, then the raw gradient ("sgd") as a baseline
};

FisherLabResult run_fisher_lab(const FisherLabConfig& config);
/// Markdown table of a result.
std::string fisher_lab_table(const FisherLabResult& result);

}  // namespace kfac::tool
