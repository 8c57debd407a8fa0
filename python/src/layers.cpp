// Layers of a Python model: the core's layer kinds (kfac/layers/kind_registry.h) decide from the module's
// attributes, gathered by python/kronfac/layers.py into a ModuleConfig here, exactly as for the LibTorch stand-ins.
#include "bindings.h"
#include "kfac/layers/kind_registry.h"

namespace kfac::python {

namespace {

c10::optional<WeightSharing> sharing(const c10::optional<std::string>& name) {
  if (!name) return c10::nullopt;
  return parse_enum<WeightSharing>(*name);
}

/// A module's attributes (name → tensor, bool, int, float, str or a sequence of ints; None: absent).
ModuleConfig module_config(const py::dict& attributes) {
  ModuleConfig c;
  for (const auto& [key, value] : attributes) {
    const auto name = py::cast<std::string>(key);
    if (value.is_none()) continue;
    if (THPVariable_Check(value.ptr()))
      c.set(name, py::cast<at::Tensor>(value));
    else if (py::isinstance<py::bool_>(value))
      c.set(name, value.cast<bool>());
    else if (py::isinstance<py::int_>(value))
      c.set(name, value.cast<int64_t>());
    else if (py::isinstance<py::float_>(value))
      c.set(name, value.cast<double>());
    else if (py::isinstance<py::str>(value))
      c.set(name, value.cast<std::string>());
    else if (py::isinstance<py::sequence>(value))
      c.set(name, value.cast<std::vector<int64_t>>());
    else
      throw py::type_error("kronfac: module attribute '" + name + "' is a " +
                           std::string(py::str(py::type::of(value).attr("__name__"))) +
                           "; a layer kind reads tensors, flags, numbers, words and tuples of integers");
  }
  return c;
}

}  // namespace

void bind_layers(py::module_& m) {
  py::class_<Layer>(m, "Layer", "A registered layer of a Python model (made by kronfac's module registry)")
      .def_property_readonly("name", [](const Layer& l) { return l.name; })
      .def_property_readonly("kind", [](const Layer& l) { return l.kind->kind_name(); })
      .def_property(
          "weight_sharing",
          [](const Layer& l) -> c10::optional<std::string> {
            if (!l.weight_sharing) return c10::nullopt;
            return to_string(*l.weight_sharing);
          },
          [](Layer& l, const c10::optional<std::string>& flavour) { l.weight_sharing = sharing(flavour); },
          "This layer's own weight sharing (expand or reduce); None: the option weight_sharing")
      .def_property_readonly("armed", [](const Layer& l) { return l.slot->armed(); })
      .def_property_readonly("taps", [](const Layer& l) { return l.slot->taps(); })
      .def(
          "tap",
          [](const Layer& l, const at::Tensor& input, const at::Tensor& output, bool training) {
            l.slot->tap(input, output, training);
          },
          py::arg("input"), py::arg("output"), py::arg("training") = true,
          "Records one use of the layer with the module's input, output and mode (its forward hook calls it; a "
          "no-op unless the preconditioner armed it)");

  m.def(
      "layer_kinds",
      [] {
        py::list kinds;
        for (const auto& name : registered_layer_kinds()) {
          const auto d = kind_definition(name);
          py::dict k;
          k["name"] = d.name;
          k["python_modules"] = d.python_modules;
          k["attributes"] = d.attributes;
          kinds.append(k);
        }
        return kinds;
      },
      "The core's layer kinds: each one's name, the torch.nn classes it covers and the attributes it reads");
  m.def(
      "make_layer",
      [](const std::string& kind, const std::string& name, const py::dict& attributes,
         const c10::optional<std::string>& weight_sharing) -> std::pair<c10::optional<Layer>, std::string> {
        std::string refusal;
        auto layer = layer_of_kind(kind, name, module_config(attributes), std::make_shared<Slot>(name), &refusal);
        if (layer) layer->weight_sharing = sharing(weight_sharing);
        return {std::move(layer), refusal};
      },
      py::arg("kind"), py::arg("name"), py::arg("attributes"), py::arg("weight_sharing") = py::none(),
      "(layer, '') if kind `kind` has a block for a module with these attributes; (None, reason) otherwise");
}

}  // namespace kfac::python
