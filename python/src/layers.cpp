// Layers of a Python model, made from the module's tensors: the same layer kinds as kfac::nn's modules, so that the
// core sees no difference between a LibTorch model and a Python one.
#include "bindings.h"
#include "kfac/layers/conv2d_kind.h"
#include "kfac/layers/embedding_kind.h"
#include "kfac/layers/linear_kind.h"
#include "kfac/layers/scale_shift_kind.h"

namespace kfac::python {

namespace {

c10::optional<WeightSharing> sharing(const c10::optional<std::string>& name) {
  if (!name) return c10::nullopt;
  return parse_enum<WeightSharing>(*name);
}

PythonLayer make(const std::string& name, std::shared_ptr<LayerKind> kind, const c10::optional<std::string>& flavour,
                 PythonLayer::Input input = PythonLayer::Input::Raw) {
  PythonLayer l;
  l.layer = Layer{name, std::move(kind), std::make_shared<Slot>(name), sharing(flavour)};
  l.input = input;
  return l;
}

at::Tensor optional_tensor(const c10::optional<at::Tensor>& t) { return t ? *t : at::Tensor(); }

std::array<int64_t, 2> pair(const std::vector<int64_t>& v, const char* what) {
  KFAC_CHECK(v.size() == 2, "Conv2d ", what, " must have 2 entries, got ", v.size());
  return {v[0], v[1]};
}

}  // namespace

void bind_layers(py::module_& m) {
  py::class_<PythonLayer>(m, "Layer", "A registered layer of a Python model (made by kfac's module registry)")
      .def_property_readonly("name", [](const PythonLayer& l) { return l.layer.name; })
      .def_property_readonly("kind", [](const PythonLayer& l) { return l.layer.kind->kind_name(); })
      .def_property(
          "weight_sharing",
          [](const PythonLayer& l) -> c10::optional<std::string> {
            if (!l.layer.weight_sharing) return c10::nullopt;
            return to_string(*l.layer.weight_sharing);
          },
          [](PythonLayer& l, const c10::optional<std::string>& flavour) { l.layer.weight_sharing = sharing(flavour); },
          "This layer's own weight sharing (expand or reduce); None: the option weight_sharing")
      .def_property_readonly("armed", [](const PythonLayer& l) { return l.layer.slot->armed(); })
      .def_property_readonly("taps", [](const PythonLayer& l) { return l.layer.slot->taps(); })
      .def("tap", &PythonLayer::tap, py::arg("input"), py::arg("output"), py::arg("running_mean") = py::none(),
           py::arg("running_var") = py::none(),
           "Records one use of the layer (its forward hook calls it; a no-op unless the preconditioner armed it)");

  m.def(
      "linear_layer",
      [](const std::string& name, const at::Tensor& weight, const c10::optional<at::Tensor>& bias,
         const c10::optional<std::string>& weight_sharing) {
        return make(name, std::make_shared<LinearKind>(weight, optional_tensor(bias)), weight_sharing);
      },
      py::arg("name"), py::arg("weight"), py::arg("bias"), py::arg("weight_sharing") = py::none());
  m.def(
      "conv2d_layer",
      [](const std::string& name, const at::Tensor& weight, const c10::optional<at::Tensor>& bias,
         const std::vector<int64_t>& stride, const std::vector<int64_t>& padding, const std::vector<int64_t>& dilation,
         const c10::optional<std::string>& weight_sharing) {
        const Conv2dGeometry g{pair(stride, "stride"), pair(padding, "padding"), pair(dilation, "dilation")};
        return make(name, std::make_shared<Conv2dKind>(weight, optional_tensor(bias), g), weight_sharing);
      },
      py::arg("name"), py::arg("weight"), py::arg("bias"), py::arg("stride"), py::arg("padding"), py::arg("dilation"),
      py::arg("weight_sharing") = py::none());
  m.def(
      "embedding_layer",
      [](const std::string& name, const at::Tensor& weight, const c10::optional<std::string>& weight_sharing) {
        return make(name, std::make_shared<EmbeddingKind>(weight), weight_sharing);
      },
      py::arg("name"), py::arg("weight"), py::arg("weight_sharing") = py::none());
  m.def(
      "layer_norm_layer",
      [](const std::string& name, const at::Tensor& weight, const at::Tensor& bias,
         const std::vector<int64_t>& normalized_shape, double eps) {
        auto l = make(name, std::make_shared<ScaleShiftKind>(weight, bias, ScaleShiftKind::Features::Last, "LayerNorm"),
                      c10::nullopt, PythonLayer::Input::LayerNorm);
        l.normalized_shape = normalized_shape;
        l.eps = eps;
        return l;
      },
      py::arg("name"), py::arg("weight"), py::arg("bias"), py::arg("normalized_shape"), py::arg("eps"));
  m.def(
      "batch_norm2d_layer",
      [](const std::string& name, const at::Tensor& weight, const at::Tensor& bias, double eps) {
        auto l = make(name,
                      std::make_shared<ScaleShiftKind>(weight, bias, ScaleShiftKind::Features::Channels, "BatchNorm2d"),
                      c10::nullopt, PythonLayer::Input::BatchNorm);
        l.eps = eps;
        return l;
      },
      py::arg("name"), py::arg("weight"), py::arg("bias"), py::arg("eps"));
}

}  // namespace kfac::python
