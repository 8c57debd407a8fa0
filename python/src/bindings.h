// The Python extension module kronfac._kfac: pybind11 bindings over the C++ core, with LibTorch's tensor conversions
// (torch/extension.h), so that a Python tensor and the core's at::Tensor are one object. Nothing here computes: each
// binding forwards to the library, and the Python package (python/kronfac/) adds only capture hooks and the
// torch.optim.Optimizer shape.
//
//   module.cpp          the module, the error translation, the option tables as keywords
//   layers.cpp          layers of a Python model: the core's layer kinds decide from the module's attributes
//   preconditioner.cpp  Preconditioner, StepStats, Registration, the communicator
//   optimizers.cpp      KfacOptimizer and QModelOptimizer
//   matrix_optimizers.cpp  Muon, Shampoo and SOAP (ParameterwiseOptimizer), Muon's parameter split
//   keywords.cpp        Python keywords as the core's options (ValueError naming the closest spelling)
//   reference.cpp       test support, a module of its own (_kfac_reference): the same runs through the C++ API
#pragma once

#include <pybind11/functional.h>
#include <pybind11/stl.h>
#include <torch/extension.h>

#include <sstream>
#include <string>
#include <vector>

#include "kfac/errors.h"
#include "kfac/layers/layer.h"
#include "kfac/preconditioner/options.h"

namespace kfac::python {

namespace py = pybind11;

/// The tables whose fields are Python keywords besides the preconditioner's: the step rules' and the other
/// optimizers'.
std::vector<const OptionTableBase*> step_rule_tables();

/// Runs `f`, turning the core's option errors into ValueError with the same message.
template <class F>
auto as_value_error(F&& f) {
  try {
    return f();
  } catch (const c10::Error& e) {
    throw py::value_error(e.what_without_backtrace());
  }
}

/// Options from Python keywords: each key an option name of `tables`' fields or of the preconditioner's blocks.
/// Unknown names and invalid values raise ValueError naming them (and the closest valid spelling).
PreconditionerOptions preconditioner_options(const py::dict& keywords);
/// A block's field values, from keywords (defaults for the rest); raises ValueError like preconditioner_options.
template <class Block>
Block block_options(const py::dict& keywords);
/// One value of an option, from Python (None, bool, int, float, str).
OptionValue option_value(const std::string& name, const py::handle& value);
py::object python_value(const OptionValue& value);

/// A checkpointable object's state (its save(OutputArchive&)) as bytes, and back (its load(InputArchive&)): what the
/// Python state_dict()s hold.
template <class T>
py::bytes state_bytes(const T& object) {
  torch::serialize::OutputArchive archive;
  object.save(archive);
  std::ostringstream out;
  archive.save_to(out);
  return py::bytes(out.str());
}
template <class T>
void load_state_bytes(T& object, const std::string& bytes) {
  torch::serialize::InputArchive archive;
  std::istringstream in(bytes);
  archive.load_from(in);
  object.load(archive);
}

void bind_layers(py::module_& m);
void bind_preconditioner(py::module_& m);
void bind_optimizers(py::module_& m);
void bind_matrix_optimizers(py::module_& m);

}  // namespace kfac::python
