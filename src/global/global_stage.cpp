#include "kfac/global/global_stage.h"

#include "kfac/global/block_tridiagonal.h"
#include "kfac/global/two_level.h"

namespace kfac {

std::unique_ptr<GlobalStage> make_global_stage(GlobalStageKind kind, const GlobalStageOptions& options) {
  switch (kind) {
    case GlobalStageKind::None:
      return nullptr;
    case GlobalStageKind::BlockTridiagonal:
      return std::make_unique<BlockTridiagonal>(options);
    case GlobalStageKind::TwoLevel:
      return std::make_unique<TwoLevelCorrection>(options);
  }
  return nullptr;
}

}  // namespace kfac
