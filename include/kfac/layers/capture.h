// Capture: how a layer's input activations and output gradients reach the preconditioner.
//
// Each registered layer owns a Slot. Its forward calls `slot.tap(input, output)` (the kfac::nn modules do it for
// you; hand-written forward code calls it explicitly). A slot records only while the preconditioner has armed it,
// which happens only on steps that update statistics, so every other step costs nothing and retains no tensor.
//
// Two recording modes:
//   RetainOutput  keep the input and the (graph-attached) output; the statistics pass then asks autograd for
//                 dLoss/dOutput of model-sampled targets (true Fisher) or labels (empirical Fisher).
//   HookGradient  keep the input and register a gradient hook on the output, so that the user's own training
//                 backward delivers dLoss/dOutput (empirical Fisher at no extra pass); `grad_scale` undoes a
//                 mean reduction (the batch size).
#pragma once

#include <ATen/core/Tensor.h>

#include <string>

namespace kfac {

class Slot {
 public:
  enum class Mode { Off, RetainOutput, HookGradient };

  explicit Slot(std::string name = "") : name_(std::move(name)) {}

  /// Called by the layer's forward with its input and output. Records only when armed; cheap otherwise.
  void tap(const at::Tensor& input, const at::Tensor& output);

  void arm(Mode mode, double grad_scale = 1.0);
  void disarm() { mode_ = Mode::Off; }
  /// Drops every recorded tensor.
  void clear();

  bool armed() const { return mode_ != Mode::Off; }
  Mode mode() const { return mode_; }
  int64_t taps() const { return taps_; }
  const at::Tensor& input() const { return input_; }
  const at::Tensor& output() const { return output_; }
  /// Output gradients [S, B, ...] (S target rows per example).
  const at::Tensor& grad_output() const { return grad_output_; }
  /// Stores a finished capture: the layer input and its output gradients stacked as [S, B, ...].
  void record(at::Tensor input, at::Tensor grad_outputs);
  const std::string& name() const { return name_; }
  void set_name(std::string name) { name_ = std::move(name); }

 private:
  std::string name_;
  Mode mode_ = Mode::Off;
  double grad_scale_ = 1.0;
  int64_t taps_ = 0;
  at::Tensor input_, output_, grad_output_;
};

}  // namespace kfac
