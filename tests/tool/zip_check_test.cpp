// The checkpoint checker (tools/kfac/zip_check.h) on archives built here byte by byte: a good one passes, a flipped
// data byte is named by its record, and offsets or sizes that point past the file, or wrap around 2^64 when added
// (zip64 fields hold 64-bit values), are refused as damage instead of being read.
#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdint>
#include <string>
#include <vector>

#include "tools/kfac/zip_check.h"

namespace {

using Bytes = std::vector<unsigned char>;

void put16(Bytes& b, uint32_t v) { b.insert(b.end(), {uint8_t(v), uint8_t(v >> 8)}); }
void put32(Bytes& b, uint32_t v) { put16(b, v & 0xFFFF), put16(b, v >> 16); }
void put64(Bytes& b, uint64_t v) { put32(b, uint32_t(v)), put32(b, uint32_t(v >> 32)); }

// One stored record `name` holding `data`. With zip64, the directory entry's offset is saturated and its zip64
// extra field holds `zip64_offset` (the true offset, 0, unless a test lies).
Bytes archive(const std::string& name, const std::string& data, bool zip64 = false, uint64_t zip64_offset = 0) {
  const uint32_t crc = crc32(0L, reinterpret_cast<const Bytes::value_type*>(data.data()), data.size());
  Bytes b;
  put32(b, 0x04034b50), put16(b, 20), put16(b, 0), put16(b, 0), put32(b, 0), put32(b, crc);
  put32(b, data.size()), put32(b, data.size()), put16(b, name.size()), put16(b, 0);
  b.insert(b.end(), name.begin(), name.end());
  b.insert(b.end(), data.begin(), data.end());
  const uint32_t dir = b.size();
  put32(b, 0x02014b50), put16(b, 20), put16(b, 20), put16(b, 0), put16(b, 0), put32(b, 0), put32(b, crc);
  put32(b, data.size()), put32(b, data.size()), put16(b, name.size()), put16(b, zip64 ? 12 : 0), put16(b, 0);
  put16(b, 0), put16(b, 0), put32(b, 0), put32(b, zip64 ? 0xFFFFFFFF : 0);
  b.insert(b.end(), name.begin(), name.end());
  if (zip64) put16(b, 1), put16(b, 8), put64(b, zip64_offset);
  const uint32_t dir_size = b.size() - dir;
  put32(b, 0x06054b50), put16(b, 0), put16(b, 0), put16(b, 1), put16(b, 1), put32(b, dir_size), put32(b, dir);
  put16(b, 0);
  return b;
}

std::string error_of(const Bytes& b) {
  try {
    kfac::tool::verify_zip_bytes(b, "run.pt");
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

TEST(ZipCheck, AGoodArchivePassesAndAFlippedByteIsNamedByItsRecord) {
  auto b = archive("archive/data/0", "weights!");
  EXPECT_EQ(error_of(b), "");
  EXPECT_EQ(error_of(archive("a", "x", /*zip64=*/true, 0)), "");
  b[30 + 14 + 3] ^= 1;  // a byte of the record's data
  const auto e = error_of(b);
  EXPECT_NE(e.find("checkpoint 'run.pt' is damaged (record 'archive/data/0' does not match its CRC-32"),
            std::string::npos)
      << e;
}

TEST(ZipCheck, OffsetsPastTheFileOrWrappingAroundAreDamageNotReads) {
  for (uint64_t offset : {uint64_t{1} << 40, ~uint64_t{0} - 10, ~uint64_t{0} - 29}) {
    const auto e = error_of(archive("a", "x", /*zip64=*/true, offset));
    EXPECT_NE(e.find("bad local header of record 'a'"), std::string::npos) << offset << ": " << e;
  }
  // A zip64 field shorter than the 8 bytes it claims.
  auto b = archive("a", "x", /*zip64=*/true, 0);
  b[b.size() - 22 - 10] = 4;  // the extra field's length: 8 -> 4
  EXPECT_NE(error_of(b).find("is damaged"), std::string::npos);
  // Truncated anywhere: refused, never read past the end.
  const auto good = archive("archive/data/0", "weights!");
  for (size_t n = 0; n < good.size(); ++n)
    EXPECT_NE(error_of(Bytes(good.begin(), good.begin() + n)).find("is damaged"), std::string::npos) << n;
}

}  // namespace
