// Validators for the tool's numeric flags, strict and in words: the text must be a number (no trailing junk), finite,
// and in range; a whole number must fit its type without wrapping or saturating. CLI11 prefixes the flag's name:
//   --kl-clip: 'nan' is not a finite number (it must be a number >= 0)
//   --steps: '99999999999999999999' is out of range (it must be a whole number from 1 to 1000000000000)
#pragma once

#include <CLI/CLI.hpp>

#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <sstream>
#include <string>
#include <system_error>

namespace kfac::tool {

namespace detail {
inline std::string number_text(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}
}  // namespace detail

/// A finite real number in [low, high] (or (low, high] with `low_open`), e.g. real_in(0, inf, true) for "> 0".
inline CLI::Validator real_in(double low, double high, bool low_open = false, bool high_open = false) {
  std::string range;
  if (std::isinf(high))
    range = std::string("a number ") + (low_open ? "> " : ">= ") + detail::number_text(low);
  else
    range = "a number from " + detail::number_text(low) + (low_open ? " (excluded)" : "") + " to " +
            detail::number_text(high) + (high_open ? " (excluded)" : "");
  return CLI::Validator(
      [=](std::string& text) -> std::string {
        double v = 0;
        const auto* end = text.data() + text.size();
        const auto [ptr, ec] = std::from_chars(text.data(), end, v);
        if (ec == std::errc::result_out_of_range) return "'" + text + "' is out of range (it must be " + range + ")";
        if (ec != std::errc() || ptr != end) return "'" + text + "' is not a number (it must be " + range + ")";
        if (!std::isfinite(v)) return "'" + text + "' is not a finite number (it must be " + range + ")";
        const bool below = low_open ? v <= low : v < low, above = high_open ? v >= high : v > high;
        if (below || above) return "'" + text + "' is out of range (it must be " + range + ")";
        return "";
      },
      range);
}

/// A whole number in [low, high], parsed without wrapping ("-1" for an unsigned seed) or saturating.
inline CLI::Validator whole_in(int64_t low, int64_t high) {
  const std::string range = "a whole number from " + std::to_string(low) + " to " + std::to_string(high);
  return CLI::Validator(
      [=](std::string& text) -> std::string {
        int64_t v = 0;
        const auto* end = text.data() + text.size();
        const auto [ptr, ec] = std::from_chars(text.data(), end, v);
        if (ec == std::errc::result_out_of_range || (ec == std::errc() && ptr == end && (v < low || v > high)))
          return "'" + text + "' is out of range (it must be " + range + ")";
        if (ec != std::errc() || ptr != end) return "'" + text + "' is not a whole number (it must be " + range + ")";
        return "";
      },
      range);
}

constexpr double kInf = std::numeric_limits<double>::infinity();

}  // namespace kfac::tool
