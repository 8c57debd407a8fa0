#include "kfac/nn/stand_in.h"

#include "kfac/errors.h"
#include "kfac/layers/kind_registry.h"

namespace kfac::nn {

void StandIn::check_accepted() const {
  const auto choice = choose_kind(kind_name(), config());
  KFAC_CHECK(choice.kind != nullptr, "kfac::nn::", kind_name(), ": ", choice.refusal);
}

}  // namespace kfac::nn
