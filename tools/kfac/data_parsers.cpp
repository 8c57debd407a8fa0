#include "data_parsers.h"

#include <charconv>
#include <cmath>
#include <limits>
#include <sstream>
#include <system_error>

namespace kfac::tool {

namespace {
uint32_t big_endian(const unsigned char* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}

template <typename... Parts>
[[noreturn]] void fail(const Parts&... parts) {
  std::ostringstream s;
  (s << ... << parts);
  throw DataError(s.str());
}

std::string shown(const std::string& cell) { return cell.size() > 40 ? cell.substr(0, 40) + "..." : cell; }

// A finite float with nothing before or after it but spaces.
float parse_float(std::string cell, const std::string& what, int64_t line, int64_t column) {
  const auto b = cell.find_first_not_of(" \t"), e = cell.find_last_not_of(" \t");
  cell = b == std::string::npos ? "" : cell.substr(b, e - b + 1);
  float v = 0;
  const char* end = cell.data() + cell.size();
  const auto [ptr, ec] = std::from_chars(cell.data(), end, v);
  if (ec == std::errc::result_out_of_range)
    fail(what, " line ", line, ": '", shown(cell), "' is out of range for a float (column ", column, ")");
  if (ec != std::errc() || ptr != end || cell.empty())
    fail(what, " line ", line, ": '", shown(cell), "' is not a number (column ", column, ")");
  if (!std::isfinite(v)) fail(what, " line ", line, ": '", shown(cell), "' is not finite (column ", column, ")");
  return v;
}
}  // namespace

IdxView parse_idx(const std::vector<unsigned char>& bytes, const std::string& what) {
  if (bytes.size() < 4 || bytes[0] != 0 || bytes[1] != 0) fail(what, " is not an IDX file (bad magic number)");
  if (bytes[2] != 0x08) fail(what, ": only unsigned-byte IDX data (type 0x08) is supported, got type ", int(bytes[2]));
  const int dims = bytes[3];
  if (dims < 1 || bytes.size() < 4 + 4 * size_t(dims)) fail(what, " has a truncated IDX header");
  IdxView v;
  v.offset = 4 + 4 * size_t(dims);
  const size_t available = bytes.size() - v.offset;
  v.count = 1;
  for (int d = 0; d < dims; ++d) {
    const uint32_t n = big_endian(&bytes[4 + 4 * d]);
    v.shape.push_back(n);
    if (n != 0 && v.count > available / n)  // before multiplying: no wrap-around
      fail(what, ": its IDX header promises more values than the file's ", available,
           " bytes hold (truncated, or a corrupt header)");
    v.count *= n;
  }
  if (v.shape[0] == 0) fail(what, " holds no examples (its first dimension is 0)");
  if (available != v.count)
    fail(what, " is truncated or has trailing bytes: its header promises ", v.count, " values, the file holds ",
         available);
  return v;
}

CsvData parse_csv(const std::string& text, const std::string& what) {
  CsvData d;
  std::istringstream in(text);
  std::string line;
  int64_t line_no = 0, over_one = 0, fractional = 0;  // first lines with a pixel above 1 / a fractional pixel
  while (std::getline(in, line)) {
    ++line_no;
    if (line_no == 1 && line.rfind("\xEF\xBB\xBF", 0) == 0) line.erase(0, 3);  // UTF-8 byte-order mark
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    std::vector<std::string> cells;
    for (size_t start = 0;;) {
      const auto comma = line.find(',', start);
      cells.push_back(line.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    if (line_no == 1 && d.labels.empty()) {  // a header: its first cell is not a number
      const auto& first = cells[0];
      float probe = 0;
      const auto b = first.find_first_not_of(" \t");
      const auto [p, ec] = std::from_chars(first.data() + (b == std::string::npos ? 0 : b), first.data() + first.size(),
                                           probe);
      if (ec == std::errc::invalid_argument) continue;
    }
    std::vector<float> row;
    for (size_t c = 0; c < cells.size(); ++c) row.push_back(parse_float(cells[c], what, line_no, int64_t(c) + 1));
    if (row.size() != 785)
      fail(what, " line ", line_no, " has ", row.size(), " columns; expected a label and 784 pixels");
    if (row[0] != std::floor(row[0]) || row[0] < 0 || row[0] >= kClasses)
      fail(what, " line ", line_no, ": label ", cells[0], " is not a class (a whole number from 0 to ", kClasses - 1,
           ")");
    d.labels.push_back(static_cast<int64_t>(row[0]));
    bool row_whole = true;
    for (size_t c = 1; c < row.size(); ++c) {
      const float v = row[c];
      if (v < 0 || v > 255)
        fail(what, " line ", line_no, ": pixel ", cells[c], " is outside 0-255 (column ", c + 1, ")");
      if (v > 1 && over_one == 0) over_one = line_no;
      row_whole = row_whole && v == std::floor(v);
      d.pixels.push_back(v);
    }
    if (!row_whole && fractional == 0) fractional = line_no;
  }
  if (d.labels.empty()) fail(what, " has no data rows");
  if (over_one > 0) {  // the 0-255 scale: whole numbers only, or rows of two scales are mixed
    if (fractional > 0)
      fail(what, " line ", fractional, " holds fractional pixels although line ", over_one,
           " is on the 0-255 scale; "
           "give every row on one scale (0-1 or 0-255)");
    for (auto& v : d.pixels) v /= 255.0f;
  }
  return d;
}

void check_unit_interval(const std::vector<float>& values, const std::string& what) {
  for (size_t i = 0; i < values.size(); ++i)
    if (!(values[i] >= 0 && values[i] <= 1))
      fail(what, ": value ", i, " is ", values[i], "; pixel values must be finite and in [0, 1]");
}

}  // namespace kfac::tool
