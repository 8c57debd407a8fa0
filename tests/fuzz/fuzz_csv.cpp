// libFuzzer harness: the CSV parser either returns consistent data or throws DataError; nothing else (no crash, no
// undefined behaviour under -fsanitize=address,undefined, no other exception). Run by scripts/fuzz.sh.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "../../tools/kfac/data_parsers.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto d = kfac::tool::parse_csv(std::string(reinterpret_cast<const char*>(data), size), "fuzz.csv");
    if (d.labels.empty() || d.pixels.size() != d.labels.size() * 784) std::abort();
    for (auto l : d.labels)
      if (l < 0 || l >= kfac::tool::kClasses) std::abort();
    for (float v : d.pixels)
      if (!(v >= 0 && v <= 1)) std::abort();
  } catch (const kfac::tool::DataError&) {
  }
  return 0;
}
