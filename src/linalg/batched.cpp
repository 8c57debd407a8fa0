#include "kfac/linalg/batched.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <map>
#include <tuple>

#include "kfac/errors.h"
#include "kfac/linalg/factor.h"
#include "linalg/one_thread.h"

namespace kfac::linalg {

FactorRequest FactorRequest::eig_of(const at::Tensor& factor, const std::string& what, double floor,
                                    const at::Tensor& basis, int64_t iterations) {
  FactorRequest r;
  r.kind = Kind::Eig, r.factor = factor, r.what = what, r.floor = floor, r.basis = basis, r.iterations = iterations;
  return r;
}

FactorRequest FactorRequest::damped_inverse_of(const at::Tensor& factor, double shift, bool cholesky, double floor,
                                               const std::string& what) {
  FactorRequest r;
  r.kind = Kind::DampedInverse, r.factor = factor, r.what = what, r.floor = floor, r.shift = shift;
  r.cholesky = cholesky;
  return r;
}

namespace {

// The one-factor path: the functions of factor.h, their NumericalError kept as the request's error.
void decompose_one(FactorRequest& r) {
  try {
    if (r.kind == FactorRequest::Kind::Eig)
      r.eig = factor_eig_refined(r.factor, r.basis, r.iterations, r.what, r.floor);
    else
      r.inverse = factor_damped_inverse(r.factor, r.shift, r.cholesky, r.floor, r.what);
  } catch (const NumericalError& e) {
    r.error = e.what();
  }
}

// What a batch of same-shaped full factors computes (a diagonal factor needs no decomposition and goes alone).
enum class Operation { Eigh, Cholesky, Refine };

Operation operation(const FactorRequest& r) {
  if (r.kind == FactorRequest::Kind::DampedInverse) return r.cholesky ? Operation::Cholesky : Operation::Eigh;
  return r.iterations > 0 && r.basis.defined() ? Operation::Refine : Operation::Eigh;
}

// Eigendecompositions, and damped inverses from them, of a stack of finite symmetrized factors.
void eigh_batch(const std::vector<FactorRequest*>& group, const at::Tensor& sym) {
  auto [values, vectors] = at::linalg_eigh(sym);
  values.clamp_min_(group.front()->floor);  // one floor per group
  at::Tensor inverses;
  if (std::any_of(group.begin(), group.end(), [](auto* r) { return r->kind == FactorRequest::Kind::DampedInverse; })) {
    std::vector<double> shifts;
    for (const auto* r : group) shifts.push_back(r->kind == FactorRequest::Kind::DampedInverse ? r->shift : 0.0);
    const auto shift = at::tensor(shifts, at::dtype(at::kDouble)).to(values.options()).unsqueeze(1);
    inverses = at::matmul(vectors * (1.0 / (values + shift)).unsqueeze(1), vectors.transpose(1, 2));
  }
  // Each result is its own tensor, not a view of the batch (a checkpoint would save the whole batch with it).
  for (size_t k = 0; k < group.size(); ++k) {
    auto& r = *group[k];
    const auto i = static_cast<int64_t>(k);
    if (r.kind == FactorRequest::Kind::Eig)
      r.eig = {values[i].clone(), vectors[i].clone()};
    else
      r.inverse = inverses[i].clone();
  }
}

// Damped inverses by Cholesky (the upper factor, as cholesky_inverse_psd: see psd.h); a factor whose Cholesky fails
// goes alone, for the float64 retry.
void cholesky_batch(const std::vector<FactorRequest*>& group, const at::Tensor& sym) {
  std::vector<double> shifts;
  for (const auto* r : group) shifts.push_back(r->shift);
  const int64_t n = sym.size(-1);
  const auto shift = at::tensor(shifts, at::dtype(at::kDouble)).to(sym.options()).view({-1, 1, 1});
  const auto [upper, info] = at::linalg_cholesky_ex(sym + shift * at::eye(n, sym.options()), /*upper=*/true);
  const auto failed = info.ne(0).cpu();
  const auto inverses = at::cholesky_inverse(upper, /*upper=*/true);
  for (size_t k = 0; k < group.size(); ++k) {
    const auto i = static_cast<int64_t>(k);
    if (failed.data_ptr<bool>()[i])
      decompose_one(*group[k]);
    else
      group[k]->inverse = inverses[i].clone();
  }
}

// Eigenbases refined as factor_eig_refined refines one (psd.h, refine_eigenbasis): per iteration one batched product,
// the columns of each sorted by their Rayleigh quotients, one batched QR, each column put back in the place of the
// one it continues. The factors as given (the single path does not symmetrize them either).
void refine_batch(const std::vector<FactorRequest*>& group, const at::Tensor& factors) {
  std::vector<at::Tensor> bases;
  for (const auto* r : group) bases.push_back(r->basis);
  auto basis = at::stack(bases).to(factors.scalar_type());
  for (int64_t i = 0; i < group.front()->iterations; ++i) {
    const auto mq = at::matmul(factors, basis);
    const auto order = at::argsort((basis * mq).sum(1), /*dim=*/1, /*descending=*/true);
    const auto columns = order.unsqueeze(1).expand_as(mq);
    auto [vectors, r] = at::linalg_qr(mq.gather(2, columns));
    basis = at::empty_like(vectors).scatter_(2, columns, vectors);
  }
  const auto values = (basis * at::matmul(factors, basis)).sum(1).clamp_min_(group.front()->floor);
  for (size_t k = 0; k < group.size(); ++k) {
    const auto i = static_cast<int64_t>(k);
    group[k]->eig = {values[i].clone(), basis[i].clone()};
  }
}

void decompose_group(const std::vector<FactorRequest*>& group) {
  std::vector<at::Tensor> factors;
  for (const auto* r : group) factors.push_back(r->factor);
  const auto stack = at::stack(factors);
  // One host read for the group; a non-finite factor goes alone, whose check names it.
  const auto finite = at::isfinite(stack).flatten(1).all(1).cpu();
  std::vector<FactorRequest*> members;
  std::vector<int64_t> rows;
  for (size_t k = 0; k < group.size(); ++k) {
    if (finite.data_ptr<bool>()[k])
      members.push_back(group[k]), rows.push_back(static_cast<int64_t>(k));
    else
      decompose_one(*group[k]);
  }
  if (members.size() < 2) {
    for (auto* r : members) decompose_one(*r);
    return;
  }
  auto part = members.size() == group.size() ? stack
                                             : stack.index_select(0, at::tensor(rows, at::kLong).to(stack.device()));
  try {
    const auto op = operation(*members.front());
    if (op == Operation::Refine) {
      refine_batch(members, part);
    } else {
      const auto sym = (part + part.transpose(1, 2)) * 0.5;
      op == Operation::Cholesky ? cholesky_batch(members, sym) : eigh_batch(members, sym);
    }
  } catch (const c10::Error&) {
    for (auto* r : members) decompose_one(*r);  // the single path retries in float64 and names the factor
  }
}

void decompose_batched(const std::vector<FactorRequest*>& requests) {
  // Batches of the same operation (and refinement iterations), size, dtype, device and floor; the order inside
  // each is the requests' order.
  using Key = std::tuple<Operation, int64_t, int64_t, int, std::string, double>;
  std::map<Key, std::vector<FactorRequest*>> groups;
  for (auto* r : requests) {
    if (is_diagonal_factor(r->factor)) {
      decompose_one(*r);
      continue;
    }
    const auto op = operation(*r);
    groups[Key{op, op == Operation::Refine ? r->iterations : 0, r->factor.size(0),
               static_cast<int>(r->factor.scalar_type()), r->factor.device().str(), r->floor}]
        .push_back(r);
  }
  for (auto& [key, group] : groups) {
    if (group.size() == 1)
      decompose_one(*group.front());
    else
      decompose_group(group);
  }
}

void decompose_sequentially(const std::vector<FactorRequest*>& requests) {
  for (auto* r : requests) decompose_one(*r);
}

// Factors of up to kOneThreadMaxRows rows go one by one on one thread (one_thread.h: eigh of 65 x 65 0.18 against 1.2
// ms on two, QR of 128 x 128 0.33 against 1.2 ms; a char-lm refresh of 42 factors of 64 to 129 rows 8-11 against 19
// ms), the larger ones after them with every thread.
void decompose_on_cpu(const std::vector<FactorRequest*>& requests) {
  std::vector<FactorRequest*> small, large;
  for (auto* r : requests) (r->factor.size(0) <= kOneThreadMaxRows ? small : large).push_back(r);
  {
    const OneThread one;
    decompose_sequentially(small);
  }
  decompose_sequentially(large);
}

}  // namespace

void decompose(const std::vector<FactorRequest*>& requests, DecomposeStrategy strategy) {
  for (auto* r : requests) r->error.clear();
  if (strategy == DecomposeStrategy::Auto) {
    const bool cpu = std::all_of(requests.begin(), requests.end(), [](auto* r) { return r->factor.is_cpu(); });
    strategy = cpu ? DecomposeStrategy::Sequential : DecomposeStrategy::Batched;
  }
  // The test seam counts single attempts, in order.
  if (testing::pending_decomposition_failures() > 0)
    decompose_sequentially(requests);
  else if (strategy == DecomposeStrategy::Sequential)
    decompose_on_cpu(requests);
  else
    decompose_batched(requests);
}

void decompose(std::vector<FactorRequest>& requests, DecomposeStrategy strategy) {
  std::vector<FactorRequest*> pointers;
  for (auto& r : requests) pointers.push_back(&r);
  decompose(pointers, strategy);
}

void throw_if_failed(const std::vector<FactorRequest>& requests) {
  for (const auto& r : requests)
    if (!r.error.empty()) throw NumericalError(r.error);
}

}  // namespace kfac::linalg
