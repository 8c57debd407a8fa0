#include "kfac/likelihood.h"

#include <ATen/ATen.h>

#include <cmath>

#include "kfac/errors.h"

namespace kfac {

std::string to_string(LossKind kind) {
  switch (kind) {
    case LossKind::SoftmaxCrossEntropy: return "softmax-cross-entropy";
    case LossKind::SigmoidCrossEntropy: return "sigmoid-cross-entropy";
    case LossKind::SquaredError: return "squared-error";
  }
  return "?";
}

LossKind parse_loss_kind(const std::string& name) {
  if (name == "softmax-cross-entropy") return LossKind::SoftmaxCrossEntropy;
  if (name == "sigmoid-cross-entropy") return LossKind::SigmoidCrossEntropy;
  if (name == "squared-error") return LossKind::SquaredError;
  KFAC_CHECK(false, "unknown loss '", name, "'; valid: softmax-cross-entropy, sigmoid-cross-entropy, squared-error");
  return LossKind::SquaredError;
}

namespace {
at::Tensor flat(const at::Tensor& output) {
  KFAC_CHECK(output.dim() >= 2, "the network output must be [batch, ...], got shape ", output.sizes());
  return output.reshape({output.size(0), -1});
}
void check_targets(const at::Tensor& z, const at::Tensor& targets, LossKind kind) {
  KFAC_CHECK(targets.defined(), "targets are required for the ", to_string(kind), " loss");
  if (kind == LossKind::SoftmaxCrossEntropy) {
    KFAC_CHECK(targets.dim() == 1 && targets.size(0) == z.size(0) && !at::isFloatingType(targets.scalar_type()),
               "softmax-cross-entropy targets must be integer class indices of shape [", z.size(0), "], got ",
               targets.scalar_type(), " ", targets.sizes());
  } else {
    KFAC_CHECK(targets.numel() == z.numel(), "targets of the ", to_string(kind), " loss must have ", z.numel(),
               " elements like the output, got shape ", targets.sizes());
  }
}
}  // namespace

at::Tensor loss(const at::Tensor& output, const at::Tensor& targets, LossKind kind) {
  const auto z = flat(output);
  check_targets(z, targets, kind);
  switch (kind) {
    case LossKind::SoftmaxCrossEntropy:
      return at::nll_loss(at::log_softmax(z, 1), targets.to(at::kLong));
    case LossKind::SigmoidCrossEntropy:
      return at::binary_cross_entropy_with_logits(z, targets.reshape_as(z).to(z.dtype()), {}, {},
                                                  at::Reduction::Sum) / z.size(0);
    case LossKind::SquaredError:
      return 0.5 * (z - targets.reshape_as(z).to(z.dtype())).pow(2).sum() / z.size(0);
  }
  return {};
}

at::Tensor output_gradient_rows(const at::Tensor& output, LossKind kind, FisherType fisher, int64_t samples,
                                const at::Tensor& targets, at::Generator generator) {
  const auto z = flat(output);
  const int64_t B = z.size(0), C = z.size(1);
  switch (fisher) {
    case FisherType::Empirical: {
      check_targets(z, targets, kind);
      at::Tensor r;
      if (kind == LossKind::SoftmaxCrossEntropy)
        r = at::softmax(z, 1) - at::one_hot(targets.to(at::kLong), C).to(z.dtype());
      else if (kind == LossKind::SigmoidCrossEntropy)
        r = at::sigmoid(z) - targets.reshape_as(z).to(z.dtype());
      else
        r = z - targets.reshape_as(z).to(z.dtype());
      return r.unsqueeze(0);
    }
    case FisherType::Sampled: {
      // Gradient of the loss at a sampled target, one row per sample, scaled so that rows sum to the mean.
      const double scale = 1.0 / std::sqrt(static_cast<double>(samples));
      at::Tensor r;
      if (kind == LossKind::SoftmaxCrossEntropy) {
        const auto p = at::softmax(z, 1);
        const auto y = at::multinomial(p, samples, /*replacement=*/true, generator);  // [B, S]
        r = p.unsqueeze(0) - at::one_hot(y.t(), C).to(z.dtype());                  // [S, B, C]
      } else if (kind == LossKind::SigmoidCrossEntropy) {
        const auto p = at::sigmoid(z).unsqueeze(0).expand({samples, B, C});
        r = p - at::bernoulli(p, generator);
      } else {
        r = -at::normal(0.0, 1.0, {samples, B, C}, generator, z.options());
      }
      return r * scale;
    }
    case FisherType::Exact: {
      // Square-root factorizations of the output Fisher H = Σ_c r_c r_cᵀ (per example).
      if (kind == LossKind::SoftmaxCrossEntropy) {
        // H = diag(p) − p pᵀ = Σ_c p_c (e_c − p)(e_c − p)ᵀ.
        const auto p = at::softmax(z, 1);
        const auto eye = at::eye(C, z.options());
        return (p.unsqueeze(0) - eye.unsqueeze(1)) * p.t().sqrt().unsqueeze(2);  // [C, B, C]
      }
      const auto eye = at::eye(C, z.options()).unsqueeze(1);  // [C, 1, C]
      if (kind == LossKind::SigmoidCrossEntropy) {
        const auto s = at::sigmoid(z);
        return eye * (s * (1 - s)).sqrt().unsqueeze(0);  // H = diag(σ(1−σ))
      }
      return eye.expand({C, B, C}).clone();  // H = I
    }
  }
  return {};
}

}  // namespace kfac
