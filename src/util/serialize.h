// Checkpoint helpers shared by the optimizers: numbered tensor lists with strict shape checks, and an object's
// own archive nested under a key (the preconditioner inside an optimizer's). (Preconditioner::save/load and torch::save/torch::load do the rest.)
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/core/ivalue.h>

#include <functional>
#include <string>
#include <vector>

#include "kfac/util/archive_fwd.h"

namespace kfac {

/// Reads one scalar or string entry (throws naming the key if it is missing).
c10::IValue read_value(torch::serialize::InputArchive& archive, const std::string& key);

/// Writes tensors as "<prefix>0", "<prefix>1", ...; undefined entries are skipped.
void write_tensors(torch::serialize::OutputArchive& archive, const std::string& prefix,
                   const std::vector<at::Tensor>& tensors);
/// Reads "<prefix>i" for each entry of `like` (undefined where absent), moved to like[i]'s device and dtype;
/// throws naming `what`, the index and both shapes if a shape differs from like[i]'s.
std::vector<at::Tensor> read_tensors(torch::serialize::InputArchive& archive, const std::string& prefix,
                                     const std::vector<at::Tensor>& like, const std::string& what);

/// Writes what `save` writes into an archive of its own under `key`.
void write_nested(torch::serialize::OutputArchive& archive, const std::string& key,
                  const std::function<void(torch::serialize::OutputArchive&)>& save);
/// Hands the archive under `key` to `load`.
void read_nested(torch::serialize::InputArchive& archive, const std::string& key,
                 const std::function<void(torch::serialize::InputArchive&)>& load);

}  // namespace kfac
