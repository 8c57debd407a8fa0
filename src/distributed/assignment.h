// Which rank does each layer's amortized work (decompositions), KAISA-style: a pure, deterministic function of the
// layers' costs and the number of ranks, so every rank computes the same assignment without communicating.
#pragma once

#include <cstdint>
#include <vector>

namespace kfac {

/// Greedy longest-processing-time: layers by decreasing cost (ties: lower index first) each go to the rank with the
/// least assigned cost so far (ties: lower rank). The makespan is at most 4/3 of the optimum. More ranks than
/// layers leaves ranks idle.
std::vector<int> assign_owners(const std::vector<double>& costs, int ranks);

/// The cost model of one layer's refresh: eigendecompositions of a d_A and a d_G square matrix, ∝ d_A³ + d_G³.
double refresh_cost(int64_t dim_a, int64_t dim_g);

/// KAISA's gradient workers: the ranks that hold layer's decompositions and precondition its gradient, the owner
/// and the next k − 1 ranks, k = max(1, round(fraction · ranks)). fraction = 1/ranks is memory-optimal (owner only),
/// 1 is communication-optimal (every rank).
std::vector<int> gradient_workers(int owner, int ranks, double fraction);

}  // namespace kfac
