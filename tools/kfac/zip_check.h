// Integrity of a checkpoint file: LibTorch's archives are zip files whose records carry CRC-32s, but LibTorch 1.13
// reads them without checking, so a flipped byte inside a tensor record loads silently. verify_zip_crcs() reads the
// central directory and checks every stored record's CRC-32, naming the first record that does not match.
#pragma once

#include <string>
#include <vector>

namespace kfac::tool {

/// Throws (c10::Error) naming `path` and the record when the file is not a readable zip archive or a record's data
/// does not match its CRC-32. Stored (uncompressed) records are checked, as LibTorch writes them.
void verify_zip_crcs(const std::string& path);
/// The same on the file's bytes (the fuzz harness, tests); `path` names it in the error.
void verify_zip_bytes(const std::vector<unsigned char>& file, const std::string& path);

}  // namespace kfac::tool
