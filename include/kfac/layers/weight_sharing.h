// How a layer's shared positions (conv locations, sequence positions, repeated uses) enter its Kronecker factors:
// the two flavours of Eschenhagen et al. 2023, derived in docs/design.md §13.
#pragma once

#include <array>
#include <utility>

#include "kfac/util/enum_names.h"

namespace kfac {

/// How a layer's shared positions enter its factors (docs/design.md §13).
enum class WeightSharing {
  /// Positions act like extra examples: exact for deep linear networks with a loss term per position.
  Expand,
  /// Positions are reduced (mean of ā, sum of g) before the outer products: exact when the output is pooled over
  /// the positions before the loss; cheaper by a factor T.
  Reduce,
};
template <>
struct EnumNames<WeightSharing> {
  static constexpr const char* what = "weight sharing";
  static constexpr std::array<std::pair<WeightSharing, const char*>, 2> names{
      {{WeightSharing::Expand, "expand"}, {WeightSharing::Reduce, "reduce"}}};
};

}  // namespace kfac
