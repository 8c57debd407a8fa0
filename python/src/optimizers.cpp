// The step rules' cores: kfac::KfacOptimizer (behind kronfac.KFACOptimizer, a torch.optim.Optimizer whose parameter
// groups are copied into it before every step) and kfac::QModelOptimizer.
#include "bindings.h"
#include "kfac/optim/kfac_optimizer.h"
#include "kfac/optim/qmodel.h"

namespace kfac::python {

namespace {

std::shared_ptr<KfacOptimizer> make_optimizer(const std::vector<std::vector<at::Tensor>>& groups,
                                              const std::vector<py::dict>& options,
                                              std::shared_ptr<Preconditioner> preconditioner) {
  KFAC_CHECK(groups.size() == options.size(), groups.size(), " parameter groups but ", options.size(), " options");
  std::vector<torch::optim::OptimizerParamGroup> core;
  for (size_t g = 0; g < groups.size(); ++g)
    core.emplace_back(groups[g],
                      std::make_unique<KfacOptimizerOptions>(block_options<KfacOptimizerOptions>(options[g])));
  return std::make_shared<KfacOptimizer>(std::move(core), std::move(preconditioner));
}

}  // namespace

void bind_optimizers(py::module_& m) {
  using K = KfacOptimizer;
  py::class_<K, std::shared_ptr<K>>(m, "KfacOptimizerCore", "kfac::KfacOptimizer (use kronfac.KFACOptimizer)")
      .def(py::init(&make_optimizer), py::arg("groups"), py::arg("options"), py::arg("preconditioner"))
      .def(
          "set_group_options",
          [](K& k, size_t group, const py::dict& options) {
            KFAC_CHECK(group < k.param_groups().size(), "no parameter group ", group);
            static_cast<KfacOptimizerOptions&>(k.param_groups()[group].options()) =
                block_options<KfacOptimizerOptions>(options);
          },
          py::arg("group"), py::arg("options"), "Sets one group's lr, momentum, weight_decay and kl_clip")
      .def(
          "group_lr",
          [](K& k, size_t group) {
            KFAC_CHECK(group < k.param_groups().size(), "no parameter group ", group);
            return static_cast<KfacOptimizerOptions&>(k.param_groups()[group].options()).lr();
          },
          py::arg("group"))
      .def(
          "step",
          [](K& k) {
            k.step();
            return k.last_stats();
          },
          py::call_guard<py::gil_scoped_release>())
      .def_property_readonly("last_stats", &K::last_stats)
      .def("save", &state_bytes<K>)
      .def("load", &load_state_bytes<K>, py::arg("state"));

  py::class_<QModelStats>(m, "QModelStats", "What one quadratic-model step did (kfac::QModelStats)")
      .def_readonly("preconditioner", &QModelStats::preconditioner)
      .def_readonly("alpha", &QModelStats::alpha)
      .def_readonly("mu", &QModelStats::mu)
      .def_readonly("lambda_", &QModelStats::lambda)
      .def_readonly("gamma", &QModelStats::gamma)
      .def_readonly("rho", &QModelStats::rho)
      .def_readonly("model_change", &QModelStats::model_change)
      .def_readonly("gamma_adapted", &QModelStats::gamma_adapted);

  using Q = QModelOptimizer;
  py::class_<Q, std::shared_ptr<Q>>(m, "QModelCore", "kfac::QModelOptimizer (use kronfac.QModelOptimizer)")
      .def(py::init([](std::shared_ptr<Preconditioner> p, const py::dict& options) {
             return std::make_shared<Q>(std::move(p), block_options<QModelOptions>(options));
           }),
           py::arg("preconditioner"), py::arg("options"))
      .def(
          "step",
          [](Q& q, const at::Tensor& output, const std::string& loss, double loss_value,
             const std::function<double()>& evaluate) {
            return q.step(output, LossKind::named(loss), loss_value, evaluate);
          },
          py::arg("output"), py::arg("loss"), py::arg("loss_value"), py::arg("evaluate"),
          py::call_guard<py::gil_scoped_release>())
      .def_property_readonly("lambda_", &Q::lambda)
      .def_property_readonly("gamma", &Q::gamma)
      .def("swap_averages", &Q::swap_averages)
      .def("save", &state_bytes<Q>)
      .def("load", &load_state_bytes<Q>, py::arg("state"));
}

}  // namespace kfac::python
