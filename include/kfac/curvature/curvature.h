// One layer's curvature approximation: the interface every method (K-FAC, and the variants that follow it)
// implements, and the policy they share.
//
// A Curvature sees only matrices: the expanded statistics of a statistics step and the [d_G, d_A] gradient
// matrix (conventions in kfac/layers/layer_kind.h). It never sees modules, schedules or ranks.
//
//   update(stats, decay)   fold one statistics step into the running estimates (EMA with the given decay)
//   refresh(damping)       the amortized work (eigendecompositions / inverses); on NumericalError it must leave
//                          the previous decomposition intact, so the preconditioner can keep using it. Methods
//                          that list their decompositions (plan_refresh) have them batched across layers
//   precondition(V, λ)     ≈ (F + λI)⁻¹ vec(V), returned as a [d_G, d_A] matrix
//   to_dense()             the undamped approximation of the Fisher block, [d_A·d_G]², column-major vec order
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Optional.h>

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "kfac/layers/layer_statistics.h"
#include "kfac/linalg/batched.h"
#include "kfac/util/archive_fwd.h"
#include "kfac/curvature/curvature_options.h"
#include "kfac/layers/layer_options.h"

namespace kfac {

struct BlockShape {
  int64_t dim_a = 0;  ///< rows of A: inputs (+1 with bias); conv: C_in·k_h·k_w (+1)
  int64_t dim_g = 0;  ///< rows of G: outputs / channels
  int64_t numel() const { return dim_a * dim_g; }
};

/// What a curvature needs to know when it is built: how λ enters, the numerics block and its own blocks. λ itself
/// has one owner, the Preconditioner (set_damping, the quadratic model's adaptation), which passes it to refresh()
/// and precondition().
struct CurvatureContext {
  std::string layer_name;
  BlockShape shape;
  DampingMode damping_mode = DampingMode::Factored;
  NumericsOptions numerics;
  OptionBlocks method_options;       ///< the blocks its registry entry declares (get<EigenCorrectedOptions>())
  at::TensorOptions tensor_options;  ///< device and factor dtype
  LayerOptions layers;               ///< how layer kinds form their blocks (a kind's own curvature reads it)
  std::string method = "kfac";       ///< the method option (a kind's own curvature may follow it)
  WeightSharing weight_sharing = WeightSharing::Expand;  ///< this layer's flavour
  /// The dtype of the statistics products (statistics_precision resolved for the device); unset: the factor dtype.
  c10::optional<at::ScalarType> product_dtype;
};

class Curvature {
 public:
  explicit Curvature(CurvatureContext context);
  virtual ~Curvature() = default;
  Curvature(const Curvature&) = delete;
  Curvature& operator=(const Curvature&) = delete;

  virtual std::string method() const = 0;
  /// How the block is formed, for the registration report ("full", "diagonal"); "" (the default): the layer's
  /// weight-sharing flavour is reported.
  virtual std::string form() const { return ""; }
  /// The factors' sizes and structures for the registration report, e.g. "A 9217 diagonal x G 128".
  virtual std::string structure() const;
  /// Whether a factor side is diagonal because it exceeds the option factor_full_max_dim.
  virtual bool diagonal_by_size() const { return false; }
  /// Folds in one statistics step: new = decay·old + (1 − decay)·batch.
  virtual void update(const LayerStatistics& stats, double decay) = 0;
  /// Told by the preconditioner before update(): whether a scheduled refresh follows in the same step. A method
  /// whose refresh overwrites part of what update() would compute (EKFAC's spectrum under reset_spectrum) skips
  /// that part; should the refresh fail, that one update of it is missing (and the failure is reported).
  void set_refresh_follows(bool follows) { refresh_follows_ = follows; }
  /// Whether update() may be given a sample of the shared positions (option stats_positions): true where the
  /// statistics are means over positions, so that a uniform sample estimates them without bias.
  virtual bool takes_sampled_positions() const { return false; }
  /// Recomputes the decompositions. Throws NumericalError and keeps the previous state on failure.
  virtual void refresh(double damping) = 0;
  /// A refresh in two halves, so that the refresh executor can decompose the factors of every due layer together
  /// (linalg::decompose batches the same-shaped ones): plan_refresh lists the decompositions refresh() needs, and
  /// finish_refresh completes the refresh from them, throwing the NumericalError of a failed one with the state
  /// untouched. The default plans nothing and finishes by refresh().
  virtual std::vector<linalg::FactorRequest> plan_refresh(double /*damping*/) { return {}; }
  virtual void finish_refresh(std::vector<linalg::FactorRequest>& /*decomposed*/, double damping) { refresh(damping); }
  /// The undamped approximate Fisher block in column-major vec order.
  virtual at::Tensor to_dense() const = 0;
  virtual int64_t memory_bytes() const;
  /// The unit eigenvector of the approximate block with the smallest eigenvalue, as a [d_G, d_A] matrix (the
  /// spectral coarse space). The default decomposes to_dense(); Kronecker methods use their factors as of the last
  /// refresh (so the vector changes with the decompositions, not at every statistics update).
  virtual at::Tensor lowest_mode() const;

