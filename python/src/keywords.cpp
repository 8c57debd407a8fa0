// Python keywords as the core's options: each keyword an option name of the tables, checked and converted here,
// raising ValueError with the core's message. Shared by the module and the test-support module.
#include "bindings.h"
#include "kfac/optim/kfac_optimizer.h"
#include "kfac/optim/muon.h"
#include "kfac/optim/qmodel.h"
#include "kfac/optim/shampoo.h"
#include "kfac/optim/soap.h"
#include "kfac/util/enum_names.h"

namespace kfac::python {

std::vector<const OptionTableBase*> step_rule_tables() {
  return {&KfacOptimizerOptions::table(), &QModelOptions::table(), &MuonOptions::table(), &ShampooOptions::table(),
          &SoapOptions::table()};
}

namespace {

std::vector<std::string> every_option_name() {
  std::vector<std::string> names;
  for (const auto& s : option_specs()) names.push_back(s.name);
  for (const auto* t : step_rule_tables())
    for (const auto& s : t->specs()) names.push_back(s.name);
  return names;
}

[[noreturn]] void unknown_option(const std::string& name, const std::string& where) {
  const auto close = closest_spelling(name, every_option_name());
  throw py::value_error("kfac: unknown option '" + name + "'" + where +
                        (close.empty() ? "" : "; did you mean '" + close + "'?") +
                        " (the options: kronfac.option_specs())");
}

}  // namespace

OptionValue option_value(const std::string& name, const py::handle& v) {
  if (v.is_none()) return std::monostate{};
  if (py::isinstance<py::bool_>(v)) return v.cast<bool>();
  if (py::isinstance<py::int_>(v)) return v.cast<int64_t>();
  if (py::isinstance<py::float_>(v)) return v.cast<double>();
  if (py::isinstance<py::str>(v)) return v.cast<std::string>();
  throw py::type_error("kfac: option '" + name + "' takes None, a bool, an int, a float or a str, got " +
                       py::str(py::type::of(v)).cast<std::string>());
}

py::object python_value(const OptionValue& value) {
  return std::visit(
      [](const auto& v) -> py::object {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::monostate>)
          return py::none();
        else
          return py::cast(v);
      },
      value);
}

PreconditionerOptions preconditioner_options(const py::dict& keywords) {
  PreconditionerOptions options;
  const auto names = option_specs();
  // The method first: it decides which method blocks the other keywords may name.
  if (keywords.contains("method"))
    as_value_error([&] { set_option(options, "method", option_value("method", keywords["method"])); });
  for (const auto& [key, value] : keywords) {
    const auto name = py::cast<std::string>(key);
    if (name == "method") continue;
    const bool known = std::any_of(names.begin(), names.end(), [&](const auto& s) { return s.name == name; });
    if (!known) unknown_option(name, "");
    const auto v = option_value(name, value);
    as_value_error([&] { set_option(options, name, v); });
  }
  as_value_error([&] { validate(options); });
  return options;
}

template <class Block>
Block block_options(const py::dict& keywords) {
  Block block;
  const auto& table = Block::table();
  for (const auto& [key, value] : keywords) {
    const auto name = py::cast<std::string>(key);
    const auto field = table.find(name);
    if (field == table.specs().size()) unknown_option(name, " of " + table.name());
    const auto v = option_value(name, value);
    as_value_error([&] { table.set(&block, field, v); });
  }
  as_value_error([&] { table.validate(block); });
  return block;
}
template KfacOptimizerOptions block_options<KfacOptimizerOptions>(const py::dict&);
template QModelOptions block_options<QModelOptions>(const py::dict&);
template MuonOptions block_options<MuonOptions>(const py::dict&);
template ShampooOptions block_options<ShampooOptions>(const py::dict&);
template SoapOptions block_options<SoapOptions>(const py::dict&);

}  // namespace kfac::python
