#include <sstream>

#include "bindings.h"
#include "kfac/optim/kfac_optimizer.h"
#include "kfac/optim/muon.h"
#include "kfac/optim/qmodel.h"
#include "kfac/optim/shampoo.h"
#include "kfac/optim/soap.h"
#include "kfac/runtime/setup.h"
#include "kfac/util/enum_names.h"

namespace kfac::python {

namespace {

/// The tables whose fields are Python keywords besides the preconditioner's: the step rules' and the other
/// optimizers'.
std::vector<const OptionTableBase*> step_rule_tables() {
  return {&KfacOptimizerOptions::table(), &QModelOptions::table(), &MuonOptions::table(), &ShampooOptions::table(),
          &SoapOptions::table()};
}

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

/// Runs `f`, turning the core's option errors into ValueError with the same message.
template <class F>
auto as_value_error(F&& f) {
  try {
    return f();
  } catch (const c10::Error& e) {
    throw py::value_error(e.what_without_backtrace());
  }
}

py::dict spec_dict(const OptionSpec& s, const std::string& block) {
  static const char* types[] = {"flag", "integer", "real", "name"};
  py::dict d;
  d["name"] = s.name;
  d["block"] = block;
  d["doc"] = s.doc;
  d["type"] = types[static_cast<int>(s.type)];
  d["default"] = python_value(s.default_value);
  d["default_text"] = format_value(s, s.default_value);  // as the CLI, TOML and docs/options.md write it
  d["range"] = s.range_text();
  d["choices"] = s.choices;
  d["nullable"] = s.nullable;
  return d;
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

void PythonLayer::tap(const at::Tensor& input, const at::Tensor& output, const c10::optional<at::Tensor>& running_mean,
                      const c10::optional<at::Tensor>& running_var) const {
  if (!layer.slot->armed()) return;
  switch (this->input) {
    case Input::Raw:
      layer.slot->tap(input, output);
      return;
    case Input::LayerNorm: {
      at::NoGradGuard no_grad;
      layer.slot->tap(at::layer_norm(input, normalized_shape, {}, {}, eps), output);
      return;
    }
    case Input::BatchNorm: {
      // Batch statistics in training mode (or without running statistics), the running ones in evaluation.
      at::NoGradGuard no_grad;
      const bool batch = !running_mean.has_value();
      layer.slot->tap(at::batch_norm(input, {}, {}, running_mean, running_var, batch, 0.0, eps,
                                     at::globalContext().userEnabledCuDNN()),
                      output);
      return;
    }
  }
}

}  // namespace kfac::python

PYBIND11_MODULE(_kfac, m) {
  namespace py = pybind11;
  using namespace kfac::python;
  m.doc() = "kfac's C++ core (use the kfac package)";
  m.attr("__version__") = KFAC_VERSION;  // the project's version (CMakeLists.txt), as the C++ package's
  // The core's errors keep their messages: bad input is RuntimeError (ValueError where the binding says so).
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const c10::IndexError& e) {
      PyErr_SetString(PyExc_IndexError, e.what_without_backtrace());
    } catch (const c10::ValueError& e) {
      PyErr_SetString(PyExc_ValueError, e.what_without_backtrace());
    } catch (const c10::TypeError& e) {
      PyErr_SetString(PyExc_TypeError, e.what_without_backtrace());
    } catch (const c10::Error& e) {
      PyErr_SetString(PyExc_RuntimeError, e.what_without_backtrace());
    }
  });

  py::class_<kfac::PreconditionerOptions>(m, "PreconditionerOptions",
                                          "The preconditioner's options (build with kronfac.Preconditioner's keywords)")
      .def(py::init(&preconditioner_options), py::arg("keywords"))
      .def("to_dict", [](const kfac::PreconditionerOptions& o) {
        py::dict d;
        for (const auto& r : kfac::option_records(o)) d[py::str(r.name)] = python_value(r.value);
        return d;
      });
  m.def(
      "option_specs",
      [](const std::string& table) {
        py::list out;
        if (table == "preconditioner") {
          for (const auto& b : kfac::option_blocks(kfac::PreconditionerOptions(), /*every_method=*/true))
            for (const auto& s : b.table->specs()) out.append(spec_dict(s, b.table->name()));
        } else {
          for (const auto* t : step_rule_tables())
            if (t->name() == table)
              for (const auto& s : t->specs()) out.append(spec_dict(s, t->name()));
        }
        return out;
      },
      py::arg("table") = "preconditioner",
      "The options of a table (preconditioner, optimizer, qmodel, muon, shampoo or soap): name, block, doc, type, "
      "default, range");
  m.def(
      "block_defaults",
      [](const std::string& table, const py::dict& kw) {
        const auto values = [&](const auto& block) {
          using B = std::decay_t<decltype(block)>;
          py::dict d;
          const auto& t = B::table();
          for (size_t i = 0; i < t.specs().size(); ++i) d[py::str(t.specs()[i].name)] = python_value(t.get(&block, i));
          return d;
        };
        if (table == "muon") return values(block_options<kfac::MuonOptions>(kw));
        if (table == "shampoo") return values(block_options<kfac::ShampooOptions>(kw));
        if (table == "soap") return values(block_options<kfac::SoapOptions>(kw));
        throw py::value_error("kfac: no option table '" + table + "'");
      },
      py::arg("table"), py::arg("keywords"), "A table's values from keywords (defaults filled in), validated");
  m.def(
      "optimizer_options",
      [](const py::dict& kw) {
        const auto o = block_options<kfac::KfacOptimizerOptions>(kw);
        py::dict d;
        const auto& t = kfac::KfacOptimizerOptions::table();
        for (size_t i = 0; i < t.specs().size(); ++i) d[py::str(t.specs()[i].name)] = python_value(t.get(&o, i));
        return d;
      },
      py::arg("keywords"), "The optimizer table's values from keywords (defaults filled in), validated");
  m.def(
      "loss_name",
      [](const std::string& name) {
        return as_value_error([&] { return std::string(kfac::LossKind::named(name).name()); });
      },
      py::arg("name"), "The registered likelihood's name (raises naming the valid ones otherwise)");
  m.def(
      "loss",
      [](const at::Tensor& output, const at::Tensor& targets, const std::string& kind) {
        return kfac::loss(output, targets, kfac::LossKind::named(kind));
      },
      py::arg("output"), py::arg("targets"), py::arg("kind"), "The likelihood's loss (the C++ core's kfac::loss)");
  m.def(
      "configure_runtime",
      [](int threads, bool flush_subnormals, bool keep_freed_memory) {
        kfac::runtime::RuntimeSetup setup;
        setup.select_blas_kernel = false;  // a relaunch would restart the Python interpreter
        setup.threads = threads;
        setup.flush_denormal = flush_subnormals;
        setup.keep_freed_memory = keep_freed_memory;
        std::ostringstream report;
        report << kfac::runtime::configure_runtime(setup);
        return report.str();
      },
      py::arg("threads") = 0, py::arg("flush_subnormals") = true, py::arg("keep_freed_memory") = true,
      "What the kfac tool does first: every available core (threads 0; > 0 exactly that many; < 0 leave torch's), "
      "subnormal floats flushed to zero on the OpenMP team too (torch.set_flush_denormal covers only the calling "
      "thread), and glibc's malloc told to keep freed memory for the next step instead of returning it to the "
      "system (tensors then stop page-faulting in fresh pages every step). Returns the runtime report: LibTorch, BLAS "
      "and its kernel, CPU, threads, warnings");
  bind_layers(m);
  bind_preconditioner(m);
  bind_optimizers(m);
  bind_matrix_optimizers(m);
  bind_reference(m);
}
