// libFuzzer harness: the IDX header parser either describes exactly the bytes it was given or throws DataError.
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "../../tools/kfac/data_parsers.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::vector<unsigned char> bytes(data, data + size);
  try {
    const auto v = kfac::tool::parse_idx(bytes, "fuzz.idx");
    size_t product = 1;
    for (auto d : v.shape) product *= static_cast<size_t>(d);
    if (v.shape.empty() || v.shape[0] == 0 || product != v.count || v.offset + v.count != size) std::abort();
    volatile unsigned char last = v.count ? bytes[v.offset + v.count - 1] : 0;  // in bounds
    (void)last;
  } catch (const kfac::tool::DataError&) {
  }
  return 0;
}
