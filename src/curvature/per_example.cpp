#include "kfac/curvature/per_example.h"

#include <ATen/ATen.h>

#include <algorithm>

namespace kfac {

namespace {
// Calls f(a_chunk [b, T, dA], g_chunk [S, b, T, dG]) over chunks of examples whose per-example gradients
// (S·b·dG·dA values) fit in chunk_bytes.
template <typename F>
void for_each_chunk(const LayerStatistics& s, int64_t chunk_bytes, F&& f) {
  const int64_t per_example = s.g.size(0) * s.g.size(3) * s.a.size(2) * static_cast<int64_t>(s.a.element_size());
  const int64_t chunk = std::max<int64_t>(1, chunk_bytes / std::max<int64_t>(1, per_example));
  for (int64_t start = 0; start < s.examples(); start += chunk) {
    const int64_t len = std::min(chunk, s.examples() - start);
    f(s.a.narrow(0, start, len), s.g.narrow(1, start, len));
  }
}

// x rotated into the basis q (x q), in x's dtype (bfloat16 statistics: statistics_precision); an undefined q is the
// identity basis of a diagonal factor.
at::Tensor rotate(const at::Tensor& x, const at::Tensor& q) {
  return q.defined() ? at::matmul(x, q.to(x.scalar_type())) : x;
}

// The dtype sums of products are kept in: float32 for bfloat16 statistics, theirs otherwise.
at::ScalarType accumulation_dtype(const LayerStatistics& s) { return at::promote_types(s.a.scalar_type(), at::kFloat); }

// Per-example gradients [S, b, dG, dA] of a chunk.
at::Tensor per_example_grads(const at::Tensor& a, const at::Tensor& g) {
  return at::matmul(g.transpose(-1, -2), a.unsqueeze(0));
}
}  // namespace

at::Tensor projected_second_moment(const LayerStatistics& s, const at::Tensor& q_a, const at::Tensor& q_g,
                                   int64_t chunk_bytes) {
  const double examples = static_cast<double>(s.examples());
  if (s.locations() == 1) {
    // (Q_Gᵀ g)(Q_Aᵀ ā)ᵀ squared elementwise is the outer product of the squares: one product for the batch.
    const auto ap2 = rotate(s.a.squeeze(1), q_a).pow(2);         // [B, dA]
    const auto gp2 = rotate(s.g.squeeze(2), q_g).pow(2).sum(0);  // [B, dG]
    return at::matmul(gp2.t(), ap2).to(accumulation_dtype(s)) / examples;
  }
  // Two orders give Q_Gᵀ ∇ Q_A = (g Q_G)ᵀ ā Q_A per example; take the cheaper one (multiply-adds per example):
  //   rotate both sides first:           T(d_A² + d_G²) + T d_G d_A
  //   rotate g, then per-example (g Q_G)ᵀ ā, then Q_A:   T d_G² + T d_G d_A + d_G d_A²
  // so the second wins exactly when d_G < T (conv layers with more locations than output channels). Both end in
  // one large product; the per-example part is one batched product of [d_G, T]·[T, d_A].
  const int64_t d_g = s.g.size(3), d_a = s.a.size(2);
  const bool gradient_first = d_g < s.locations();
  auto total = at::zeros({d_g, d_a}, s.a.options().dtype(accumulation_dtype(s)));
  for_each_chunk(s, chunk_bytes, [&](const at::Tensor& a, const at::Tensor& g) {
    const auto gq = rotate(g, q_g);  // [S, b, T, dG]
    const auto projected = gradient_first ? rotate(per_example_grads(a, gq), q_a)
                                          : at::matmul(gq.transpose(-1, -2), rotate(a, q_a).unsqueeze(0));
    total.add_(projected.pow_(2).sum(at::IntArrayRef{0, 1}));
  });
  return total / examples;
}

at::Tensor projected_second_moment_per_position(const LayerStatistics& s, const at::Tensor& q_a,
                                                const at::Tensor& q_g) {
  const int64_t d_g = s.g.size(3), d_a = s.a.size(2);
  const auto ap2 = rotate(s.a, q_a).pow(2).reshape({-1, d_a});                            // [B·T, dA]
  const auto gq = rotate(s.g.size(0) == 1 ? s.g.squeeze(0) : s.g, q_g);                   // one sample: nothing to sum
  const auto gp2 = (s.g.size(0) == 1 ? gq.pow(2) : gq.pow(2).sum(0)).reshape({-1, d_g});  // [B·T, dG], samples summed
  // A sample of k of the layer's T positions (statistics_at) stands for all T: each is drawn with probability k/T.
  const double positions = static_cast<double>(s.shared_positions()) / static_cast<double>(s.locations());
  return gp2.t().mm(ap2).to(accumulation_dtype(s)) * (positions / static_cast<double>(s.examples()));
}

at::Tensor gradient_sq_norms(const LayerStatistics& s, int64_t chunk_bytes) {
  if (s.locations() == 1)
    return s.a.squeeze(1).pow(2).sum(1) * s.g.squeeze(2).pow(2).sum(at::IntArrayRef{0, 2});  // ‖ā‖² Σ_s ‖g_s‖²
  std::vector<at::Tensor> norms;
  for_each_chunk(s, chunk_bytes, [&](const at::Tensor& a, const at::Tensor& g) {
    norms.push_back(per_example_grads(a, g).pow_(2).sum(at::IntArrayRef{0, 2, 3}));
  });
  return at::cat(norms);
}

}  // namespace kfac
