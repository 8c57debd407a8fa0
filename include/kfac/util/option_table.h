// Options described once. Each options block (a struct of fluent TORCH_ARG fields) lists its fields in an
// OptionTable: name, documentation, type, valid range and how unset reads; the default is the value of a
// default-constructed block. Everything else is generated from that table: validation and its messages, the CLI's
// flags and help (tools/kfac/option_flags.h), TOML keys, the metrics JSON, the checkpoint's record of the options
// and the warning when a resumed run's differ, and the Python keywords.
//
//   const OptionTable<ScheduleOptions>& ScheduleOptions::table() {
//     static const OptionTable<ScheduleOptions> t("schedule", {
//         field(KFAC_FIELD(ScheduleOptions, refresh_period), "Steps between refreshes", at_least(1)), ...});
//     return t;
//   }
//
// Field names are snake_case and unique over every block, so that one name means one option everywhere (C++
// accessor, Python keyword, TOML key; the CLI flag is the name with dashes).
#pragma once

#include <c10/core/ScalarType.h>
#include <c10/util/Optional.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "kfac/util/enum_names.h"

namespace kfac {

/// A value of any option: unset (an optional without value), flag, integer, real or name.
using OptionValue = std::variant<std::monostate, bool, int64_t, double, std::string>;
enum class OptionType { Flag, Integer, Real, Name };

/// The valid interval of a number. Reals must also be finite.
struct Bounds {
  double low = -1e308, high = 1e308;
  bool low_open = false, high_open = false, has_low = false, has_high = false;
  bool contains(double v) const;
  std::string text(OptionType type) const;  ///< ">= 1", "finite and > 0", "in [0, 1)"
};
Bounds at_least(double low);
Bounds positive();
Bounds between(double low, double high, bool low_open = false, bool high_open = false);

struct OptionSpec {
  std::string name;  ///< snake_case; unique over all blocks
  std::string doc;   ///< one sentence or two, for --help, docstrings and docs
  OptionType type = OptionType::Real;
  std::vector<std::string> choices;  ///< OptionType::Name with a fixed set of names (enums); empty = free text
  std::optional<Bounds> bounds;      ///< Integer / Real
  bool nullable = false;             ///< may be unset (c10::optional); unset reads as `unset_name`
  std::string unset_name;            ///< e.g. "auto", "model"; "none" when empty
  OptionValue default_value;         ///< the value in a default-constructed block
  std::string cli_name() const;      ///< the flag: name with dashes
  std::string unset_text() const { return unset_name.empty() ? "none" : unset_name; }
  std::string range_text() const;  ///< "in [0, 1)", "one of a, b", ... ("" when anything goes)
};

/// Text of a value as the CLI and TOML write it: "true", "10", "0.001", "eigen", the unset name.
std::string format_value(const OptionSpec& spec, const OptionValue& value);
/// Parses the text form (strict: the whole text, no NaN) into the spec's type; throws naming the option.
OptionValue parse_value(const OptionSpec& spec, const std::string& text);
/// Coerces a value given in another type where it is exact (an integral real for an integer, an integer for a real,
/// text for anything); throws naming the option otherwise.
OptionValue coerce_value(const OptionSpec& spec, const OptionValue& value);
/// Throws "NAME must be RANGE, got VALUE" when the value is outside the spec's bounds or choices.
void check_value(const OptionSpec& spec, const OptionValue& value);

class AnyOptionBlock;

/// A block's table, without its type: what generic code (CLI, JSON, checkpoints, Python) iterates over.
class OptionTableBase {
 public:
  OptionTableBase(std::string name, std::string doc) : name_(std::move(name)), doc_(std::move(doc)) {}
  virtual ~OptionTableBase() = default;
  const std::string& name() const { return name_; }  ///< block name ("" for the root fields)
  const std::string& doc() const { return doc_; }
  virtual const std::vector<OptionSpec>& specs() const = 0;
  virtual OptionValue get(const void* block, size_t field) const = 0;
  virtual void set(void* block, size_t field, const OptionValue& value) const = 0;
  virtual std::unique_ptr<AnyOptionBlock> make_default() const = 0;
  /// Index of the field, or specs().size().
  size_t find(const std::string& field) const;
  /// Checks every field against its range ("NAME must be ..., got ...").
  void validate(const void* block) const;

