#include "util/serialize.h"

#include <torch/serialize/archive.h>

#include "kfac/errors.h"

namespace kfac {

c10::IValue read_value(torch::serialize::InputArchive& archive, const std::string& key) {
  c10::IValue v;
  KFAC_CHECK(archive.try_read(key, v), "checkpoint has no entry '", key, "'; it was not written by this library");
  return v;
}

void write_tensors(torch::serialize::OutputArchive& archive, const std::string& prefix,
                   const std::vector<at::Tensor>& tensors) {
  for (size_t i = 0; i < tensors.size(); ++i)
    if (tensors[i].defined()) archive.write(prefix + std::to_string(i), tensors[i]);
}

std::vector<at::Tensor> read_tensors(torch::serialize::InputArchive& archive, const std::string& prefix,
                                     const std::vector<at::Tensor>& like, const std::string& what) {
  std::vector<at::Tensor> out(like.size());
  for (size_t i = 0; i < like.size(); ++i) {
    at::Tensor t;
    if (!archive.try_read(prefix + std::to_string(i), t)) continue;
    KFAC_CHECK(t.sizes() == like[i].sizes(), "checkpoint: ", what, " ", i, " has shape ", t.sizes(),
               " but this model needs ", like[i].sizes(), "; the checkpoint was written for a different model");
    out[i] = t.to(like[i].options());
  }
  return out;
}

void write_nested(torch::serialize::OutputArchive& archive, const std::string& key,
                  const std::function<void(torch::serialize::OutputArchive&)>& save) {
  torch::serialize::OutputArchive nested(archive.compilation_unit());
  save(nested);
  archive.write(key, nested);
}

void read_nested(torch::serialize::InputArchive& archive, const std::string& key,
                 const std::function<void(torch::serialize::InputArchive&)>& load) {
  torch::serialize::InputArchive nested;
  archive.read(key, nested);
  load(nested);
}

}  // namespace kfac
