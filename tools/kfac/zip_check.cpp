#include "zip_check.h"

#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <vector>

#include "kfac/errors.h"

namespace kfac::tool {

namespace {
uint32_t u16(const unsigned char* p) { return p[0] | (p[1] << 8); }
uint32_t u32(const unsigned char* p) { return u16(p) | (u16(p + 2) << 16); }
}  // namespace

void verify_zip_crcs(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  KFAC_CHECK(in.good(), "cannot open checkpoint '", path, "'");
  verify_zip_bytes(std::vector<unsigned char>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>()),
                   path);
}

void verify_zip_bytes(const std::vector<unsigned char>& file, const std::string& path) {
  const auto corrupt = [&](const std::string& why) {
    KFAC_CHECK(false, "checkpoint '", path, "' is damaged (", why,
               "); it cannot be resumed. Use an earlier copy, or "
               "start again without --resume");
  };
  // The end-of-central-directory record: signature 0x06054b50 within the last 64 KiB + 22 bytes.
  const size_t n = file.size();
  // Whether [pos, pos + len) lies in the file, without overflow: offsets and sizes are the file's own words.
  const auto fits = [n](uint64_t pos, uint64_t len) { return pos <= n && len <= n - pos; };
  size_t eocd = std::string::npos;
  const size_t lowest = n > 65557 ? n - 65557 : 0;
  for (size_t i = n >= 22 ? n - 21 : 0; i-- > lowest;)
    if (u32(&file[i]) == 0x06054b50) {
      eocd = i;
      break;
    }
  if (eocd == std::string::npos) corrupt("no zip directory at its end: truncated or not a checkpoint");
  uint64_t entries = u16(&file[eocd + 10]), dir = u32(&file[eocd + 16]);
  // Zip64 (LibTorch writes it for large archives): the locator just before points to the zip64 directory record.
  if ((entries == 0xFFFF || dir == 0xFFFFFFFF) && eocd >= 20 && u32(&file[eocd - 20]) == 0x07064b50) {
    const uint64_t z = u32(&file[eocd - 12]) | (static_cast<uint64_t>(u32(&file[eocd - 8])) << 32);
    if (!fits(z, 56) || u32(&file[z]) != 0x06064b50) corrupt("bad zip64 directory");
    entries = u32(&file[z + 32]) | (static_cast<uint64_t>(u32(&file[z + 36])) << 32);
    dir = u32(&file[z + 48]) | (static_cast<uint64_t>(u32(&file[z + 52])) << 32);
  }
  uint64_t at = dir;
  for (uint64_t e = 0; e < entries; ++e) {
    if (!fits(at, 46) || u32(&file[at]) != 0x02014b50) corrupt("bad zip directory entry");
    const unsigned char* c = &file[at];
    const uint32_t method = u16(c + 10), crc = u32(c + 16), name_len = u16(c + 28), extra_len = u16(c + 30),
                   comment_len = u16(c + 32);
    uint64_t size = u32(c + 20), offset = u32(c + 42);
    if (!fits(at, 46 + name_len + extra_len)) corrupt("bad zip directory entry");
    const std::string name(reinterpret_cast<const char*>(c + 46), name_len);
    // Zip64 extra field (id 1): 64-bit uncompressed size, compressed size, then offset, each present if saturated.
    const uint64_t extra_end = at + 46 + name_len + extra_len;
    for (uint64_t x = at + 46 + name_len; x + 4 <= extra_end;) {
      const uint32_t id = u16(&file[x]), len = u16(&file[x + 2]);
      if (id == 1) {
        uint64_t q = x + 4;
        const auto next64 = [&] {
          if (q + 8 > extra_end || q + 8 > x + 4 + len) corrupt("bad zip64 field of record '" + name + "'");
          const uint64_t v = u32(&file[q]) | (static_cast<uint64_t>(u32(&file[q + 4])) << 32);
          q += 8;
          return v;
        };
        if (u32(c + 24) == 0xFFFFFFFF) size = next64();
        if (u32(c + 20) == 0xFFFFFFFF) next64();
        if (u32(c + 42) == 0xFFFFFFFF) offset = next64();
      }
      x += 4 + len;
    }
    if (!fits(offset, 30) || u32(&file[offset]) != 0x04034b50) corrupt("bad local header of record '" + name + "'");
    const uint64_t data = offset + 30 + u16(&file[offset + 26]) + u16(&file[offset + 28]);
    if (method == 0) {
      if (!fits(data, size)) corrupt("record '" + name + "' is truncated");
      uLong actual = crc32(0L, Z_NULL, 0);
      for (uint64_t done = 0; done < size;) {  // zlib takes 32-bit lengths
        const auto chunk = static_cast<uInt>(std::min<uint64_t>(size - done, 1u << 30));
        actual = crc32(actual, &file[data + done], chunk);
        done += chunk;
      }
      if (actual != crc) corrupt("record '" + name + "' does not match its CRC-32");
    }
    at += 46 + name_len + extra_len + comment_len;
  }
}

}  // namespace kfac::tool
