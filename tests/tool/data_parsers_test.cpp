// The tool's data parsers (tools/kfac/data_parsers.h) on a table of bad inputs: each is refused with a message that
// names the file and the line, and nothing is guessed.
#include <gtest/gtest.h>

#include <limits>
#include <string>
#include <vector>

#include "../tools/kfac/data_parsers.h"

namespace {

using kfac::tool::DataError;
using kfac::tool::parse_csv;
using kfac::tool::parse_idx;

// One row: `label` then 784 copies of `pixel`, with `cell` replacing pixel 5 when given.
std::string row(const std::string& label, const std::string& pixel, const std::string& cell = "") {
  std::string r = label;
  for (int i = 0; i < 784; ++i) r += "," + (i == 4 && !cell.empty() ? cell : pixel);
  return r + "\n";
}

struct BadCsv {
  std::string name, text, message;
};

class CsvRefuses : public ::testing::TestWithParam<BadCsv> {};

TEST_P(CsvRefuses, WithTheFileTheLineAndTheReason) {
  const auto& c = GetParam();
  try {
    parse_csv(c.text, "CSV data file 'x.csv'");
    FAIL() << "accepted: " << c.name;
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find(c.message), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("CSV data file 'x.csv'"), std::string::npos) << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(
    Table, CsvRefuses,
    ::testing::Values(
        BadCsv{"trailing_junk", row("1", "0.5") + row("2", "0.5", "12abc"), "line 2: '12abc' is not a number"},
        BadCsv{"hex", row("1", "0.5", "0x1F"), "line 1: '0x1F' is not a number"},
        BadCsv{"fractional_label", row("3.7", "0.5"), "line 1: label 3.7 is not a class"},
        BadCsv{"label_out_of_range", row("10", "0.5"), "line 1: label 10 is not a class"},
        BadCsv{"huge_label", row("7.8e30", "0.5"), "label 7.8e30 is not a class"},
        BadCsv{"nan_label", row("nan", "0.5"), "'nan' is not finite"},
        BadCsv{"nan_pixel", row("1", "0.5", "nan"), "line 1: 'nan' is not finite"},
        BadCsv{"inf_pixel", row("1", "0.5", "inf"), "'inf' is not finite"},
        BadCsv{"overflow", row("1", "0.5", "1e50"), "'1e50' is out of range for a float"},
        BadCsv{"negative_pixel", row("1", "0.5", "-3"), "pixel -3 is outside 0-255"},
        BadCsv{"mixed_scales", row("1", "0.5") + row("2", "200"), "line 1 holds fractional pixels although line 2"},
        BadCsv{"short_row", "1,2,3\n", "line 1 has 3 columns"}, BadCsv{"empty", "label,p1\n", "has no data rows"},
        BadCsv{"header_not_first", row("1", "0.5") + "label,p1\n", "line 2: 'label' is not a number"}),
    [](const auto& info) { return info.param.name; });

TEST(Csv, ReadsABomCrlfAndAHeaderAndScalesWholeNumbers) {
  std::string header = "\xEF\xBB\xBFlabel";
  for (int i = 1; i <= 784; ++i) header += ",p" + std::to_string(i);
  auto a = row("3", "255"), b = row("4", "0");
  a.insert(a.size() - 1, "\r");
  const auto d = parse_csv(header + "\r\n" + a + "\n" + b, "f");
  ASSERT_EQ(d.labels, (std::vector<int64_t>{3, 4}));  // the BOM did not cost the first row
  ASSERT_EQ(d.pixels.size(), 2u * 784);
  EXPECT_EQ(d.pixels.front(), 1.0f);
  EXPECT_EQ(d.pixels.back(), 0.0f);
  const auto unit = parse_csv(row("1", "0.25"), "f");  // the 0-1 scale stays as it is
  EXPECT_EQ(unit.pixels[0], 0.25f);
}

std::vector<unsigned char> idx(std::vector<uint32_t> shape, size_t payload) {
  std::vector<unsigned char> b = {0, 0, 0x08, static_cast<unsigned char>(shape.size())};
  for (auto d : shape)
    for (int k = 3; k >= 0; --k) b.push_back(static_cast<unsigned char>(d >> (8 * k)));
  b.resize(b.size() + payload, 7);
  return b;
}

void expect_idx_error(const std::vector<unsigned char>& bytes, const std::string& message) {
  try {
    parse_idx(bytes, "data file 'f.idx'");
    FAIL() << "accepted, expected: " << message;
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find(message), std::string::npos) << e.what();
  }
}

TEST(Idx, RefusesWrappingShapesEmptyFilesAndSizeMismatches) {
  const auto ok = parse_idx(idx({2, 3}, 6), "f");
  EXPECT_EQ(ok.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(ok.count, 6u);
  // 2^32-1 cubed wraps a 64-bit product: refused before multiplying.
  expect_idx_error(idx({0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF}, 16), "promises more values than");
  expect_idx_error(idx({65536, 65536, 65536, 65536}, 0), "promises more values than");  // exactly 2^64: wraps to 0
  expect_idx_error(idx({0, 28, 28}, 0), "holds no examples");
  expect_idx_error(idx({2, 3}, 5), "promises more values than the file's 5 bytes hold");  // truncated
  expect_idx_error(idx({2, 3}, 7), "is truncated or has trailing bytes");
  expect_idx_error({0, 0, 0x0D, 1, 0, 0, 0, 1, 0, 0, 0, 0}, "only unsigned-byte IDX data");
  expect_idx_error({1, 2, 3}, "bad magic number");
  expect_idx_error({0, 0, 8, 3, 0, 0}, "truncated IDX header");
}

TEST(Json, ValuesOutsideTheUnitIntervalAreRefused) {
  EXPECT_NO_THROW(kfac::tool::check_unit_interval({0.f, 0.5f, 1.f}, "f"));
  EXPECT_THROW(kfac::tool::check_unit_interval({0.f, 1.5f}, "f"), DataError);
  EXPECT_THROW(kfac::tool::check_unit_interval({-0.1f}, "f"), DataError);
  EXPECT_THROW(kfac::tool::check_unit_interval({std::numeric_limits<float>::quiet_NaN()}, "f"), DataError);
}

}  // namespace
