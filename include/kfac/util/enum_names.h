// One facility for the names of enum values, used by messages, the CLI, config files, JSON, checkpoints and Python.
//
// An enum opts in by specializing EnumNames next to its declaration:
//
//   template <> struct EnumNames<DampingMode> {
//     static constexpr const char* what = "damping mode";
//     static constexpr std::array<std::pair<DampingMode, const char*>, 2> names{
//         {{DampingMode::Factored, "factored"}, {DampingMode::Eigen, "eigen"}}};
//   };
//
// and then to_string(mode), parse_enum<DampingMode>("eigen") and enum_choices<DampingMode>() work for it.
#pragma once

#include <ostream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace kfac {

template <class E>
struct EnumNames;  // specialized per enum: `what` (for messages) and `names` (value, name) in display order

template <class E, class = void>
struct has_enum_names : std::false_type {};
template <class E>
struct has_enum_names<E, std::void_t<decltype(EnumNames<E>::names)>> : std::true_type {};

/// The name closest to `word` among `candidates` (edit distance at most a third of its length, at least 2), or "".
std::string closest_spelling(const std::string& word, const std::vector<std::string>& candidates);
/// "unknown WHAT 'NAME'; valid: a, b, c" plus "; did you mean 'b'?" when one is close. Throws c10::Error.
[[noreturn]] void throw_unknown_name(const std::string& what, const std::string& name,
                                     const std::vector<std::string>& valid);

template <class E, class = std::enable_if_t<has_enum_names<E>::value>>
std::string to_string(E value) {
  for (const auto& [v, n] : EnumNames<E>::names)
    if (v == value) return n;
  return "?";
}

template <class E, class = std::enable_if_t<has_enum_names<E>::value>>
std::ostream& operator<<(std::ostream& out, E value) {
  return out << to_string(value);
}

template <class E>
std::vector<std::string> enum_choices() {
  std::vector<std::string> out;
  out.reserve(EnumNames<E>::names.size());
  for (const auto& entry : EnumNames<E>::names) out.emplace_back(entry.second);
  return out;
}

/// The value named `name`; throws naming the valid names (and the closest one) otherwise.
template <class E>
E parse_enum(const std::string& name) {
  for (const auto& [v, n] : EnumNames<E>::names)
    if (name == n) return v;
  throw_unknown_name(EnumNames<E>::what, name, enum_choices<E>());
}

}  // namespace kfac
