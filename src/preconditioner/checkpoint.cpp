// Checkpoints of the preconditioner (docs/design.md §7): format version, counters, per-layer curvature state keyed
// by layer name, the captured statistics batch, the fallback's state, the global stage and a background refresh's
// results (waited for).
#include <ATen/ATen.h>
#include <torch/serialize/archive.h>

#include <algorithm>
#include <map>

#include "preconditioner/background_refresh.h"
#include "preconditioner/fallback.h"
#include "preconditioner/refresh_executor.h"
#include "preconditioner/schedule.h"
#include "preconditioner/statistics_pass.h"
#include "kfac/curvature/registry.h"
#include "kfac/distributed/placement.h"
#include "kfac/errors.h"
#include "util/text.h"
#include "kfac/global/global_stage.h"
#include "kfac/preconditioner/preconditioner.h"
#include "util/serialize.h"

namespace kfac {

namespace {
constexpr int64_t kFormatVersion = 1;

// The options recorded by save() that differ from `now` (none for checkpoints written before options were recorded).
std::vector<std::string> saved_option_changes(torch::serialize::InputArchive& archive,
                                              const PreconditionerOptions& now) {
  c10::IValue stored;
  if (!archive.try_read("options", stored)) return {};
  const auto specs = option_specs();
  std::vector<OptionRecord> saved;
  for (const auto& entry : stored.toListRef()) {
    const auto& line = entry.toStringRef();
    const auto tab = line.find('\t');
    const auto name = line.substr(0, tab);
    const auto spec = std::find_if(specs.begin(), specs.end(), [&](const OptionSpec& o) { return o.name == name; });
    if (tab == std::string::npos || spec == specs.end()) continue;  // an option this build does not know
    try {
      saved.push_back({"", name, parse_value(*spec, line.substr(tab + 1))});
    } catch (const c10::Error&) {
      continue;  // a value this build cannot read (a method's choice that is no longer registered)
    }
  }
  return option_differences(saved, now);
}

}  // namespace

void Preconditioner::save(torch::serialize::OutputArchive& archive) const {
  KFAC_CHECK(!factors_pending_, "this rank's factors are not averaged over the ranks yet; call "
                                "synchronize_statistics() on every rank before saving a distributed checkpoint");
  archive.write("kfac_format_version", c10::IValue(kFormatVersion));
  archive.write("method", c10::IValue(options_.method()));
  // Every option in effect as "name<TAB>text", so that a resumed run can say which ones it changed.
  c10::List<std::string> options;
  const auto specs = option_specs();
  for (const auto& r : option_records(options_)) {
    const auto spec = std::find_if(specs.begin(), specs.end(), [&](const OptionSpec& o) { return o.name == r.name; });
    options.push_back(r.name + "\t" + format_value(*spec, r.value));
  }
  archive.write("options", c10::IValue(options));
  schedule_->save(archive);
  archive.write("damping", c10::IValue(damping_));
  for (size_t i = 0; i < layers_.size(); ++i) {
    torch::serialize::OutputArchive layer(archive.compilation_unit());
    layer.write("name", c10::IValue(layers_[i].name));
    layer.write("consecutive_failures", c10::IValue(failures_->consecutive_failures(i)));
    curvatures_[i]->save(layer);
    archive.write("layer_" + std::to_string(i), layer);
  }
  archive.write("layers", c10::IValue(static_cast<int64_t>(layers_.size())));
  if (!captured_.empty()) {
    for (size_t i = 0; i < layers_.size(); ++i) {
      const auto& st = captured_.statistics(i);
      const auto key = "captured_" + std::to_string(i);
      archive.write(key + "_a", st.a);
      archive.write(key + "_g", st.g);
      archive.write(key + "_grid", at::tensor(std::vector<int64_t>{st.grid[0], st.grid[1]}));
    }
  }
  executor_->save(archive, layer_names());
  if (fallback_) fallback_->save(archive);
  if (global_) {
    torch::serialize::OutputArchive stage(archive.compilation_unit());
    global_->save(stage);
    archive.write("global_stage", stage);
  }
}

void Preconditioner::load(torch::serialize::InputArchive& archive) {
  c10::IValue v;
  KFAC_CHECK(archive.try_read("kfac_format_version", v), "not a kfac preconditioner checkpoint (no "
                                                         "kfac_format_version)");
  KFAC_CHECK(v.toInt() == kFormatVersion, "checkpoint format version ", v.toInt(),
             " is not supported (this "
             "library reads version ",
             kFormatVersion, ")");
  option_changes_ = saved_option_changes(archive, options_);
  for (auto& change : option_changes_)  // λ is state (step rules adapt it): the checkpoint's value is restored below
    if (change.rfind("damping:", 0) == 0)
      change += "; the saved damping is restored (call set_damping() to use the new one; the kfac tool does)";
  for (const auto& change : option_changes_) TORCH_WARN("resuming with a changed option: ", change);
  archive.read("layers", v);
  const int64_t count = v.toInt();
  std::map<std::string, int64_t> index;
  for (int64_t i = 0; i < count; ++i) {
    torch::serialize::InputArchive layer;
    archive.read("layer_" + std::to_string(i), layer);
    layer.read("name", v);
    index[v.toStringRef()] = i;
  }
  std::vector<std::string> missing;
  for (const auto& l : layers_)
    if (!index.count(l.name)) missing.push_back(l.name);
  KFAC_CHECK(missing.empty() && static_cast<size_t>(count) == layers_.size(), "checkpoint holds ", count,
             " layers but this model has ", layers_.size(), missing.empty() ? "" : "; missing: ", join_quoted(missing));
  for (size_t i = 0; i < layers_.size(); ++i) {
    torch::serialize::InputArchive layer;
    archive.read("layer_" + std::to_string(index[layers_[i].name]), layer);
    layer.read("consecutive_failures", v);
    failures_->set_consecutive_failures(i, v.toInt());
    curvatures_[i]->load(layer);
    failures_->set_decomposed(i, curvatures_[i]->ready());
  }
  factors_pending_ = false;
  schedule_->load(archive);
  damping_ = read_value(archive, "damping").toDouble();
  if (fallback_) fallback_->load(archive);
  std::vector<LayerStatistics> captured;
  for (size_t i = 0; i < layers_.size(); ++i) {
    const auto key = "captured_" + std::to_string(index[layers_[i].name]);
    LayerStatistics st;
    if (!archive.try_read(key + "_a", st.a)) break;
    archive.read(key + "_g", st.g);
    at::Tensor grid;
    archive.read(key + "_grid", grid);
    st.grid = {grid[0].item<int64_t>(), grid[1].item<int64_t>()};
    const auto& device = layers_[i].kind->weight().device();
    st.a = st.a.to(device), st.g = st.g.to(device);
    captured.push_back(std::move(st));
  }
  captured_ = captured.size() == layers_.size()
                  ? CapturedFisher(std::move(captured),
                                   placement_->distributed() ? placement_->shared_communicator() : nullptr)
                  : CapturedFisher();
  load_background_refresh(archive);
  if (global_) {
    torch::serialize::InputArchive stage;
    KFAC_CHECK(archive.try_read("global_stage", stage), "the checkpoint has no state for the global stage (",
               global_->name(),
               "); it was written without one, so resume with the global "
               "stage it was written with");
    global_->load(stage);
  }
  statistics_->clear();
}

std::vector<std::string> Preconditioner::layer_names() const {
  std::vector<std::string> names;
  for (const auto& l : layers_) names.push_back(l.name);
  return names;
}

void Preconditioner::load_background_refresh(torch::serialize::InputArchive& archive) {
  const auto make_copy = [&](size_t i) { return curvatures_[i]->make_twin(); };
  if (options_.background_refresh()) {
    executor_->load(archive, layer_names(), make_copy);
    return;
  }
  torch::serialize::InputArchive results;
  if (!archive.try_read("background_refresh", results)) return;
  BackgroundRefresh restored;  // written with background_refresh, resumed without: adopt at once
  restored.load(results, layer_names(), make_copy);
  for (auto& r : restored.take()) {
    if (!r.copy) continue;
    curvatures_[r.layer]->adopt_refresh_from(*r.copy);
    failures_->set_decomposed(r.layer, true);
  }
}

torch::serialize::OutputArchive& operator<<(torch::serialize::OutputArchive& archive, const Preconditioner& p) {
  p.save(archive);
  return archive;
}
torch::serialize::InputArchive& operator>>(torch::serialize::InputArchive& archive, Preconditioner& p) {
  p.load(archive);
  return archive;
}

}  // namespace kfac
