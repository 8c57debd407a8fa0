// libFuzzer harness: the checkpoint reader (tools/kfac/run_checkpoint.cpp, load_run) on arbitrary bytes. The zip
// checker either accepts them or throws c10::Error naming the file; what it accepts then goes through LibTorch's
// archive reader and the records load_run reads first. Every outcome must be an exception: never a crash, an abort
// or (in our code, which is instrumented) an out-of-bounds read. Seeds: real checkpoints written by scripts/fuzz.sh.
#include <torch/torch.h>

#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "../../tools/kfac/zip_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    kfac::tool::verify_zip_bytes(std::vector<unsigned char>(data, data + size), "fuzz.pt");
  } catch (const c10::Error&) {
    return 0;
  }
  try {
    std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
    torch::serialize::InputArchive archive;
    archive.load_from(in);
    c10::IValue v;
    if (archive.try_read("run", v)) (void)v.isString();
    if (archive.try_read("next_step", v)) (void)v.isInt();
    torch::Tensor history;
    if (archive.try_read("history", history)) (void)history.sum();
    torch::serialize::InputArchive model;
    archive.try_read("model", model);
  } catch (const std::exception&) {
  }
  return 0;
}
