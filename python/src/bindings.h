// The Python extension module kronfac._kfac: pybind11 bindings over the C++ core, with LibTorch's tensor conversions
// (torch/extension.h), so that a Python tensor and the core's at::Tensor are one object. Nothing here computes: each
// binding forwards to the library, and the Python package (python/kronfac/) adds only capture hooks and the
// torch.optim.Optimizer shape.
//
//   module.cpp          the module, the error translation, the option tables as keywords
//   layers.cpp          layers of a Python model: each holds a kfac::Layer whose slot the hooks tap
//   preconditioner.cpp  Preconditioner, StepStats, Registration, the communicator
//   optimizers.cpp      KfacOptimizer and QModelOptimizer
//   matrix_optimizers.cpp  Muon, Shampoo and SOAP (ParameterwiseOptimizer), Muon's parameter split
//   reference.cpp       the same runs through the C++ API, for the tests' bitwise comparisons
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

/// A layer of a Python model. Its forward hook calls tap(): Linear, Conv2d and Embedding tap their input as it is,
/// the normalization layers their normalized input (recomputed here exactly as kfac::nn::LayerNorm / BatchNorm2d
/// compute it).
struct PythonLayer {
  enum class Input { Raw, LayerNorm, BatchNorm };
  kfac::Layer layer;
  Input input = Input::Raw;
  std::vector<int64_t> normalized_shape;  // LayerNorm
  double eps = 0;                         // LayerNorm, BatchNorm
  void tap(const at::Tensor& input, const at::Tensor& output, const c10::optional<at::Tensor>& running_mean,
           const c10::optional<at::Tensor>& running_var) const;
};

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
void bind_reference(py::module_& m);

}  // namespace kfac::python
