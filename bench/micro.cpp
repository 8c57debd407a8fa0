// Microbenchmarks of K-FAC's kernels next to a plain matrix product of the same size, measured in the same run.
//   build/bench/kfac_micro --benchmark_counters_tabular=true
// Each benchmark reports GFLOP/s ("flops" counter, a rate) so kernels can be compared with BM_Matmul.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <benchmark/benchmark.h>

#include <thread>

#include "kfac/curvature/curvature.h"
#include "kfac/curvature/kfac_curvature.h"
#include "kfac/curvature/per_example.h"
#include "kfac/linalg/batched.h"
#include "kfac/linalg/factor.h"
#include "kfac/linalg/psd.h"
#include "kfac/runtime/setup.h"

namespace {

constexpr int64_t kRows = 1000;  // examples per statistics step (the autoencoder's batch)

at::Tensor spd(int64_t n) {
  auto x = at::randn({2 * n, n});
  return x.t().mm(x) / (2.0 * n) + 1e-3 * at::eye(n);
}

void report(benchmark::State& state, double flops_per_iteration) {
  state.counters["flops"] = benchmark::Counter(flops_per_iteration, benchmark::Counter::kIsIterationInvariantRate,
                                               benchmark::Counter::kIs1000);
}

// Reference: an n×n by n×n product (2n³ flops).
void BM_Matmul(benchmark::State& state) {
  const int64_t n = state.range(0);
  auto a = at::randn({n, n}), b = at::randn({n, n}), c = at::empty({n, n});
  for (auto _ : state) at::mm_out(c, a, b);
  report(state, 2.0 * n * n * n);
}

// Diagnostics for the gap between the kernels and BM_Matmul: an allocating product, and a transposed operand.
void BM_MatmulAllocating(benchmark::State& state) {
  const int64_t n = state.range(0);
  auto a = at::randn({n, n}), b = at::randn({n, n});
  for (auto _ : state) benchmark::DoNotOptimize(at::mm(a, b));
  report(state, 2.0 * n * n * n);
}
void BM_MatmulTransposed(benchmark::State& state) {
  const int64_t n = state.range(0);
  auto a = at::randn({n, n}), b = at::randn({n, n}), c = at::empty({n, n});
  for (auto _ : state) at::mm_out(c, a.t(), b);
  report(state, 2.0 * n * n * n);
}

void BM_FactorUpdateViaMm(benchmark::State& state) {
  const int64_t n = state.range(0);
  auto x = at::randn({kRows, n}), f = at::zeros({n, n}), t = at::empty({n, n});
  for (auto _ : state) {
    at::mm_out(t, x.t(), x);
    f.mul_(0.95).add_(t, 0.05 / kRows);
  }
  report(state, 2.0 * kRows * n * n);
}
void BM_MmOfProduct(benchmark::State& state) {
  const int64_t n = state.range(0);
  auto a = at::randn({n, n}), b = at::randn({n, n}), v = at::randn({n, n});
  auto av = a.mm(v);
  for (auto _ : state) benchmark::DoNotOptimize(av.mm(b));
  report(state, 2.0 * n * n * n);
}
void BM_ChainMm(benchmark::State& state) {
  const int64_t n = state.range(0);
  auto a = at::randn({n, n}), b = at::randn({n, n}), v = at::randn({n, n});
  for (auto _ : state) benchmark::DoNotOptimize(a.mm(v).mm(b));
  report(state, 4.0 * n * n * n);
}

// Factor statistics update: F ← εF + (1−ε) XᵀX/rows for X of kRows × n (2·rows·n² flops).
void BM_FactorUpdate(benchmark::State& state) {
  const int64_t n = state.range(0);
  auto x = at::randn({kRows, n}), f = at::zeros({n, n});
  for (auto _ : state) f.addmm_(x.t(), x, 0.95, 0.05 / kRows);
  report(state, 2.0 * kRows * n * n);
}

// The library's factor update: blocked Gram update (3/4 of the multiply-adds from n = 512), reported against the
// full product's flops so that its GFLOP/s is comparable with BM_FactorUpdate.
void BM_GramUpdate(benchmark::State& state) {
  const int64_t n = state.range(0);
  auto x = at::randn({kRows, n}), f = at::zeros({n, n});
  for (auto _ : state) kfac::linalg::gram_update_(f, x, 0.95, 0.05 / kRows);
  report(state, 2.0 * kRows * n * n);
}

// The statistics shapes of the papers' models, where rows ≠ 1000: conv2 of the CNN (128·121 patch rows of
// width 289, output gradients 64 wide), conv1 (128·676 rows of width 10 and 32), fc1 (128 rows of width 1601). Plain product against the Gram update at several
// min-block widths (third argument; 100000 = no split).
void BM_FactorUpdateShaped(benchmark::State& state) {
  const int64_t n = state.range(0), rows = state.range(1);
  auto x = at::randn({rows, n}), f = at::zeros({n, n});
  for (auto _ : state) f.addmm_(x.t(), x, 0.95, 0.05 / rows);
  report(state, 2.0 * rows * n * n);
}
void BM_GramUpdateShaped(benchmark::State& state) {
  const int64_t n = state.range(0), rows = state.range(1);
  kfac::linalg::set_gram_min_block(state.range(2));
  auto x = at::randn({rows, n}), f = at::zeros({n, n});
  for (auto _ : state) kfac::linalg::gram_update_(f, x, 0.95, 0.05 / rows);
  kfac::linalg::set_gram_min_block(256);
  report(state, 2.0 * rows * n * n);
}

// EKFAC's projected second moments for the CNN's conv2 statistics (128 examples, 121 locations, d_A 289, d_G 64),
// reported against the multiply-adds of the order it uses (T d_G² + T d_G d_A + d_G d_A² per example).
void BM_ProjectedSecondMomentConv(benchmark::State& state) {
  const int64_t b = 128, t = 121, da = 289, dg = 64;
  kfac::LayerStatistics s{at::randn({b, t, da}), at::randn({1, b, t, dg}), {11, 11}};
  const auto q_a = std::get<0>(at::linalg_qr(at::randn({da, da}))),
             q_g = std::get<0>(at::linalg_qr(at::randn({dg, dg})));
  for (auto _ : state) benchmark::DoNotOptimize(kfac::projected_second_moment(s, q_a, q_g));
  report(state, 2.0 * b * (t * dg * dg + t * dg * da + dg * da * da));
}

// Symmetric eigendecomposition (reported against the ~9n³ flops of a tridiagonal-QR eigensolver).
void BM_Eigh(benchmark::State& state) {
  const int64_t n = state.range(0);
  auto m = spd(n);
  for (auto _ : state) benchmark::DoNotOptimize(kfac::linalg::eigh_psd(m, "bench"));
  report(state, 9.0 * n * n * n);
}

// Damped inverse by Cholesky: factorization n³/3 + inverse 2n³/3... ~n³ flops.
void BM_CholeskyInverse(benchmark::State& state) {
  const int64_t n = state.range(0);
  auto m = spd(n);
  for (auto _ : state) benchmark::DoNotOptimize(kfac::linalg::cholesky_inverse_psd(m, 1e-3, "bench"));
  report(state, 1.0 * n * n * n);
}

// Preconditioning an n×n gradient through the layer's curvature (factored: 2 products, 4n³ flops; eigen: 4
// products, 8n³ flops).
// A refresh's decompositions (kfac/linalg/batched.h) for a transformer block's factors: 12 of side 65 (width 64 +
// bias) and 4 of side 257 (the MLP's 256 + bias), as the tool's char-lm and vit have. Arg "how": 0 one after the
// other by the one-factor functions, 1 batched by shape (a GPU's default), 2 decompose()'s sequential strategy (the
// CPU's default); "eigh": eigendecompositions (1) or Cholesky inverses (0).
void BM_RefreshFactors(benchmark::State& state) {
  const int64_t how = state.range(0);
  const bool eig = state.range(1) == 1;
  std::vector<at::Tensor> factors;
  for (int k = 0; k < 16; ++k) factors.push_back(spd(k < 12 ? 65 : 257));
  for (auto _ : state) {
    std::vector<kfac::linalg::FactorRequest> requests;
    for (const auto& f : factors)
      requests.push_back(eig ? kfac::linalg::FactorRequest::eig_of(f, "f", 0)
                             : kfac::linalg::FactorRequest::damped_inverse_of(f, 1e-3, true, 0, "f"));
    if (how == 0) {
      for (auto& r : requests)
        r.eig = eig ? kfac::linalg::factor_eig(r.factor, "f", 0)
                    : kfac::linalg::SymEig{kfac::linalg::factor_damped_inverse(r.factor, 1e-3, true, 0, "f"), {}};
    } else {
      kfac::linalg::decompose(requests, how == 1 ? kfac::linalg::DecomposeStrategy::Batched
                                                 : kfac::linalg::DecomposeStrategy::Sequential);
    }
    benchmark::DoNotOptimize(requests.back().eig.values);
  }
}

void precondition(benchmark::State& state, kfac::DampingMode mode) {
  const int64_t n = state.range(0);
  kfac::CurvatureContext ctx;
  ctx.layer_name = "bench", ctx.shape = {n, n}, ctx.damping_mode = mode;
  ctx.tensor_options = at::TensorOptions().dtype(at::kFloat);
  kfac::KfacCurvature c(ctx);
  kfac::LayerStatistics s{at::randn({kRows, 1, n}), at::randn({1, kRows, 1, n})};
  c.update(s, 0.0);
  c.refresh(1e-3);
  auto v = at::randn({n, n});
  for (auto _ : state) benchmark::DoNotOptimize(c.precondition(v, 1e-3));
  report(state, (mode == kfac::DampingMode::Factored ? 4.0 : 8.0) * n * n * n);
}
void BM_PreconditionFactored(benchmark::State& state) { precondition(state, kfac::DampingMode::Factored); }
void BM_PreconditionEigen(benchmark::State& state) { precondition(state, kfac::DampingMode::Eigen); }

}  // namespace

