// Datasets for the kfac tool: IDX files (optionally gzip-compressed), Fashion-MNIST from the Debian package.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>

namespace kfac::tool {

struct Dataset {
  at::Tensor images;  ///< [N, 784] float32 in [0, 1]
  at::Tensor labels;  ///< [N] int64
  int64_t size() const { return images.size(0); }
};

/// Reads an IDX file (.gz or plain) into a tensor of its stored shape (uint8 data as uint8). Throws naming the file
/// and what is wrong if it is missing, truncated or not IDX.
at::Tensor read_idx(const std::string& path);

/// Where Debian's dataset-fashion-mnist installs the files.
std::string default_fashion_mnist_dir();

/// Loads `train` or `t10k` images and labels from `dir`.
Dataset load_fashion_mnist(const std::string& dir, bool train);

}  // namespace kfac::tool
