// RMSNorm's normalization, which both its layer kind (src/layers/rms_norm_kind.cpp) and the LibTorch module
// kfac::nn::RMSNorm apply (LibTorch has no RMSNorm of its own).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Optional.h>

namespace kfac {

/// x / sqrt(mean(x²) + eps) over the trailing `dims` dimensions; eps unset: the input dtype's machine epsilon, as
/// torch.nn.functional.rms_norm takes it.
at::Tensor rms_normalized(const at::Tensor& input, int64_t dims, c10::optional<double> eps);

}  // namespace kfac
