// Capture: how a layer's input activations and output gradients reach the preconditioner.
//
// Each registered layer owns a Slot. Its forward calls `slot.tap(input, output)` with the module's own input (the
// kfac::nn modules do it for you; hand-written forward code calls it explicitly); the slot records what the layer's
// kind makes of it (LayerKind::statistics_input: the normalized input of a normalization layer). A slot records only while the preconditioner has armed it,
// which happens only on steps that update statistics, so every other step costs nothing and retains no tensor.
//
// A layer whose weights are used several times in one forward (a module called twice, tied weights) taps once per
// use; each tap is one more set of shared positions of the layer (weight sharing, docs/design.md §13).
//
// Two recording modes:
//   RetainOutput  keep the input and the (graph-attached) output; the statistics pass then asks autograd for
//                 dLoss/dOutput of model-sampled targets (true Fisher) or labels (empirical Fisher).
//   HookGradient  keep the input and register a gradient hook on the output, so that the user's own training
//                 backward delivers dLoss/dOutput (empirical Fisher at no extra pass); `grad_scale` undoes a
//                 mean reduction (the batch size).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace kfac {

class LayerKind;

/// One use of a layer in a forward.
struct Tap {
  at::Tensor input;        ///< the layer input (detached)
  at::Tensor output;       ///< the graph-attached output (RetainOutput only, until the gradients are in)
  at::Tensor grad_output;  ///< output gradients [S, B, ...] (S target rows per example)
};

class Slot {
 public:
  enum class Mode { Off, RetainOutput, HookGradient };

  explicit Slot(std::string name = "") : name_(std::move(name)) {}

  /// Called by the layer's forward with its input and output; `training`: the module's mode (BatchNorm normalizes
  /// by its running statistics in evaluation). Records only when armed; cheap otherwise.
  void tap(const at::Tensor& input, const at::Tensor& output, bool training = true);
  /// The kind whose statistics input the slot records (the preconditioner sets it; none: the input as given).
  void set_kind(std::shared_ptr<const LayerKind> kind) { kind_ = std::move(kind); }

  void arm(Mode mode, double grad_scale = 1.0);
  /// The scale of an armed HookGradient capture, read when the backward delivers the gradients: it may be set after
  /// the forward (a scale known only from the model's output).
  void set_grad_scale(double grad_scale) { grad_scale_ = grad_scale; }
  void disarm() { mode_ = Mode::Off; }
  /// Drops every recorded tensor.
  void clear();

  bool armed() const { return mode_ != Mode::Off; }
  Mode mode() const { return mode_; }
  int64_t taps() const { return static_cast<int64_t>(taps_.size()); }
  const std::vector<Tap>& recorded() const { return taps_; }
  /// Whether every tap has its output gradients.
  bool complete() const;
  /// Stores the output gradients [S, B, ...] of each tap (in tap order) and drops the retained outputs.
  void set_grad_outputs(std::vector<at::Tensor> grad_outputs);
  const std::string& name() const { return name_; }
  void set_name(std::string name) { name_ = std::move(name); }

 private:
  std::string name_;
  Mode mode_ = Mode::Off;
  double grad_scale_ = 1.0;
  std::vector<Tap> taps_;
  std::shared_ptr<const LayerKind> kind_;
  /// Counts clear()s, so that a gradient hook of an abandoned pass cannot write into a later one.
  std::shared_ptr<int64_t> generation_ = std::make_shared<int64_t>(0);
};

}  // namespace kfac
