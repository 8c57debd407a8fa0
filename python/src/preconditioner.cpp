// kronfac.Preconditioner's core, StepStats, Registration and the communicator. Calls that run autograd release the GIL
// (autograd's device threads may need it for Python hooks); the forward callable takes it back while it runs.
#include "bindings.h"
#include "kfac/distributed/collectives.h"
#include "kfac/distributed/communicator.h"
#include "kfac/distributed/placement.h"
#include "kfac/preconditioner/preconditioner.h"

namespace kfac::python {

namespace {

using ModuleTuple = std::tuple<std::string, std::string, std::string, std::vector<std::pair<std::string, at::Tensor>>>;

std::shared_ptr<Preconditioner> make_preconditioner(std::vector<Layer> core, const std::vector<ModuleTuple>& modules,
                                                    const PreconditionerOptions& options,
                                                    std::shared_ptr<Communicator> communicator) {
  std::vector<ModuleParameters> views;
  for (const auto& [name, type, hint, parameters] : modules) views.push_back({name, type, hint, parameters});
  return std::make_shared<Preconditioner>(std::move(core), views, options, std::move(communicator));
}

std::string stats_repr(const StepStats& s) {
  auto flag = [](bool b) { return b ? "True" : "False"; };
  std::ostringstream o;
  o << "StepStats(step=" << s.step << ", damping=" << s.damping << ", statistics_updated=" << flag(s.statistics_updated)
    << ", refreshed=" << flag(s.refreshed) << ", skipped=" << flag(s.skipped)
    << ", grad_dot_direction=" << s.grad_dot_direction << ", clip_factor=" << s.clip_factor
    << ", messages=" << s.messages.size() << ")";
  return o.str();
}

// A communicator whose collectives are written in Python (kronfac.TorchDistributed, over torch.distributed): each
// override takes the GIL, which the core's calls have released. The Python methods carry a leading underscore so that
// the properties rank, size and backend stay properties.
class PythonCommunicator : public Communicator {
 public:
  int rank() const override { PYBIND11_OVERRIDE_PURE_NAME(int, Communicator, "_rank", rank); }
  int size() const override { PYBIND11_OVERRIDE_PURE_NAME(int, Communicator, "_size", size); }
  void all_reduce_sum(std::vector<at::Tensor>& tensors) override {
    count(tensors);
    PYBIND11_OVERRIDE_PURE_NAME(void, Communicator, "_all_reduce_sum", all_reduce_sum, tensors);
  }
  void broadcast(std::vector<at::Tensor>& tensors, int root) override {
    count(tensors);
    PYBIND11_OVERRIDE_PURE_NAME(void, Communicator, "_broadcast", broadcast, tensors, root);
  }
  void barrier() override { PYBIND11_OVERRIDE_PURE_NAME(void, Communicator, "_barrier", barrier); }
  std::string backend() const override { PYBIND11_OVERRIDE_PURE_NAME(std::string, Communicator, "_backend", backend); }
  at::Device device() const override {
    py::gil_scoped_acquire gil;
    const py::function device = py::get_override(static_cast<const Communicator*>(this), "_device");
    return device ? at::Device(device().cast<std::string>()) : Communicator::device();
  }
};

}  // namespace

void bind_preconditioner(py::module_& m) {
  using SS = StepStats;
  py::class_<StepStats>(m, "StepStats", "What one step did (kfac::StepStats)")
      .def_readonly("step", &SS::step, "index of this step (0-based)")
      .def_readonly("damping", &SS::damping, "damping lambda used")
      .def_readonly("statistics_updated", &SS::statistics_updated, "the factors were updated")
      .def_readonly("statistics_skipped", &SS::statistics_skipped, "captured statistics were non-finite, dropped")
      .def_readonly("refreshed", &SS::refreshed, "decompositions were recomputed")
      .def_readonly("skipped", &SS::skipped, "non-finite gradients: nothing was preconditioned or applied")
      .def_readonly("refresh_failures", &SS::refresh_failures, "layers whose refresh failed this step")
      .def_readonly("fallback_layers", &SS::fallback_layers, "layers preconditioned as gradient / lambda")
      .def_readonly("frozen_layers", &SS::frozen_layers,
                    "layers frozen after construction (no parameter requires grad), skipped until unfrozen")
      .def_readonly("grad_dot_direction", &SS::grad_dot_direction, "sum over layers of <v, g>")
      .def_readonly("clip_factor", &SS::clip_factor, "scale applied by the step rule (KL clip)")
      .def_readonly("messages", &SS::messages, "reports of anything unusual")
      .def_readonly("seconds_statistics", &SS::seconds_statistics, "seconds folding in the statistics")
      .def_readonly("seconds_refresh", &SS::seconds_refresh, "seconds refreshing decompositions")
      .def_readonly("seconds_precondition", &SS::seconds_precondition, "seconds preconditioning the gradients")
      .def_readonly("seconds_global", &SS::seconds_global, "seconds in the global stage")
      .def("__repr__", &stats_repr);

  py::class_<Registration>(m, "Registration", "What the preconditioner registered, and the fallback parameters")
      .def("summary", &Registration::summary, "the one-line report: blocks by kind, and the fallback")
      .def("__str__", &Registration::summary)
      .def("details", &Registration::details,
           "one line per block: name, kind (form), factor sizes and structure, "
           "memory")
      .def_property_readonly(
          "blocks",
          [](const Registration& r) {
            py::list out;
            for (const auto& b : r.blocks)
              out.append(py::make_tuple(b.name, b.kind, b.form, b.structure, b.memory_bytes));
            return out;
          },
          "(name, kind, form, structure, memory_bytes) per block, in registration order")
      .def_readonly("frozen", &Registration::frozen, "parameters that do not require grad (left alone)")
      .def_readonly("excluded", &Registration::excluded, "layers the option exclude sent to the fallback")
      .def_property_readonly(
          "fallback",
          [](const Registration& r) {
            py::list out;
            for (const auto& f : r.fallback) out.append(py::make_tuple(f.name, f.module_type, f.hint));
            return out;
          },
          "(name, module type, hint) per parameter that gets the fallback");

  py::class_<Communicator, PythonCommunicator, std::shared_ptr<Communicator>>(
      m, "Communicator",
      "The ranks of a data-parallel run. A subclass implements _rank(), _size(), _backend(), _device() (a device "
      "string), _all_reduce_sum(tensors) and _broadcast(tensors, root) in place, and _barrier()")
      .def(py::init<>())
      .def_property_readonly("rank", &Communicator::rank, "this process's rank, from 0")
      .def_property_readonly("size", &Communicator::size, "the number of ranks")
      .def_property_readonly("backend", &Communicator::backend, "the collectives' backend, in words")
      .def(
          "all_reduce_gradients",
          [](Communicator& c, const std::vector<at::Tensor>& params) {
            py::gil_scoped_release release;
            all_reduce_gradients(c, params);
          },
          py::arg("parameters"), "Averages the parameters' .grad over the ranks, in place (bucketed all-reduces)");
  m.def(
      "connect_from_environment",
      [] {
        py::gil_scoped_release release;
        return connect(ProcessGroupOptions::from_environment());
      },
      "A communicator from RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT (c10d; one process when WORLD_SIZE is 1)");

  using P = Preconditioner;
  using Release = py::call_guard<py::gil_scoped_release>;
  py::class_<P, std::shared_ptr<P>>(m, "PreconditionerCore", "kfac::Preconditioner (use kronfac.Preconditioner)")
      .def(py::init(&make_preconditioner), py::arg("layers"), py::arg("modules"), py::arg("options"),
           py::arg("communicator") = nullptr)
      .def("is_statistics_step", &P::is_statistics_step)
      .def(
          "update_statistics",
          [](P& p, const std::function<at::Tensor(const at::Tensor&)>& forward, const at::Tensor& inputs,
             const std::string& loss, const c10::optional<at::Tensor>& targets) {
            return p.update_statistics(forward, inputs, LossKind::named(loss), targets ? *targets : at::Tensor());
          },
          py::arg("forward"), py::arg("inputs"), py::arg("loss"), py::arg("targets") = py::none(), Release())
      .def("capture_forward", &P::capture_forward)
      .def(
          "statistics_from_forward",
          [](P& p, const at::Tensor& output, const std::string& loss, const c10::optional<at::Tensor>& targets) {
            p.statistics_from_forward(output, LossKind::named(loss), targets ? *targets : at::Tensor());
          },
          py::arg("output"), py::arg("loss"), py::arg("targets") = py::none(), Release())
      .def("capture_backward", &P::capture_backward, py::arg("grad_scale"))
      .def("set_capture_scale", &P::set_capture_scale, py::arg("grad_scale"))
      .def("step", &P::step, Release())
      .def("refresh_all", &P::refresh_all, Release())
      .def("gradient_matrices", &P::gradient_matrices)
      .def("precondition", &P::precondition, py::arg("matrices"), Release())
      .def("precondition_layers", &P::precondition_layers, py::arg("matrices"), Release())
      .def("scale_gradients", &P::scale_gradients, py::arg("factor"))
      .def("synchronize_statistics", &P::synchronize_statistics, Release())
      .def_property("damping", &P::damping, &P::set_damping)
      .def_property_readonly("steps", &P::steps)
      .def_property_readonly("registration", &P::registration, py::return_value_policy::reference_internal)
      .def_property_readonly("memory_bytes", &P::memory_bytes)
      .def_property_readonly("option_changes", &P::option_changes)
      .def_property_readonly("communicator", [](const P& p) { return p.placement().shared_communicator(); })
      .def_property_readonly("options", &P::options)
      .def_property_readonly("parameters", &P::parameters)
      .def("save", &state_bytes<P>)
      .def("load", &load_state_bytes<P>, py::arg("state"));
}

}  // namespace kfac::python
