// Collectives built on a Communicator: bucketed averaging (the C++ frontend has no DistributedDataParallel),
// symmetric matrices sent as their upper triangle, and broadcasts of tensors whose shapes only the root knows.
#pragma once

#include <ATen/core/Tensor.h>

#include <vector>

#include "kfac/distributed/communicator.h"

namespace kfac {

constexpr int64_t kDefaultBucketBytes = int64_t{25} << 20;  // 25 MiB, DDP's default

/// In place: each tensor becomes the mean over ranks. Tensors are flattened into buckets of at most `bucket_bytes`
/// (per dtype and device), one all-reduce each.
void all_reduce_mean(Communicator& comm, const std::vector<at::Tensor>& tensors,
                     int64_t bucket_bytes = kDefaultBucketBytes);

/// The parameters' gradients averaged over ranks (call after backward, before the preconditioner or optimizer);
/// parameters without a gradient are skipped, identically on every rank.
void all_reduce_gradients(Communicator& comm, const std::vector<at::Tensor>& parameters,
                          int64_t bucket_bytes = kDefaultBucketBytes);

/// In place mean of symmetric square matrices, sending only the upper triangles (n(n+1)/2 values each).
void all_reduce_symmetric_mean(Communicator& comm, const std::vector<at::Tensor>& matrices,
                               int64_t bucket_bytes = kDefaultBucketBytes);

/// Broadcasts root's tensors to every rank, shapes included: other ranks pass `tensors` of the same count
/// (their contents and shapes are replaced; undefined entries stay undefined when root's are). All tensors of one call
/// must share a dtype and device on root. One header and one data broadcast.
void broadcast_tensors(Communicator& comm, std::vector<at::Tensor>& tensors, int root,
                       const at::TensorOptions& options);

}  // namespace kfac
