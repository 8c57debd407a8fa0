// Built when the Gloo headers that c10d's ProcessGroupGloo.hpp needs are missing (e.g. a LibTorch without them):
// one process works, several ranks are a clear error.
#include "kfac/distributed/communicator.h"
#include "kfac/errors.h"

namespace kfac {

bool multi_process_available() { return false; }
std::vector<std::string> distributed_backends() { return {}; }

std::shared_ptr<Communicator> connect(const ProcessGroupOptions& o) {
  KFAC_CHECK(o.world_size == 1,
             "this kfac library was built without c10d process groups (no Gloo headers were "
             "found at build time; on Debian install libgloo-dev and rebuild), so WORLD_SIZE must be 1, got ",
             o.world_size);
  return std::make_shared<SingleProcess>();
}

}  // namespace kfac
