// The statistics pass: how a statistics step's activations and output gradients are captured, in one of three
// protocols, and the targets' random generator.
//
//   run            a separate forward on the first ceil(stats_fraction·B) examples with capture on, then one
//                  autograd query per target row for dLoss/dOutput of every layer (model-sampled targets for the
//                  true Fisher, the labels for the empirical one, the output Fisher's factor for the exact one);
//                  autograd computes only what those outputs need (no weight gradients)
//   arm_forward +  the same from the training forward (one forward less; stats_fraction 1): the slots retain the
//   from_forward   outputs, and the rows are back-propagated from the training output
//   arm_backward   the user's own backward delivers dLoss/dOutput through gradient hooks (empirical Fisher)
//
// Step k samples from a generator seeded with (seed, k), so that a resumed run draws the same targets.
#pragma once

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include <functional>
#include <string>
#include <vector>

#include "kfac/curvature/curvature.h"
#include "kfac/fisher/likelihood.h"
#include "kfac/layers/layer.h"
#include "kfac/preconditioner/options.h"

namespace kfac {

class StatisticsPass {
 public:
  StatisticsPass(std::vector<Layer>& layers, const FisherOptions& options) : layers_(layers), options_(options) {}

  void run(const std::function<at::Tensor(const at::Tensor&)>& forward, const at::Tensor& inputs, LossKind loss,
           const at::Tensor& targets, int64_t step);
  void arm_forward();
  void from_forward(const at::Tensor& output, LossKind loss, const at::Tensor& targets, int64_t step);
  void arm_backward(double grad_scale);
  /// Sets the scale of an armed backward capture (throws when none is armed).
  void set_backward_scale(double grad_scale);

  /// What a statistics step captured.
  struct Capture {
    std::vector<LayerStatistics> batch;  ///< per layer, expanded, in the requested dtypes (undefined: frozen)
    std::vector<std::string> missing;    ///< layers that captured nothing while others did (frozen ones excepted)
    bool nonfinite_outputs = false;      ///< the model's outputs were not finite: nothing was sampled
    bool any = false;                    ///< some layer captured something
  };
  /// Takes this step's captures (expanded by each layer's kind, in `dtypes[i]`) and releases the slots. Layers with
  /// `sample[i]` set, one tap and weight sharing expand are expanded at a sample of their positions only
  /// (positions_to_sample; option stats_positions).
  Capture collect(const std::vector<at::ScalarType>& dtypes, int64_t step, const std::vector<bool>& sample);
  /// A uniform sample, without replacement and in increasing order, of options().stats_positions() of a layer's
  /// `positions` shared positions, drawn from (seed, step, layer): [k] int64 on the CPU. Undefined when the option is
  /// 0 or covers every position.
  at::Tensor positions_to_sample(int64_t positions, int64_t step, size_t layer) const;
  /// Disarms and empties every slot.
  void clear();
  /// Whether a layer captured anything (or the outputs were refused) since the last collect() or clear().
  bool captured() const;
  const FisherOptions& options() const { return options_; }

 private:
  void record_output_gradients(const at::Tensor& output, LossKind loss, const at::Tensor& targets, int64_t step);
  at::Generator generator(int64_t step) const;

  std::vector<Layer>& layers_;
  FisherOptions options_;
  bool nonfinite_outputs_ = false;
  mutable at::Generator generator_;            // one per pass, reseeded per step (cloning leaks in LibTorch 1.13)
  mutable at::Generator positions_generator_;  // the CPU's, for positions_to_sample
};

}  // namespace kfac
