#include "preconditioner/background_refresh.h"

#include "kfac/curvature/registry.h"
#include "preconditioner/refresh_executor.h"

#include <torch/serialize/archive.h>

#include <algorithm>
#include <utility>

#ifdef __linux__
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "kfac/errors.h"
#include "util/serialize.h"

namespace kfac {

namespace {
// Lowest scheduling priority for the calling thread (and the OpenMP threads it starts): idle cycles first.
void lower_this_threads_priority() {
#ifdef __linux__
  setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), 19);  // Linux: nice is per thread
#endif
}
}  // namespace

BackgroundRefresh::~BackgroundRefresh() {
  if (job_.valid()) job_.wait();  // a worker's exception dies with it here; nobody is left to report it to
}

void BackgroundRefresh::launch(std::vector<Result> copies, double damping) {
  KFAC_CHECK(!pending(), "background refresh: the previous results were not taken before the next launch");
  if (copies.empty()) return;
  job_ = std::async(std::launch::async, [copies = std::move(copies), damping]() mutable {
    lower_this_threads_priority();
    for (auto& r : copies) {
      try {
        r.copy->refresh(damping);
      } catch (const NumericalError& e) {
        r.error = e.what();
        r.copy.reset();
      }
    }
    return std::move(copies);
  });
}

void BackgroundRefresh::wait() {
  if (job_.valid()) finished_ = job_.get();
}

std::vector<BackgroundRefresh::Result> BackgroundRefresh::take() {
  wait();
  return std::exchange(finished_, {});
}

void BackgroundRefresh::save(torch::serialize::OutputArchive& archive, const std::vector<std::string>& layer_names) {
  wait();
  archive.write("results", c10::IValue(static_cast<int64_t>(finished_.size())));
  for (size_t k = 0; k < finished_.size(); ++k) {
    const auto& r = finished_[k];
    torch::serialize::OutputArchive result(archive.compilation_unit());
    result.write("layer", c10::IValue(layer_names.at(r.layer)));
    result.write("error", c10::IValue(r.error));
    if (r.copy) r.copy->save(result);
    archive.write("result_" + std::to_string(k), result);
  }
}

void BackgroundRefresh::load(torch::serialize::InputArchive& archive, const std::vector<std::string>& layer_names,
                             const std::function<std::unique_ptr<Curvature>(size_t)>& make_copy) {
  wait();
  finished_.clear();
  const int64_t count = read_value(archive, "results").toInt();
  for (int64_t k = 0; k < count; ++k) {
    torch::serialize::InputArchive stored;
    archive.read("result_" + std::to_string(k), stored);
    const auto name = read_value(stored, "layer").toStringRef();
    const auto it = std::find(layer_names.begin(), layer_names.end(), name);
    KFAC_CHECK(it != layer_names.end(), "checkpoint: a background refresh of layer '", name,
               "', which this model does not have");
    Result r;
    r.layer = static_cast<size_t>(it - layer_names.begin());
    r.error = read_value(stored, "error").toStringRef();
    if (r.error.empty()) {
      r.copy = make_copy(r.layer);
      r.copy->load(stored);
    }
    finished_.push_back(std::move(r));
  }
}

namespace {

// The RefreshExecutor over the worker: adopt what it computed since the last schedule, hand it the next copies.
class BackgroundRefresher final : public RefreshExecutor {
 public:
  BackgroundRefresher() = default;
  std::string name() const override { return "background"; }

  std::vector<RefreshOutcome> run(const RefreshRequest& r) override {
    auto& curvatures = *r.curvatures;
    std::vector<RefreshOutcome> out;
    if (r.scheduled || r.synchronous) {
      for (auto& result : worker_.take()) {
        if (r.synchronous) continue;  // about to be recomputed from fresher statistics
        if (result.copy) curvatures[result.layer]->adopt_refresh_from(*result.copy);
        out.push_back({result.layer, result.copy != nullptr, result.error});
      }
    }
    std::vector<size_t> now;
    std::vector<BackgroundRefresh::Result> copies;
    for (size_t i : r.due) {
      if (r.synchronous || !(*r.decomposed)[i]) {  // a layer's first decomposition is computed at once
        now.push_back(i);
        continue;
      }
      BackgroundRefresh::Result copy;
      copy.layer = i;
      copy.copy = curvatures[i]->make_twin();
      copy.copy->copy_state_from(*curvatures[i]);
      copies.push_back(std::move(copy));
    }
    if (!copies.empty()) worker_.launch(std::move(copies), r.damping);
    if (now.empty()) return out;
    if (r.before_compute) r.before_compute();
    auto first = refresh_layers(now, curvatures, r.damping);
    out.insert(out.end(), first.begin(), first.end());
    return out;
  }

  void save(torch::serialize::OutputArchive& archive, const std::vector<std::string>& layer_names) override {
    if (!worker_.pending()) return;
    torch::serialize::OutputArchive results(archive.compilation_unit());
    worker_.save(results, layer_names);
    archive.write("background_refresh", results);
  }

  void load(torch::serialize::InputArchive& archive, const std::vector<std::string>& layer_names,
            const std::function<std::unique_ptr<Curvature>(size_t)>& make_copy) override {
    worker_.take();  // drop what was being computed before the load
    torch::serialize::InputArchive results;
    if (archive.try_read("background_refresh", results)) worker_.load(results, layer_names, make_copy);
  }

 private:
  BackgroundRefresh worker_;
};

}  // namespace

std::unique_ptr<RefreshExecutor> make_background_refresher() { return std::make_unique<BackgroundRefresher>(); }

}  // namespace kfac
