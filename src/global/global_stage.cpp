#include "kfac/global/global_stage.h"

#include "kfac/global/block_tridiagonal.h"
#include "kfac/global/two_level.h"

namespace kfac {

std::unique_ptr<GlobalStage> make_global_stage(const PreconditionerOptions& options) {
  switch (options.two_level().space()) {
    case CoarseSpace::None:
      return nullptr;
    case CoarseSpace::BlockTridiagonal:
      return std::make_unique<BlockTridiagonal>(options.two_level());
    default:
      return std::make_unique<TwoLevelCorrection>(options.two_level());
  }
}

}  // namespace kfac
