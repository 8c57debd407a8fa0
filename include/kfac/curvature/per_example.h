// Per-example quantities that the eigenvalue-corrected and trace-restricted methods need, computed without forming
// per-example gradients where the algebra allows it.
//
// With ∇_{sb} = Σ_t g_{sbt} ā_{bt}ᵀ the per-example gradient of row s of example b (kfac/curvature/curvature.h):
//   projected_second_moment:  (1/B) Σ_{s,b} (Q_Gᵀ ∇_{sb} Q_A)^∘2        [d_G, d_A]
//   gradient_sq_norms:        ‖∇_{sb}‖_F² summed over s                   [B]
// Linear layers (T = 1) need one matrix product; Conv2d layers form per-example gradients in chunks of at most
// `chunk_bytes` bytes, so memory stays bounded whatever the batch.
#pragma once

#include <ATen/core/Tensor.h>

#include "kfac/curvature/curvature.h"

namespace kfac {

constexpr int64_t kPerExampleChunkBytes = int64_t{64} << 20;  // 64 MiB

/// E[(Q_Gᵀ ∇ Q_A)^∘2] over the examples, [d_G, d_A]; an undefined Q is the identity (a diagonal factor).
at::Tensor projected_second_moment(const LayerStatistics& stats, const at::Tensor& q_a, const at::Tensor& q_g,
                                   int64_t chunk_bytes = kPerExampleChunkBytes);

/// The same with the positions as examples (docs/design.md §4, "EKFAC's spectrum over positions"):
/// (1/B) Σ_{s,b,t} (Q_Gᵀ g_sbt)^∘2 ((Q_Aᵀ ā_bt)^∘2)ᵀ, one product; equal to projected_second_moment when T = 1. On a
/// sample of k of the layer's T positions (LayerStatistics::sampled_from) the sum is scaled by T/k: unbiased.
at::Tensor projected_second_moment_per_position(const LayerStatistics& stats, const at::Tensor& q_a,
                                                const at::Tensor& q_g);

at::Tensor gradient_sq_norms(const LayerStatistics& stats, int64_t chunk_bytes = kPerExampleChunkBytes);

}  // namespace kfac
