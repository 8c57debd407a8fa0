// The same training run through the C++ API, for the tests that compare the Python front end with it bit for bit:
// a torch::nn::Sequential of kfac::nn layers built from a short spec, the given weights, the C++ Preconditioner and
// KfacOptimizer. Test support, not API: its own module, kronfac's tests import it from the build tree
// (build/python/_kfac_reference), and it is neither installed nor in the wheel.
#include <sstream>

#include "bindings.h"
#include "kfac/nn/layers.h"
#include "kfac/nn/normalization.h"
#include "kfac/optim/kfac_optimizer.h"
#include "kfac/optim/muon.h"
#include "kfac/optim/shampoo.h"
#include "kfac/optim/soap.h"
#include "kfac/preconditioner/preconditioner.h"

namespace kfac::python {

namespace {

/// "linear IN OUT", "conv2d IN OUT KERNEL STRIDE PADDING", "conv1d IN OUT KERNEL STRIDE PADDING", "embedding NUM DIM",
/// "layernorm DIM", "rmsnorm DIM", "batchnorm2d C", "groupnorm GROUPS C", "relu", "tanh", "flatten".
torch::nn::Sequential build(const std::vector<std::string>& spec) {
  torch::nn::Sequential model;
  for (const auto& line : spec) {
    std::istringstream in(line);
    std::string kind;
    in >> kind;
    if (kind == "linear") {
      int64_t a = 0, b = 0;
      in >> a >> b;
      model->push_back(nn::Linear(torch::nn::LinearOptions(a, b)));
    } else if (kind == "conv2d") {
      int64_t a = 0, b = 0, k = 0, s = 1, p = 0;
      in >> a >> b >> k >> s >> p;
      model->push_back(nn::Conv2d(torch::nn::Conv2dOptions(a, b, k).stride(s).padding(p)));
    } else if (kind == "conv1d") {
      int64_t a = 0, b = 0, k = 0, s = 1, p = 0;
      in >> a >> b >> k >> s >> p;
      model->push_back(nn::Conv1d(torch::nn::Conv1dOptions(a, b, k).stride(s).padding(p)));
    } else if (kind == "rmsnorm") {
      int64_t d = 0;
      in >> d;
      model->push_back(nn::RMSNorm(std::vector<int64_t>{d}));
    } else if (kind == "groupnorm") {
      int64_t g = 0, c = 0;
      in >> g >> c;
      model->push_back(nn::GroupNorm(g, c));
    } else if (kind == "embedding") {
      int64_t a = 0, b = 0;
      in >> a >> b;
      model->push_back(nn::Embedding(torch::nn::EmbeddingOptions(a, b)));
    } else if (kind == "layernorm") {
      int64_t d = 0;
      in >> d;
      model->push_back(nn::LayerNorm(torch::nn::LayerNormOptions({d})));
    } else if (kind == "batchnorm2d") {
      int64_t c = 0;
      in >> c;
      model->push_back(nn::BatchNorm2d(torch::nn::BatchNormOptions(c)));
    } else if (kind == "relu") {
      model->push_back(torch::nn::ReLU());
    } else if (kind == "tanh") {
      model->push_back(torch::nn::Tanh());
    } else if (kind == "flatten") {
      model->push_back(torch::nn::Flatten());
    } else {
      KFAC_CHECK(false, "reference model: unknown layer '", line, "'");
    }
  }
  return model;
}

void set_parameters(torch::nn::Sequential& model, const std::vector<at::Tensor>& parameters) {
  at::NoGradGuard no_grad;
  auto own = model->parameters();
  KFAC_CHECK(own.size() == parameters.size(), "reference model has ", own.size(), " parameters, got ",
             parameters.size());
  for (size_t i = 0; i < own.size(); ++i) own[i].set_data(parameters[i].detach().clone());
}

void bind_reference(py::module_& m) {
  m.def(
      "reference_parameterwise_run",
      [](const std::vector<std::string>& spec, const std::vector<at::Tensor>& parameters, const at::Tensor& inputs,
         const at::Tensor& targets, const std::string& loss, const std::string& method, const py::dict& options,
         double adamw_lr, int64_t steps) {
        auto model = build(spec);
        set_parameters(model, parameters);
        std::unique_ptr<ParameterwiseOptimizer> opt;
        if (method == "muon")
          opt = std::make_unique<Muon>(muon_groups(muon_split(*model), block_options<MuonOptions>(options), adamw_lr));
        else if (method == "shampoo")
          opt = std::make_unique<Shampoo>(model->parameters(), block_options<ShampooOptions>(options));
        else
          opt = std::make_unique<Soap>(model->parameters(), block_options<SoapOptions>(options));
        py::gil_scoped_release release;
        const auto kind = LossKind::named(loss);
        for (int64_t k = 0; k < steps; ++k) {
          opt->zero_grad();
          kfac::loss(model->forward(inputs), targets, kind).backward();
          opt->step();
        }
        std::vector<at::Tensor> out;
        for (const auto& p : model->parameters()) out.push_back(p.detach().clone());
        return out;
      },
      py::arg("spec"), py::arg("parameters"), py::arg("inputs"), py::arg("targets"), py::arg("loss"), py::arg("method"),
      py::arg("options"), py::arg("adamw_lr"), py::arg("steps"),
      "Trains the spec'd model with kfac::Muon (split by kfac::muon_split), kfac::Shampoo or kfac::Soap through "
      "the C++ API: its parameters after `steps` steps (test support)");
  m.def(
      "reference_run",
      [](const std::vector<std::string>& spec, const std::vector<at::Tensor>& parameters, const at::Tensor& inputs,
         const at::Tensor& targets, const std::string& loss, const PreconditionerOptions& options,
         const py::dict& optimizer, int64_t steps) {
        py::gil_scoped_release release;
        auto model = build(spec);
        set_parameters(model, parameters);
        const auto kind = LossKind::named(loss);
        const bool empirical = options.fisher() == FisherType::Empirical;
        auto pre = std::make_shared<Preconditioner>(*model, options);
        KfacOptimizerOptions o;
        {
          py::gil_scoped_acquire gil;
          o = block_options<KfacOptimizerOptions>(optimizer);
        }
        KfacOptimizer opt(model->parameters(), pre, o);
        std::vector<at::Tensor> directions;
        for (int64_t k = 0; k < steps; ++k) {
          pre->update_statistics([&](const at::Tensor& x) { return model->forward(x); }, inputs, kind,
                                 empirical ? targets : at::Tensor());
          opt.zero_grad();
          kfac::loss(model->forward(inputs), targets, kind).backward();
          opt.step();
        }
        std::vector<at::Tensor> out;
        for (const auto& p : model->parameters()) out.push_back(p.detach().clone());
        for (const auto& p : model->parameters()) out.push_back(p.grad().clone());
        return out;
      },
      py::arg("spec"), py::arg("parameters"), py::arg("inputs"), py::arg("targets"), py::arg("loss"),
      py::arg("options"), py::arg("optimizer"), py::arg("steps"),
      "Trains the spec'd kfac::nn model through the C++ API: its parameters after `steps` steps, then the last "
      "step's directions (test support)");
}

}  // namespace

}  // namespace kfac::python

PYBIND11_MODULE(_kfac_reference, m) {
  m.doc() = "Test support: training runs through kfac's C++ API, for kronfac's comparisons (not shipped)";
  pybind11::module_::import("kronfac._kfac");  // the types it takes (PreconditionerOptions) are bound there
  kfac::python::bind_reference(m);
}