 private:
  std::string name_, doc_;
};

/// A block of any type with its table (the method-specific blocks a PreconditionerOptions holds).
class AnyOptionBlock {
 public:
  virtual ~AnyOptionBlock() = default;
  virtual const OptionTableBase& table() const = 0;
  virtual const void* data() const = 0;
  virtual void* data() = 0;
  virtual std::unique_ptr<AnyOptionBlock> clone() const = 0;
};

/// A block seen through its table.
struct OptionBlockRef {
  const OptionTableBase* table;
  const void* data;
  OptionValue get(size_t field) const { return table->get(data, field); }
};

// Conversions between field types and OptionValue.
template <class T, class = void>
struct OptionConvert;
template <>
struct OptionConvert<bool> {
  static constexpr OptionType type = OptionType::Flag;
  static OptionValue to(bool v) { return v; }
  static bool from(const OptionValue& v) { return std::get<bool>(v); }
};
template <class T>
struct OptionConvert<T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>>> {
  static constexpr OptionType type = OptionType::Integer;
  static OptionValue to(T v) { return static_cast<int64_t>(v); }
  static T from(const OptionValue& v) { return static_cast<T>(std::get<int64_t>(v)); }
};
template <>
struct OptionConvert<double> {
  static constexpr OptionType type = OptionType::Real;
  static OptionValue to(double v) { return v; }
  static double from(const OptionValue& v) { return std::get<double>(v); }
};
template <>
struct OptionConvert<std::string> {
  static constexpr OptionType type = OptionType::Name;
  static OptionValue to(const std::string& v) { return v; }
  static std::string from(const OptionValue& v) { return std::get<std::string>(v); }
};
template <class E>
struct OptionConvert<E, std::enable_if_t<has_enum_names<E>::value>> {
  static constexpr OptionType type = OptionType::Name;
  static std::vector<std::string> choices() { return enum_choices<E>(); }
  static OptionValue to(E v) { return to_string(v); }
  static E from(const OptionValue& v) { return parse_enum<E>(std::get<std::string>(v)); }
};
/// Factor dtypes by their torch names ("float32", "float64").
template <>
struct OptionConvert<c10::ScalarType> {
  static constexpr OptionType type = OptionType::Name;
  static std::vector<std::string> choices() { return {"float32", "float64"}; }
  static OptionValue to(c10::ScalarType v);
  static c10::ScalarType from(const OptionValue& v);
};
template <class T>
struct OptionConvert<c10::optional<T>> {
  static constexpr OptionType type = OptionConvert<T>::type;
  static OptionValue to(const c10::optional<T>& v) { return v ? OptionConvert<T>::to(*v) : OptionValue{}; }
  static c10::optional<T> from(const OptionValue& v) {
    if (std::holds_alternative<std::monostate>(v)) return c10::nullopt;
    return OptionConvert<T>::from(v);
  }
};

template <class T>
struct is_c10_optional : std::false_type {};
template <class T>
struct is_c10_optional<c10::optional<T>> : std::true_type {
  using value_type = T;
};

template <class B>
class OptionTable final : public OptionTableBase {
 public:
  struct Field {
    OptionSpec spec;
    std::function<OptionValue(const B&)> get;
    std::function<void(B&, const OptionValue&)> set;
  };
  OptionTable(std::string name, std::string doc, std::vector<Field> fields)
      : OptionTableBase(std::move(name), std::move(doc)), fields_(std::move(fields)) {
    const B defaults{};
    for (auto& f : fields_) {
      f.spec.default_value = f.get(defaults);
      specs_.push_back(f.spec);
    }
  }
  const std::vector<OptionSpec>& specs() const override { return specs_; }
  OptionValue get(const void* block, size_t i) const override {
    return fields_.at(i).get(*static_cast<const B*>(block));
  }
  void set(void* block, size_t i, const OptionValue& v) const override {
    fields_.at(i).set(*static_cast<B*>(block), coerce_value(specs_.at(i), v));
  }
  std::unique_ptr<AnyOptionBlock> make_default() const override;
  void validate(const B& block) const { OptionTableBase::validate(&block); }
  bool equal(const B& a, const B& b) const {
    for (size_t i = 0; i < fields_.size(); ++i)
      if (get(&a, i) != get(&b, i)) return false;
    return true;
  }

 private:
  std::vector<Field> fields_;
  std::vector<OptionSpec> specs_;
};

template <class B>
class OptionBlockOf final : public AnyOptionBlock {
 public:
  explicit OptionBlockOf(B value = {}) : value_(std::move(value)) {}
  const OptionTableBase& table() const override { return B::table(); }
  const void* data() const override { return &value_; }
  void* data() override { return &value_; }
  std::unique_ptr<AnyOptionBlock> clone() const override { return std::make_unique<OptionBlockOf<B>>(value_); }
  const B& value() const { return value_; }
  B& value() { return value_; }

