#include "kfac/util/option_table.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <sstream>

#include "kfac/errors.h"
#include "util/text.h"

namespace kfac {

namespace {
std::string number_text(double v) {
  // Whole numbers as integers (150, not the shorter-looking 1.5e+02).
  if (std::isfinite(v) && v == std::floor(v) && std::abs(v) < 1e15) return std::to_string(static_cast<int64_t>(v));
  std::ostringstream s;
  s.precision(17);
  s << v;
  // Shortest form that reads back exactly.
  for (int p = 1; p <= 17; ++p) {
    std::ostringstream t;
    t.precision(p);
    t << v;
    if (std::strtod(t.str().c_str(), nullptr) == v) return t.str();
  }
  return s.str();
}
size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}
}  // namespace

std::string closest_spelling(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_distance = std::max<size_t>(2, word.size() / 3) + 1;
  for (const auto& c : candidates) {
    const size_t d = edit_distance(word, c);
    if (d < best_distance) best = c, best_distance = d;
  }
  return best;
}

void throw_unknown_name(const std::string& what, const std::string& name, const std::vector<std::string>& valid) {
  const auto close = closest_spelling(name, valid);
  KFAC_CHECK(false, "unknown ", what, " '", name, "'; valid: ", join(valid),
             close.empty() ? "" : "; did you mean '" + close + "'?");
  std::abort();  // unreachable: KFAC_CHECK(false) throws
}

bool Bounds::contains(double v) const {
  if (has_low && (low_open ? !(v > low) : !(v >= low))) return false;
  if (has_high && (high_open ? !(v < high) : !(v <= high))) return false;
  return !std::isnan(v);
}

std::string Bounds::text(OptionType type) const {
  const std::string finite = type == OptionType::Real ? "finite and " : "";
  if (has_low && has_high)
    return "in " + std::string(low_open ? "(" : "[") + number_text(low) + ", " + number_text(high) +
           (high_open ? ")" : "]");
  if (has_low) return finite + (low_open ? "> " : ">= ") + number_text(low);
  if (has_high) return finite + (high_open ? "< " : "<= ") + number_text(high);
  return type == OptionType::Real ? "finite" : "";
}

Bounds at_least(double low) {
  Bounds b;
  b.low = low, b.has_low = true;
  return b;
}
Bounds positive() {
  Bounds b = at_least(0);
  b.low_open = true;
  return b;
}
Bounds between(double low, double high, bool low_open, bool high_open) {
  Bounds b;
  b.low = low, b.high = high, b.has_low = b.has_high = true, b.low_open = low_open, b.high_open = high_open;
  return b;
}

std::string OptionSpec::cli_name() const {
  auto s = name;
  std::replace(s.begin(), s.end(), '_', '-');
  return s;
}

std::string OptionSpec::range_text() const {
  if (!choices.empty()) return "one of " + join(choices);
  return bounds ? bounds->text(type) : "";
}

std::string format_value(const OptionSpec& spec, const OptionValue& value) {
  struct Visit {
    const OptionSpec& spec;
    std::string operator()(std::monostate) const { return spec.unset_text(); }
    std::string operator()(bool b) const { return b ? "true" : "false"; }
    std::string operator()(int64_t i) const { return std::to_string(i); }
    std::string operator()(double d) const { return number_text(d); }
    std::string operator()(const std::string& s) const { return s; }
  };
  return std::visit(Visit{spec}, value);
}