#define KFAC_SIZES ->Arg(32)->Arg(128)->Arg(512)->Arg(1024)->Arg(2048)->Unit(benchmark::kMillisecond)
BENCHMARK(BM_Matmul) KFAC_SIZES;
BENCHMARK(BM_MatmulAllocating) KFAC_SIZES;
BENCHMARK(BM_MatmulTransposed) KFAC_SIZES;
BENCHMARK(BM_FactorUpdate) KFAC_SIZES;
BENCHMARK(BM_GramUpdate) KFAC_SIZES;
BENCHMARK(BM_FactorUpdateShaped)
    ->Args({289, 15488, 0})
    ->Args({1601, 128, 0})
    ->Args({1001, 1000, 0})
    ->Args({10, 86528, 0})
    ->Args({32, 86528, 0})
    ->Args({64, 15488, 0});
BENCHMARK(BM_GramUpdateShaped)
    ->ArgsProduct({{289}, {15488}, {64, 128, 100000}})
    ->ArgsProduct({{1601}, {128}, {128, 256, 512, 100000}})
    ->ArgsProduct({{1001}, {1000}, {128, 256, 512}})
    ->Args({10, 86528, 256})
    ->Args({32, 86528, 256})
    ->Args({64, 15488, 256});
BENCHMARK(BM_FactorUpdateViaMm) KFAC_SIZES;
BENCHMARK(BM_ChainMm) KFAC_SIZES;
BENCHMARK(BM_MmOfProduct) KFAC_SIZES;
BENCHMARK(BM_PreconditionFactored) KFAC_SIZES;
BENCHMARK(BM_PreconditionEigen) KFAC_SIZES;
BENCHMARK(BM_CholeskyInverse) KFAC_SIZES;
BENCHMARK(BM_Eigh) KFAC_SIZES;
BENCHMARK(BM_ProjectedSecondMomentConv)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_RefreshFactors)
    ->ArgsProduct({{0, 1, 2}, {0, 1}})
    ->ArgNames({"how", "eigh"})
    ->Unit(benchmark::kMillisecond);

int main(int argc, char** argv) {
  // As the kfac tool does: the best BLAS kernel (relaunching once if OpenBLAS fell back), every available core
  // (LibTorch's default would leave OpenBLAS on one thread here), subnormals flushed. The header says what ran.
  const auto rt = kfac::runtime::configure_runtime({}, argv);
  benchmark::AddCustomContext("blas", rt.blas.library + " " + rt.blas.config);
  benchmark::AddCustomContext("blas_kernel", rt.blas.kernel.empty() ? "unknown" : rt.blas.kernel);
  benchmark::AddCustomContext("threads", "intra-op " + std::to_string(rt.threads.intra_op) + ", BLAS " +
                                             std::to_string(rt.blas.threads));
  benchmark::AddCustomContext("subnormals", rt.flush_denormal ? "flushed" : "kept");
  for (const auto& w : rt.warnings) benchmark::AddCustomContext("warning_" + w.id, w.what);
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  return 0;
}