 private:
  B value_;
};

template <class B>
std::unique_ptr<AnyOptionBlock> OptionTable<B>::make_default() const {
  return std::make_unique<OptionBlockOf<B>>();
}

/// Extra facts about a field beyond its name, accessors and doc.
struct FieldTraits {
  std::optional<Bounds> bounds;
  std::string unset_name;                 ///< how an unset optional reads
  std::vector<std::string> choices = {};  ///< names for a free-text field (enums list theirs themselves)
};
inline FieldTraits bounded(Bounds b) { return {b, "", {}}; }
inline FieldTraits unset_reads(std::string name) { return {std::nullopt, std::move(name), {}}; }

/// One field of block B from its getter and setter (KFAC_FIELD), its documentation and traits.
template <class B, class Get, class Set>
typename OptionTable<B>::Field field(const char* name, Get get, Set set, const std::string& doc,
                                     const FieldTraits& traits = {}) {
  using T = std::decay_t<decltype(get(std::declval<const B&>()))>;
  using C = OptionConvert<T>;
  typename OptionTable<B>::Field f;
  f.spec.name = name;
  f.spec.doc = doc;
  f.spec.type = C::type;
  f.spec.bounds = traits.bounds;
  f.spec.nullable = is_c10_optional<T>::value;
  f.spec.unset_name = traits.unset_name;
  f.spec.choices = traits.choices;
  if constexpr (is_c10_optional<T>::value) {
    using V = typename is_c10_optional<T>::value_type;
    if constexpr (has_enum_names<V>::value || std::is_same_v<V, c10::ScalarType>)
      f.spec.choices = OptionConvert<V>::choices();
  } else if constexpr (has_enum_names<T>::value || std::is_same_v<T, c10::ScalarType>) {
    f.spec.choices = C::choices();
  }
  f.get = [get](const B& b) { return C::to(get(b)); };
  f.set = [set](B& b, const OptionValue& v) { set(b, C::from(v)); };
  return f;
}

}  // namespace kfac

// clang-format off
/// `name, getter, setter` of a TORCH_ARG field for kfac::field().
#define KFAC_FIELD(Block, member)                                     \
  #member, [](const Block& b) { return b.member(); },                 \
      [](Block& b, const std::decay_t<decltype(std::declval<const Block&>().member())>& v) { b.member(v); }
// clang-format on

namespace kfac {

/// Blocks of several types, at most one per table, each defaulted until set: the method-specific options a
/// PreconditionerOptions carries and a curvature method reads (get<EigenCorrectedOptions>()).
class OptionBlocks {
 public:
  OptionBlocks() = default;
  OptionBlocks(const OptionBlocks& other) { *this = other; }
  OptionBlocks& operator=(const OptionBlocks& other) {
    if (this != &other) {
      blocks_.clear();
      for (const auto& b : other.blocks_) blocks_.push_back(b->clone());
    }
    return *this;
  }
  OptionBlocks(OptionBlocks&&) = default;
  OptionBlocks& operator=(OptionBlocks&&) = default;

  /// The stored block of type B, or its defaults.
  template <class B>
  const B& get() const {
    if (const auto* b = find(B::table().name())) return static_cast<const OptionBlockOf<B>*>(b)->value();
    static const B defaults{};
    return defaults;
  }
  template <class B>
  void set(B value) {
    static_cast<OptionBlockOf<B>&>(ensure(B::table())).value() = std::move(value);
  }
  const AnyOptionBlock* find(const std::string& table_name) const {
    for (const auto& b : blocks_)
      if (b->table().name() == table_name) return b.get();
    return nullptr;
  }
  /// The stored block for `table`, created with its defaults if absent.
  AnyOptionBlock& ensure(const OptionTableBase& table) {
    for (auto& b : blocks_)
      if (&b->table() == &table) return *b;
    blocks_.push_back(table.make_default());
    return *blocks_.back();
  }
  /// Only the blocks of these tables (what one method reads).
  OptionBlocks subset(const std::vector<const OptionTableBase*>& tables) const {
    OptionBlocks out;
    for (const auto* t : tables)
      if (const auto* b = find(t->name())) out.blocks_.push_back(b->clone());
    return out;
  }

 private:
  std::vector<std::unique_ptr<AnyOptionBlock>> blocks_;
};

}  // namespace kfac
