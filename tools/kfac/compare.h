// `kfac compare`: several methods on the same model, data, seed and batches; a report folder with per-run metrics
// (JSON and CSV), plots of loss against steps and against seconds (gnuplot, PNG), and a Markdown summary.
#pragma once

#include <string>
#include <vector>

#include "train.h"

namespace kfac::tool {

struct CompareConfig {
  TrainConfig base;  ///< everything but the method
  std::vector<std::string> methods{"sgd", "adam", "kfac", "ekfac", "tkfac", "tekfac"};
  std::string out_dir = "reports/compare";
};

/// The checkpoint of one method of a comparison run with --checkpoint `path`: the method's name before the extension
/// (run.pt -> run.kfac.pt), so that every method writes and resumes its own.
std::string method_checkpoint(const std::string& path, const std::string& method);

struct CompareOutcome {
  std::string summary;                  ///< Markdown
  std::vector<std::string> non_finite;  ///< methods whose trained model evaluates to a NaN or an infinity
};

/// Runs the comparison and writes the report, every method's included.
CompareOutcome run_compare(const CompareConfig& config);

/// Writes a run's loss history as CSV (step,train_loss,seconds).
void write_history_csv(const TrainResult& result, const std::string& path);

}  // namespace kfac::tool
