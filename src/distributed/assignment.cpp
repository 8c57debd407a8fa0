#include "distributed/assignment.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "kfac/errors.h"

namespace kfac {

std::vector<int> assign_owners(const std::vector<double>& costs, int ranks) {
  KFAC_CHECK(ranks >= 1, "assign_owners: the number of ranks must be >= 1, got ", ranks);
  std::vector<size_t> order(costs.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return costs[a] > costs[b]; });
  std::vector<double> load(static_cast<size_t>(ranks), 0.0);
  std::vector<int> owner(costs.size(), 0);
  for (size_t layer : order) {
    const auto least = std::min_element(load.begin(), load.end()) - load.begin();  // first minimum: lowest rank
    owner[layer] = static_cast<int>(least);
    load[static_cast<size_t>(least)] += costs[layer];
  }
  return owner;
}

double refresh_cost(int64_t dim_a, int64_t dim_g) {
  return std::pow(static_cast<double>(dim_a), 3) + std::pow(static_cast<double>(dim_g), 3);
}

std::vector<int> gradient_workers(int owner, int ranks, double fraction) {
  KFAC_CHECK(fraction > 0 && fraction <= 1, "grad_worker_fraction must be in (0, 1], got ", fraction);
  const int k = std::clamp(static_cast<int>(std::lround(fraction * ranks)), 1, ranks);
  std::vector<int> workers;
  workers.reserve(static_cast<size_t>(k));
  for (int i = 0; i < k; ++i) workers.push_back((owner + i) % ranks);
  return workers;
}

}  // namespace kfac
