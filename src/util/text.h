// Lists of names in messages: "a, b, c" and "'a', 'b'".
#pragma once

#include <string>
#include <vector>

namespace kfac {

inline std::string join(const std::vector<std::string>& names, const std::string& separator = ", ") {
  std::string s;
  for (const auto& n : names) s += (s.empty() ? "" : separator) + n;
  return s;
}

inline std::string join_quoted(const std::vector<std::string>& names) {
  std::string s;
  for (const auto& n : names) s += (s.empty() ? "'" : ", '") + n + "'";
  return s;
}

}  // namespace kfac
