// Checkpoint helpers shared by the optimizers: numbered tensor lists with strict shape checks, and the
// preconditioner nested under a key. (Preconditioner::save/load and torch::save/torch::load do the rest.)
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/core/ivalue.h>

#include <string>
#include <vector>

#include "kfac/util/archive_fwd.h"

namespace kfac {

class Preconditioner;

/// Reads one scalar or string entry (throws naming the key if it is missing).
c10::IValue read_value(torch::serialize::InputArchive& archive, const std::string& key);

/// Writes tensors as "<prefix>0", "<prefix>1", ...; undefined entries are skipped.
void write_tensors(torch::serialize::OutputArchive& archive, const std::string& prefix,
                   const std::vector<at::Tensor>& tensors);
/// Reads "<prefix>i" for each entry of `like` (undefined where absent), moved to like[i]'s device and dtype;
/// throws naming `what`, the index and both shapes if a shape differs from like[i]'s.
std::vector<at::Tensor> read_tensors(torch::serialize::InputArchive& archive, const std::string& prefix,
                                     const std::vector<at::Tensor>& like, const std::string& what);

void write_preconditioner(torch::serialize::OutputArchive& archive, const std::string& key, const Preconditioner& p);
void read_preconditioner(torch::serialize::InputArchive& archive, const std::string& key, Preconditioner& p);

}  // namespace kfac
