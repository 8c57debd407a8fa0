// The communicator: the only thing the library knows about other processes. Collectives on lists of tensors, a
// rank and a size. `SingleProcess` is the trivial one; `connect()` returns one over a c10d process group (Gloo on
// CPU, NCCL on CUDA when LibTorch has it): c10d appears only in src/distributed/c10d_communicator.cpp.
//
// Every rank must call the same collectives in the same order with tensors of the same shapes and dtypes. A rank
// that dies or stops answering makes the others' collectives throw (c10::Error naming the operation) after at most
// the configured timeout: never a silent hang.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace kfac {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  /// In place: each tensor becomes the sum over ranks.
  virtual void all_reduce_sum(std::vector<at::Tensor>& tensors) = 0;
  /// In place: each tensor becomes root's.
  virtual void broadcast(std::vector<at::Tensor>& tensors, int root) = 0;
  virtual void barrier() = 0;
  virtual std::string backend() const = 0;
  /// Where this backend's tensors live: the CPU for Gloo, the current CUDA device for NCCL.
  virtual at::Device device() const { return at::kCPU; }
  /// Sums a few numbers over the ranks (one all-reduce of a float64 tensor on device()); identity with one rank.
  std::vector<double> sum_over_ranks(std::vector<double> values);

  /// Bytes this rank has passed to collectives (payload only), for the scaling report.
  int64_t bytes() const { return bytes_; }

 protected:
  void count(const std::vector<at::Tensor>& tensors);

 private:
  int64_t bytes_ = 0;
};

class SingleProcess final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void all_reduce_sum(std::vector<at::Tensor>&) override {}
  void broadcast(std::vector<at::Tensor>&, int) override {}
  void barrier() override {}
  std::string backend() const override { return "single-process"; }
};

/// Bounds of what ProcessGroupOptions::from_environment accepts (and the tool's --nproc / --dist-timeout).
constexpr long kMaxWorldSize = 1 << 16;
constexpr long kMaxTimeoutSeconds = 7L * 24 * 3600;

/// How to reach the other ranks.
struct ProcessGroupOptions {
  std::string backend = "gloo";           ///< "gloo" (CPU tensors) or "nccl" (CUDA tensors)
  std::string master_addr = "127.0.0.1";  ///< rank 0's TCP store address
  int master_port = 29500;
  int rank = 0;
  int world_size = 1;
  std::chrono::milliseconds timeout{std::chrono::seconds(60)};  ///< store connection and every collective
  /// In-process ranks (threads): share this key's in-memory store instead of TCP (tests). Empty = TCP.
  std::string in_process_store;

  /// RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT (and KFAC_DIST_TIMEOUT_S, KFAC_DIST_BACKEND) from the environment;
  /// a variable that is set but malformed is an error naming it.
  static ProcessGroupOptions from_environment();
};

/// Whether this build has c10d process groups (false when the Gloo headers were missing at build time).
bool multi_process_available();

/// The c10d backends this build can connect with: "gloo", and "nccl" when LibTorch has it; empty without c10d.
std::vector<std::string> distributed_backends();

/// A communicator over a c10d process group; SingleProcess when world_size is 1.
std::shared_ptr<Communicator> connect(const ProcessGroupOptions& options);

}  // namespace kfac
