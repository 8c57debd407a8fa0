// Small helpers shared by the tests.
#pragma once

#include <torch/torch.h>

#include <string>

#include "kfac/kfac.h"

namespace kfac::test {

/// One training step's worth of preconditioner work: statistics pass (if due), loss backward, step().
inline StepStats stats_and_step(Preconditioner& p, torch::nn::Sequential& model, const at::Tensor& x,
                                const at::Tensor& y, LossKind loss) {
  model->zero_grad();
  p.update_statistics([&](const at::Tensor& in) { return model->forward(in); }, x, loss, y);
  kfac::loss(model->forward(x), y, loss).backward();
  return p.step();
}

/// The message of the kfac error `f` throws, or "<no error>".
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const c10::Error& e) {
    return e.what_without_backtrace();
  }
  return "<no error>";
}

inline double max_abs_diff(const at::Tensor& a, const at::Tensor& b) { return (a - b).abs().max().item<double>(); }

}  // namespace kfac::test
