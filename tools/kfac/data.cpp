#include "data.h"

#include <ATen/ATen.h>
#include <zlib.h>

#include <cstring>
#include <fstream>
#include <vector>

#include "kfac/errors.h"

namespace kfac::tool {

namespace {
std::vector<unsigned char> read_all(const std::string& path) {
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

uint32_t big_endian(const unsigned char* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}
}  // namespace

at::Tensor read_idx(const std::string& path) {
  const auto bytes = read_all(path);
  KFAC_CHECK(bytes.size() >= 4 && bytes[0] == 0 && bytes[1] == 0, "data file '", path,
             "' is not an IDX file (bad magic number)");
  KFAC_CHECK(bytes[2] == 0x08, "data file '", path, "': only unsigned-byte IDX data (type 0x08) is supported, got 0x",
             std::hex, int(bytes[2]));
  const int dims = bytes[3];
  KFAC_CHECK(dims >= 1 && bytes.size() >= 4 + 4 * size_t(dims), "data file '", path, "' has a truncated IDX header");
  std::vector<int64_t> shape;
  size_t count = 1;
  for (int d = 0; d < dims; ++d) {
    shape.push_back(big_endian(&bytes[4 + 4 * d]));
    count *= size_t(shape.back());
  }
  const size_t offset = 4 + 4 * size_t(dims);
  KFAC_CHECK(bytes.size() == offset + count, "data file '", path, "' is truncated or has trailing bytes: header ",
             "promises ", count, " values, file holds ", bytes.size() - offset);
  auto t = at::empty(shape, at::kByte);
  std::memcpy(t.data_ptr<uint8_t>(), bytes.data() + offset, count);
  return t;
}

std::string default_fashion_mnist_dir() { return "/usr/share/datasets/fashion-mnist"; }

Dataset load_fashion_mnist(const std::string& dir, bool train) {
  const std::string prefix = dir + "/" + (train ? "train" : "t10k");
  auto images = read_idx(prefix + "-images-idx3-ubyte.gz");
  auto labels = read_idx(prefix + "-labels-idx1-ubyte.gz");
  KFAC_CHECK(images.dim() == 3 && labels.dim() == 1 && images.size(0) == labels.size(0), "Fashion-MNIST files in '",
             dir, "' disagree: images ", images.sizes(), ", labels ", labels.sizes());
  return {images.reshape({images.size(0), -1}).to(at::kFloat).div_(255.0), labels.to(at::kLong)};
}

}  // namespace kfac::tool
