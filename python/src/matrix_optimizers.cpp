// The optimizers a user would pick instead of K-FAC: kfac::Muon, kfac::Shampoo and kfac::Soap behind one core class
// (kronfac.Muon, kronfac.Shampoo and kronfac.SOAP are torch.optim.Optimizers whose groups are copied into it before every
// step), and Muon's parameter split over a Python model's description.
#include "bindings.h"
#include "kfac/optim/muon.h"
#include "kfac/optim/shampoo.h"
#include "kfac/optim/soap.h"

namespace kfac::python {

namespace {

template <class Options>
std::vector<torch::optim::OptimizerParamGroup> core_groups(const std::vector<std::vector<at::Tensor>>& groups,
                                                           const std::vector<py::dict>& options) {
  KFAC_CHECK(groups.size() == options.size(), groups.size(), " parameter groups but ", options.size(), " options");
  std::vector<torch::optim::OptimizerParamGroup> core;
  for (size_t g = 0; g < groups.size(); ++g)
    core.emplace_back(groups[g], std::make_unique<Options>(block_options<Options>(options[g])));
  return core;
}

std::shared_ptr<ParameterwiseOptimizer> make_core(const std::string& method,
                                                  const std::vector<std::vector<at::Tensor>>& groups,
                                                  const std::vector<py::dict>& options) {
  if (method == "muon") return std::make_shared<Muon>(core_groups<MuonOptions>(groups, options));
  if (method == "shampoo") return std::make_shared<Shampoo>(core_groups<ShampooOptions>(groups, options));
  if (method == "soap") return std::make_shared<Soap>(core_groups<SoapOptions>(groups, options));
  throw py::value_error("kfac: no optimizer '" + method + "' (muon, shampoo, soap)");
}

// Writes a group's options (a dict of the method's table) into the core's group.
void set_group(ParameterwiseOptimizer& core, size_t group, const py::dict& options) {
  KFAC_CHECK(group < core.param_groups().size(), "no parameter group ", group);
  auto& o = core.param_groups()[group].options();
  if (core.method() == "muon") static_cast<MuonOptions&>(o) = block_options<MuonOptions>(options);
  if (core.method() == "shampoo") static_cast<ShampooOptions&>(o) = block_options<ShampooOptions>(options);
  if (core.method() == "soap") static_cast<SoapOptions&>(o) = block_options<SoapOptions>(options);
}

}  // namespace

void bind_matrix_optimizers(py::module_& m) {
  py::class_<ParameterwiseStats>(m, "ParameterwiseStats", "What one Muon, Shampoo or SOAP step did")
      .def_readonly("step", &ParameterwiseStats::step)
      .def_readonly("skipped", &ParameterwiseStats::skipped)
      .def_readonly("refreshed", &ParameterwiseStats::refreshed)
      .def_readonly("refresh_failures", &ParameterwiseStats::refresh_failures)
      .def_readonly("messages", &ParameterwiseStats::messages);
  using P = ParameterwiseOptimizer;
  py::class_<P, std::shared_ptr<P>>(m, "ParameterwiseCore", "kfac::Muon, kfac::Shampoo or kfac::Soap")
      .def(py::init(&make_core), py::arg("method"), py::arg("groups"), py::arg("options"))
      .def("set_group_options", &set_group, py::arg("group"), py::arg("options"))
      .def(
          "step",
          [](P& p) {
            p.step();
            return p.last_stats();
          },
          py::call_guard<py::gil_scoped_release>())
      .def_property_readonly("steps_taken", &P::steps_taken)
      .def("parameter_state", &P::parameter_state, py::arg("group"), py::arg("index"))
      .def("save", &state_bytes<P>)
      .def("load", &load_state_bytes<P>, py::arg("state"));
  m.def(
      "muon_split",
      [](const std::vector<std::tuple<std::string, at::Tensor, bool, int64_t>>& params) {
        std::vector<MuonParameter> described;
        for (const auto& [name, value, embedding, module] : params)
          described.push_back({name, value, embedding, module});
        const auto split = muon_split(described);
        return py::make_tuple(split.orthogonalized, split.adamw, split.report);
      },
      py::arg("params"),
      "kfac::muon_split over (name, tensor, in_embedding, module_index) tuples: (orthogonalized, adamw, report)");
}

}  // namespace kfac::python
