#include "kfac/global/two_level_options.h"

#include <array>
#include <utility>

#include "kfac/errors.h"

namespace kfac {

namespace {
template <class E, size_t N>
std::string name_of(const std::array<std::pair<E, const char*>, N>& table, E value) {
  for (const auto& [v, n] : table)
    if (v == value) return n;
  return "?";
}
template <class E, size_t N>
E parse(const std::array<std::pair<E, const char*>, N>& table, const std::string& name, const char* what) {
  std::string valid;
  for (const auto& [v, n] : table) {
    if (name == n) return v;
    valid += (valid.empty() ? "" : ", ") + std::string(n);
  }
  KFAC_CHECK(false, "unknown ", what, " '", name, "'; valid: ", valid);
  return table[0].first;
}

const std::array<std::pair<CoarseSpace, const char*>, 6> kSpaces{{{CoarseSpace::None, "none"},
                                                                   {CoarseSpace::Nicolaides, "nicolaides"},
                                                                   {CoarseSpace::Spectral, "spectral"},
                                                                   {CoarseSpace::Residual, "residual"},
                                                                   {CoarseSpace::Tselepidis, "tselepidis"},
                                                                   {CoarseSpace::BlockTridiagonal, "block-tridiagonal"}}};
const std::array<std::pair<CoarseMatrix, const char*>, 2> kMatrices{
    {{CoarseMatrix::Exact, "exact"}, {CoarseMatrix::Kronecker, "kronecker"}}};
const std::array<std::pair<CoarseCombine, const char*>, 4> kCombines{{{CoarseCombine::Additive, "additive"},
                                                                      {CoarseCombine::Residual, "residual"},
                                                                      {CoarseCombine::Deflated, "deflated"},
                                                                      {CoarseCombine::Balanced, "balanced"}}};
}  // namespace

std::string to_string(CoarseSpace space) { return name_of(kSpaces, space); }
std::string to_string(CoarseMatrix matrix) { return name_of(kMatrices, matrix); }
std::string to_string(CoarseCombine combine) { return name_of(kCombines, combine); }
CoarseSpace parse_coarse_space(const std::string& name) { return parse(kSpaces, name, "coarse space"); }
CoarseMatrix parse_coarse_matrix(const std::string& name) { return parse(kMatrices, name, "coarse matrix"); }
CoarseCombine parse_coarse_combine(const std::string& name) { return parse(kCombines, name, "combine mode"); }

}  // namespace kfac
