#include "preconditioner/schedule.h"

#include <torch/serialize/archive.h>

#include <algorithm>

#include "util/serialize.h"

namespace kfac {

double Schedule::next_decay() {
  ++statistics_updates_;
  return std::min(1.0 - 1.0 / static_cast<double>(statistics_updates_), options_.ema_decay());
}

void Schedule::save(torch::serialize::OutputArchive& archive) const {
  archive.write("step", c10::IValue(step_));
  archive.write("statistics_updates", c10::IValue(statistics_updates_));
}

void Schedule::load(torch::serialize::InputArchive& archive) {
  step_ = read_value(archive, "step").toInt();
  statistics_updates_ = read_value(archive, "statistics_updates").toInt();
}

}  // namespace kfac