OptionValue parse_value(const OptionSpec& spec, const std::string& text) {
  if (spec.nullable && (text == spec.unset_text() || text == "none")) return std::monostate{};
  switch (spec.type) {
    case OptionType::Flag:
      if (text == "true" || text == "1" || text == "yes" || text == "on") return true;
      if (text == "false" || text == "0" || text == "no" || text == "off") return false;
      KFAC_CHECK(false, spec.name, " must be true or false, got '", text, "'");
      break;
    case OptionType::Integer: {
      errno = 0;
      char* end = nullptr;
      const long long v = std::strtoll(text.c_str(), &end, 10);
      KFAC_CHECK(!text.empty() && end == text.c_str() + text.size() && errno == 0, spec.name,
                 " must be a whole number, got '", text, "'");
      return static_cast<int64_t>(v);
    }
    case OptionType::Real: {
      errno = 0;
      char* end = nullptr;
      const double v = std::strtod(text.c_str(), &end);
      KFAC_CHECK(!text.empty() && end == text.c_str() + text.size() && errno == 0 && std::isfinite(v), spec.name,
                 " must be a finite number, got '", text, "'");
      return v;
    }
    case OptionType::Name:
      if (!spec.choices.empty() && std::find(spec.choices.begin(), spec.choices.end(), text) == spec.choices.end())
        throw_unknown_name(spec.name, text, spec.choices);
      return text;
  }
  return {};
}

OptionValue coerce_value(const OptionSpec& spec, const OptionValue& value) {
  if (std::holds_alternative<std::monostate>(value)) {
    KFAC_CHECK(spec.nullable, spec.name, " cannot be unset; give a value (", spec.range_text(), ")");
    return value;
  }
  if (const auto* text = std::get_if<std::string>(&value); text && spec.type != OptionType::Name)
    return parse_value(spec, *text);
  switch (spec.type) {
    case OptionType::Flag:
      if (std::holds_alternative<bool>(value)) return value;
      break;
    case OptionType::Integer:
      if (std::holds_alternative<int64_t>(value)) return value;
      if (const auto* d = std::get_if<double>(&value);
          d && std::isfinite(*d) && std::floor(*d) == *d && std::abs(*d) < 9.2e18)
        return static_cast<int64_t>(*d);
      break;
    case OptionType::Real:
      if (std::holds_alternative<double>(value)) return value;
      if (const auto* i = std::get_if<int64_t>(&value)) return static_cast<double>(*i);
      break;
    case OptionType::Name:
      if (const auto* s = std::get_if<std::string>(&value)) return parse_value(spec, *s);
      break;
  }
  static const char* kTypes[] = {"true or false", "a whole number", "a number", "a name"};
  KFAC_CHECK(false, spec.name, " must be ", kTypes[static_cast<int>(spec.type)], ", got ", format_value(spec, value));
  return {};
}

void check_value(const OptionSpec& spec, const OptionValue& value) {
  if (std::holds_alternative<std::monostate>(value)) return;
  double number = 0;
  if (const auto* i = std::get_if<int64_t>(&value))
    number = static_cast<double>(*i);
  else if (const auto* d = std::get_if<double>(&value))
    number = *d;
  else if (const auto* s = std::get_if<std::string>(&value)) {
    KFAC_CHECK(spec.choices.empty() || std::find(spec.choices.begin(), spec.choices.end(), *s) != spec.choices.end(),
               spec.name, " must be one of ", join(spec.choices), ", got '", *s, "'");
    return;
  } else {
    return;
  }
  KFAC_CHECK(!spec.bounds ||
                 (spec.bounds->contains(number) && (spec.type != OptionType::Real || std::isfinite(number))),
             spec.name, " must be ", spec.range_text(), ", got ", format_value(spec, value));
}

size_t OptionTableBase::find(const std::string& field) const {
  const auto& s = specs();
  for (size_t i = 0; i < s.size(); ++i)
    if (s[i].name == field) return i;
  return s.size();
}

void OptionTableBase::validate(const void* block) const {
  for (size_t i = 0; i < specs().size(); ++i) check_value(specs()[i], get(block, i));
}

OptionValue OptionConvert<c10::ScalarType>::to(c10::ScalarType v) {
  if (v == c10::kFloat) return std::string("float32");
  if (v == c10::kDouble) return std::string("float64");
  return std::string(c10::toString(v));
}
c10::ScalarType OptionConvert<c10::ScalarType>::from(const OptionValue& v) {
  const auto& s = std::get<std::string>(v);
  if (s == "float32") return c10::kFloat;
  if (s == "float64") return c10::kDouble;
  throw_unknown_name("factor dtype", s, choices());
}

}  // namespace kfac
