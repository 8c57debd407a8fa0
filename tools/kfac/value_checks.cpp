#include "value_checks.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

#include "baselines.h"
#include "kfac/errors.h"
#include "kfac/preconditioner/options.h"

namespace kfac::tool {

namespace {

std::string type_name(c10::ScalarType t) {
  if (t == c10::kDouble) return "float64";
  if (t == c10::kFloat) return "float32";
  if (t == c10::kHalf) return "float16";
  if (t == c10::kBFloat16) return "bfloat16";
  return c10::toString(t);
}

// As the preconditioner's damping check reads them.
double largest(c10::ScalarType t) {
  if (t == c10::kDouble) return std::numeric_limits<double>::max();
  if (t == c10::kHalf) return 65504.0;
  if (t == c10::kBFloat16) return 3.38e38;
  return static_cast<double>(std::numeric_limits<float>::max());
}

std::string text(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

void check_fits(const std::string& flag, double value, c10::ScalarType dtype) {
  KFAC_CHECK(std::abs(value) <= largest(dtype), flag, " ", text(value), " is too large for ", type_name(dtype),
             ", the type of the model's parameters: it must be at most ", text(largest(dtype)));
}

}  // namespace

void check_values_fit(const TrainConfig& c, const std::string& method, c10::ScalarType model_dtype) {
  if (c.lr) check_fits("--lr", *c.lr, model_dtype);
  check_fits("--weight-decay", c.weight_decay, model_dtype);
  if (is_baseline(method)) return;
  const bool qmodel = c.step_rule == "qmodel";
  if (qmodel) check_fits("--l2", c.qmodel.l2(), model_dtype);
  const auto options = with_method(c.preconditioner, method);
  for (const auto& record : option_records(options)) {
    const auto* value = std::get_if<double>(&record.value);
    // Not flags, whole numbers, names or unset values; nor the damping, which the preconditioner bounds more tightly
    // (the square root of the factor type's largest value) with a message of its own.
    if (value == nullptr || record.name == "damping") continue;
    auto flag = "--" + record.name;
    std::replace(flag.begin(), flag.end(), '_', '-');
    check_fits(flag, *value, model_dtype);
  }
  // The quadratic model damps with λ + η; like --damping (the preconditioner's own check), its square root bounds it.
  const auto factors = options.factor_dtype().value_or(model_dtype);
  const double bound = std::sqrt(largest(factors));
  KFAC_CHECK(!qmodel || c.qmodel.initial_lambda() + c.qmodel.l2() <= bound, "--initial-lambda ",
             text(c.qmodel.initial_lambda()), " is too large for ", type_name(factors),
             " factors: the quadratic model's first damping, --initial-lambda + --l2, must be at most ", text(bound),
             " (the square root of the type's largest value) so that damped factors stay finite; lower it, or use "
             "--factor-dtype float64");
}

}  // namespace kfac::tool
