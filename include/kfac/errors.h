// Error reporting shared by the whole library.
//
// Bad input (options, shapes, misuse) throws c10::Error through KFAC_CHECK, with a message that names the thing,
// its value and what to do. Numerical trouble in amortized work (a failed eigendecomposition, non-finite factors)
// throws kfac::NumericalError, which the preconditioner catches, reports in StepStats and retries under its
// failure policy (see docs/design.md, "Numerical policy").
#pragma once

#include <c10/util/Exception.h>

#include <stdexcept>
#include <string>

namespace kfac {

/// Thrown when a decomposition or a statistic is numerically unusable. Carries the layer name when known.
class NumericalError : public std::runtime_error {
 public:
  explicit NumericalError(const std::string& what) : std::runtime_error(what) {}
};

}  // namespace kfac

/// Checks a user-facing precondition; on failure throws c10::Error with the concatenated message.
#define KFAC_CHECK(cond, ...) TORCH_CHECK(cond, "kfac: ", __VA_ARGS__)
