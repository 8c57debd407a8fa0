// Option values too large for the float type they meet. A finite --lr of 1e308 is inside its flag's range, but
// LibTorch refuses it only when it first meets the model's float32 tensors, mid-run and without the option's name
// ("value cannot be converted to type float without overflow"), and --initial-lambda 1e308 failed as "damping".
// These checks run before any work and name the option.
#pragma once

#include <c10/core/ScalarType.h>

#include <string>

#include "train.h"

namespace kfac::tool {

/// Throws (KFAC_CHECK) naming the first option whose value `model_dtype` (the parameters' type: float32 for the
/// tool's models) cannot hold: --lr, --weight-decay and, for a curvature `method`, every real preconditioner option
/// in effect (--damping has the preconditioner's own, tighter check) and the quadratic model's --l2. --initial-lambda,
/// the quadratic model's first damping (with --l2), is bounded like --damping: at most the square root of the factor
/// type's largest value.
void check_values_fit(const TrainConfig& config, const std::string& method, c10::ScalarType model_dtype);

}  // namespace kfac::tool
