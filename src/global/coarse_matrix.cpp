#include "global/coarse_matrix.h"

#include <ATen/ATen.h>

#include "kfac/distributed/collectives.h"

#include <algorithm>
#include <map>
#include <utility>

namespace kfac {

at::Tensor restrict_to_coarse(const CoarseBasis& basis, const std::vector<at::Tensor>& x) {
  std::vector<at::Tensor> out;
  for (const auto& r : basis)
    out.push_back((r.matrix * x.at(r.layer).to(r.matrix.scalar_type())).sum().to(at::kDouble));
  return at::stack(out);
}

std::vector<at::Tensor> prolong(const CoarseBasis& basis, const at::Tensor& y, const std::vector<at::Tensor>& like) {
  std::vector<at::Tensor> out;
  out.reserve(like.size());
  for (const auto& t : like) out.push_back(at::zeros_like(t));
  for (size_t k = 0; k < basis.size(); ++k) {
    auto& o = out.at(basis[k].layer);
    o.add_(basis[k].matrix.to(o.scalar_type()) * y[static_cast<int64_t>(k)].to(o.scalar_type()));
  }
  return out;
}

at::Tensor exact_coarse_matrix(const CapturedFisher& fisher, const CoarseBasis& basis) {
  std::vector<at::Tensor> columns;  // U[sb, k] = ⟨r_k, ∇_sb⟩
  for (const auto& r : basis) columns.push_back(fisher.project(r.layer, r.matrix).reshape({-1}).to(at::kDouble));
  const auto u = at::stack(columns, 1);
  return u.t().mm(u) / static_cast<double>(fisher.examples());
}

LayerStatistics downsample(const LayerStatistics& s, std::array<int64_t, 2> grid) {
  if (grid == s.grid) return s;
  auto pick = [](int64_t from, int64_t to, const at::TensorOptions& o) {
    return (at::arange(to, o.dtype(at::kLong)) * from).div(to, "floor");
  };
  const int64_t h = s.grid[0], w = s.grid[1];  // not a structured binding: lambdas cannot capture those in C++17
  const auto ih = pick(h, grid[0], s.a.options()), iw = pick(w, grid[1], s.a.options());
  auto on_grid = [&](const at::Tensor& t) {  // [..., T, d] → [..., T', d]
    auto sizes = t.sizes().vec();
    const int64_t d = sizes.back();
    sizes.pop_back();
    sizes.back() = h;
    sizes.push_back(w);
    sizes.push_back(d);
    const auto x = t.reshape(sizes).index_select(-3, ih).index_select(-2, iw);
    sizes[sizes.size() - 3] = grid[0] * grid[1];
    sizes.erase(sizes.end() - 2);
    return x.reshape(sizes);
  };
  return LayerStatistics{on_grid(s.a), on_grid(s.g), grid};
}

namespace {
std::array<int64_t, 2> common_grid(const LayerStatistics& i, const LayerStatistics& j) {
  return {std::min(i.grid[0], j.grid[0]), std::min(i.grid[1], j.grid[1])};
}
}  // namespace

CrossFactors cross_factors(const LayerStatistics& si, const LayerStatistics& sj) {
  const auto grid = common_grid(si, sj);
  const auto i = downsample(si, grid), j = downsample(sj, grid);
  const double rows = static_cast<double>(i.examples() * i.locations());
  const auto ai = i.a.reshape({-1, i.a.size(-1)}), aj = j.a.reshape({-1, j.a.size(-1)});
  const auto gi = i.g.reshape({-1, i.g.size(-1)}), gj = j.g.reshape({-1, j.g.size(-1)});
  return {ai.t().mm(aj) / rows, gi.t().mm(gj) / rows, i.locations()};
}

at::Tensor kronecker_coarse_matrix(const CapturedFisher& fisher, const CoarseBasis& basis, Communicator& comm) {
  const int64_t k = static_cast<int64_t>(basis.size());
  // Rank-one vectors: the per-example, per-location scalars ā·v and g·u, formed once per vector on the layer's own
  // grid (downsampling these maps is cheaper than downsampling the statistics for every pair).
  std::vector<LayerStatistics> scalars(basis.size());
  for (size_t p = 0; p < basis.size(); ++p) {
    if (!basis[p].rank_one()) continue;
    const auto& s = fisher.statistics(basis[p].layer);
    scalars[p] = {at::matmul(s.a, basis[p].right).unsqueeze(-1), at::matmul(s.g, basis[p].left).unsqueeze(-1), s.grid};
  }
  // Each entry is a product of two means over the batch, one of inputs and one of output gradients: the means are
  // formed first and averaged over the ranks' shards, so that a distributed run forms the whole batch's matrix.
  struct Entry {
    int64_t p, q, locations;
    at::Tensor mean_a, mean_g;  // scalars (rank-one pair) or the cross factors Ā_ij, G_ij
  };
  std::vector<Entry> entries;
  std::map<std::pair<size_t, size_t>, size_t> cross;  // per layer pair, formed once: index of its first entry
  std::vector<at::Tensor> means;
  for (int64_t p = 0; p < k; ++p) {
    for (int64_t q = p; q < k; ++q) {
      const auto& rp = basis[p];
      const auto& rq = basis[q];
      if (rp.rank_one() && rq.rank_one()) {
        const auto grid = common_grid(scalars[p], scalars[q]);
        const auto i = downsample(scalars[p], grid), j = downsample(scalars[q], grid);
        const double rows = static_cast<double>(i.examples() * i.locations());
        entries.push_back({p, q, i.locations(), (i.a * j.a).sum() / rows, (i.g * j.g).sum() / rows});
      } else {
        const auto key = std::make_pair(rp.layer, rq.layer);
        if (!cross.count(key)) {
          const auto c = cross_factors(fisher.statistics(rp.layer), fisher.statistics(rq.layer));
          cross[key] = entries.size();
          entries.push_back({p, q, c.locations, c.a, c.g});
        } else {
          const auto& first = entries[cross[key]];
          entries.push_back({p, q, first.locations, first.mean_a, first.mean_g});
          continue;  // shares the tensors of the first entry of its pair
        }
      }
      means.push_back(entries.back().mean_a);
      means.push_back(entries.back().mean_g);
    }
  }
  all_reduce_mean(comm, means);  // in place; a no-op with one process
  auto fc = at::zeros({k, k}, at::kDouble);
  for (const auto& e : entries) {
    const auto& rp = basis[e.p];
    const auto& rq = basis[e.q];
    const auto entry = rp.rank_one() && rq.rank_one() ? e.mean_a * e.mean_g * static_cast<double>(e.locations)
                                                      : (rp.matrix * e.mean_g.mm(rq.matrix).mm(e.mean_a.t())).sum() *
                                                            static_cast<double>(e.locations);
    fc[e.p][e.q] = entry.to(at::kDouble);
    fc[e.q][e.p] = fc[e.p][e.q];
  }
  return fc;
}

}  // namespace kfac
