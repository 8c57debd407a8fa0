// The option fields Shampoo and SOAP share: one name, one meaning, one documentation (the tool's one flag per name
// shows it for both). Internal to src/optim.
#pragma once

#include <vector>

#include "kfac/util/option_table.h"

namespace kfac::detail {

/// The gradient factors' decay, the refresh period and the size cap, as fields of block O.
template <class O>
std::vector<typename OptionTable<O>::Field> gradient_factor_fields() {
  return {field<O>(KFAC_FIELD(O, shampoo_beta), "Decay of the gradient's Kronecker factors L = E[G Gᵀ], R = E[Gᵀ G]",
                   bounded(between(0, 1, false, true))),
          field<O>(KFAC_FIELD(O, precondition_frequency),
                   "Steps between refreshes of the factors' decompositions (Shampoo's roots, SOAP's eigenbases)",
                   bounded(at_least(1))),
          field<O>(KFAC_FIELD(O, max_preconditioner_dim),
                   "Largest factor side: Shampoo cuts larger weights into tiles of this many rows and columns; SOAP "
                   "leaves a larger side unrotated",
                   bounded(at_least(1)))};
}

/// `head`, then the shared fields, then `tail`.
template <class O>
std::vector<typename OptionTable<O>::Field> with_gradient_factor_fields(
    std::vector<typename OptionTable<O>::Field> head, const std::vector<typename OptionTable<O>::Field>& tail) {
  for (auto& f : gradient_factor_fields<O>()) head.push_back(std::move(f));
  head.insert(head.end(), tail.begin(), tail.end());
  return head;
}

}  // namespace kfac::detail
