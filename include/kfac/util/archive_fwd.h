// Forward declarations of LibTorch's checkpoint archives, so headers that only name them need not include
// torch/serialize/archive.h (a heavy header; the .cpp files that read and write include it).
#pragma once

namespace torch::serialize {
class OutputArchive;
class InputArchive;
}  // namespace torch::serialize
