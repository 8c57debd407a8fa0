// The one place where c10d appears: a Communicator over a c10d process group (Gloo; NCCL when LibTorch has it).
#include <torch/csrc/distributed/c10d/HashStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
// NCCL where LibTorch has it and its header is on the include path (a pip torch defines USE_C10D_NCCL for its
// users, but nccl.h lives in the separate nvidia-nccl wheel).
#if defined(USE_C10D_NCCL) && __has_include(<nccl.h>)
#define KFAC_WITH_NCCL 1
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <cstdlib>
#include <map>
#include <mutex>

#include "kfac/distributed/communicator.h"
#include "kfac/errors.h"

namespace kfac {

namespace {

c10::intrusive_ptr<c10d::Store> in_process_store(const std::string& key) {
  static std::mutex mutex;
  static std::map<std::string, c10::intrusive_ptr<c10d::Store>> stores;
  std::lock_guard<std::mutex> lock(mutex);
  auto& s = stores[key];
  if (!s) s = c10::make_intrusive<c10d::HashStore>();
  return s;
}

// Templated on the group class: ProcessGroupGloo/NCCL derive from c10d::ProcessGroup in LibTorch 1.x and from
// c10d::Backend in 2.x, and both spell allreduce/broadcast/barrier the same way.
template <class Group>
class C10dCommunicator final : public Communicator {
 public:
  C10dCommunicator(c10::intrusive_ptr<Group> group, ProcessGroupOptions options, int device_index = 0)
      : group_(std::move(group)), options_(std::move(options)), device_index_(device_index) {}
  int rank() const override { return options_.rank; }
  int size() const override { return options_.world_size; }
  std::string backend() const override { return options_.backend; }
  at::Device device() const override {
    return options_.backend == "nccl" ? at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(device_index_))
                                      : at::Device(at::kCPU);
  }

  void all_reduce_sum(std::vector<at::Tensor>& tensors) override {
    count(tensors);
    run("all_reduce", [&] { return group_->allreduce(tensors); });
  }
  void broadcast(std::vector<at::Tensor>& tensors, int root) override {
    count(tensors);
    c10d::BroadcastOptions o;
    o.rootRank = root;
    run("broadcast", [&] { return group_->broadcast(tensors, o); });
  }
  void barrier() override {
    run("barrier", [&] { return group_->barrier(); });
  }

 private:
  template <class F>
  void run(const char* what, F&& start) {
    try {
      auto work = start();
      work->wait(options_.timeout);
    } catch (const std::exception& e) {
      std::string msg = e.what();
      if (const auto nl = msg.find("\nException raised from"); nl != std::string::npos) msg.resize(nl);
      KFAC_CHECK(false, "distributed ", what, " failed on rank ", options_.rank, " of ", options_.world_size, " (",
                 options_.backend, ", timeout ", options_.timeout.count() / 1000.0, " s): ", msg,
                 ". Another rank probably exited or stopped responding; check its output");
    }
  }

  c10::intrusive_ptr<Group> group_;
  ProcessGroupOptions options_;
  int device_index_;
};

}  // namespace

bool multi_process_available() { return true; }
std::vector<std::string> distributed_backends() {
#ifdef KFAC_WITH_NCCL
  return {"gloo", "nccl"};
#else
  return {"gloo"};
#endif
}

std::shared_ptr<Communicator> connect(const ProcessGroupOptions& o) {
  KFAC_CHECK(o.world_size >= 1 && o.rank >= 0 && o.rank < o.world_size, "rank ", o.rank, " is not in [0, ",
             o.world_size, ")");
  KFAC_CHECK(o.timeout.count() > 0, "the distributed timeout must be > 0");
  if (o.world_size == 1) return std::make_shared<SingleProcess>();
  c10::intrusive_ptr<c10d::Store> store;
  try {
    if (!o.in_process_store.empty()) {
      store = in_process_store(o.in_process_store);
    } else {
      KFAC_CHECK(o.master_port > 0 && o.master_port < 65536, "MASTER_PORT must be in 1..65535, got ", o.master_port);
      c10d::TCPStoreOptions so;
      so.port = static_cast<uint16_t>(o.master_port);
      so.isServer = o.rank == 0;
      so.numWorkers = static_cast<size_t>(o.world_size);
      so.timeout = o.timeout;
      store = c10::make_intrusive<c10d::TCPStore>(o.master_addr, so);
    }
    store->setTimeout(o.timeout);
    if (o.backend == "gloo") {
      auto options = c10d::ProcessGroupGloo::Options::create(o.timeout);
      const bool loopback = o.master_addr == "127.0.0.1" || o.master_addr == "localhost";
      options->devices.push_back(loopback ? c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1")
                                          : c10d::ProcessGroupGloo::createDefaultDevice());
      auto group = c10::make_intrusive<c10d::ProcessGroupGloo>(store, o.rank, o.world_size, options);
      return std::make_shared<C10dCommunicator<c10d::ProcessGroupGloo>>(group, o);
    }
#ifdef KFAC_WITH_NCCL
    if (o.backend == "nccl") {
      auto options = c10d::ProcessGroupNCCL::Options::create();
      options->timeout = o.timeout;
      auto group = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, o.rank, o.world_size, options);
      const char* local = std::getenv("LOCAL_RANK");  // one GPU per local rank
      return std::make_shared<C10dCommunicator<c10d::ProcessGroupNCCL>>(group, o, local ? std::atoi(local) : 0);
    }
#endif
  } catch (const c10::Error&) {
    throw;
  } catch (const std::exception& e) {
    KFAC_CHECK(false, "rank ", o.rank, " of ", o.world_size, " could not join the process group at ", o.master_addr,
               ":", o.master_port, " (", o.backend, ", timeout ", o.timeout.count() / 1000.0, " s): ", e.what());
  }
  KFAC_CHECK(false, "unknown or unavailable distributed backend '", o.backend,
             "'; valid here: gloo"
#ifdef KFAC_WITH_NCCL
             ", nccl"
#endif
  );
  return nullptr;
}

}  // namespace kfac
