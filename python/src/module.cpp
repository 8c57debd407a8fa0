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
      "loss_terms",
      [](const at::Tensor& targets, const std::string& kind) {
        return kfac::loss_terms(targets, kfac::LossKind::named(kind));
      },
      py::arg("targets"), py::arg("kind"),
      "The number of terms the likelihood's loss averages over for these targets: the examples, or examples x "
      "positions for a loss per position (softmax-cross-entropy on [B, T, C]). It is capture_backward's grad_scale "
      "for that loss (the C++ core's kfac::loss_terms)");
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
}