  /// The block as K-FAC's factored damping forms it, (A + π√λ I) ⊗ (G + √λ/π I): the running factors and π;
  /// nullopt for a block of another form. What a stage coupling layers through their damped factors reads
  /// (block-tridiagonal K-FAC).
  struct FactoredDamping {
    at::Tensor a, g;
    double pi = 1;
  };
  virtual c10::optional<FactoredDamping> factored_damping() const { return c10::nullopt; }

  /// ≈ (F + λI)⁻¹ vec(V) as a [d_G, d_A] matrix. Before the first successful refresh: V / λ (reported by the
  /// preconditioner as a fallback). Throws if no statistics were ever seen.
  at::Tensor precondition(const at::Tensor& grad_matrix, double damping) const;

  bool has_statistics() const { return updates_ > 0; }
  bool ready() const { return ready_; }
  int64_t locations() const { return locations_; }
  const std::string& layer_name() const { return context_.layer_name; }
  const BlockShape& shape() const { return context_.shape; }
  /// Device and dtype of factors and decompositions.
  const at::TensorOptions& tensor_options() const { return context_.tensor_options; }
  /// Dtype of factors and decompositions.
  at::ScalarType dtype() const { return c10::typeMetaToScalarType(context_.tensor_options.dtype()); }

  void save(torch::serialize::OutputArchive& archive) const;
  void load(torch::serialize::InputArchive& archive);

  // Distribution (kfac/distributed/): what ranks average and what an owner rank sends after a refresh.
  /// The running statistics, each with whether it is a symmetric matrix. They are linear in the data, so their
  /// mean over ranks equals the statistics of the ranks' batches together. Empty (the default): not distributable.
  virtual std::vector<std::pair<at::Tensor*, bool>> running_statistics() { return {}; }
  /// What a refresh writes (sent by the owner rank, adopted from a background copy). The default: every state
  /// tensor that is not a running statistic; a method whose refresh also rewrites a running statistic (EKFAC's
  /// spectrum reset) adds it.
  virtual std::vector<at::Tensor*> refreshed_state();
  /// Marks a decomposition received from the owner rank as usable.
  void adopt_refresh() { mark_ready(); }

  // Background refresh (src/preconditioner/background_refresh.h): a copy is refreshed off the critical path, then adopted.
  /// The context this curvature was built with.
  const CurvatureContext& context() const { return context_; }
  /// A fresh curvature of the same type and context (no state). The default: make_curvature(context().method, ...).
  virtual std::unique_ptr<Curvature> make_twin() const;
  /// Makes this curvature a deep copy of `other`'s state (same method and shape).
  void copy_state_from(const Curvature& other);
  /// Takes the refreshed state (refreshed_state()) of `copy`, a copy_state_from twin refreshed since, and marks the
  /// decomposition usable. The running statistics stay this curvature's own.
  void adopt_refresh_from(Curvature& copy);

 protected:
  virtual at::Tensor precondition_impl(const at::Tensor& grad_matrix, double damping) const = 0;
  /// Every tensor of the method's state, by name, for checkpoints (undefined tensors are skipped).
  virtual std::vector<std::pair<std::string, at::Tensor*>> state_tensors() = 0;
  /// Columns of the expanded inputs LayerStatistics::a (d_A for the Kronecker kinds).
  virtual int64_t input_width() const { return shape().dim_a; }
  /// The statistics with a and g in the dtype of the products (statistics_precision); as given when that is theirs.
  LayerStatistics in_product_dtype(const LayerStatistics& stats) const;
  /// Records the statistics step's geometry and counts it; methods call this from update().
  void note_update(const LayerStatistics& stats);
  /// refresh() of a method that plans: plan_refresh, linalg::decompose, finish_refresh.
  void refresh_by_plan(double damping);
  void mark_ready() { ready_ = true, ++refreshes_; }
  std::string what(const std::string& part) const;  ///< "factor A of layer 'fc1'" for messages

  CurvatureContext context_;
  int64_t locations_ = 1;
  int64_t updates_ = 0;
  int64_t refreshes_ = 0;  ///< successful refreshes (in this process), keys caches of decomposition-derived values
  bool ready_ = false;
  bool refresh_follows_ = false;  ///< set_refresh_follows
};

}  // namespace kfac
