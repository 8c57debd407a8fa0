// A module as a layer kind reads it, whichever front end made it: its tensors and its settings, by the names
// torch.nn gives them (weight, bias, stride, padding, eps, ...). The LibTorch stand-ins (kfac::nn) fill one from
// their options, the Python adapter from the module's attributes; the kind's definition (kind_definition.h) then
// decides, once for both, whether it has a block for it.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

namespace kfac {

class ModuleConfig {
 public:
  /// A setting: a flag, an integer, a real, a word ("same", "zeros") or integers (a kernel's stride).
  using Value = std::variant<bool, int64_t, double, std::string, std::vector<int64_t>>;

  ModuleConfig& set(const std::string& key, Value value);
  ModuleConfig& set(const std::string& key, at::Tensor tensor);

  bool has(const std::string& key) const { return values_.count(key) > 0 || tensors_.count(key) > 0; }
  /// The tensor under `key`; undefined when absent (a module without bias).
  at::Tensor tensor(const std::string& key) const;
  bool flag(const std::string& key, bool fallback) const;
  int64_t integer(const std::string& key, int64_t fallback) const;
  double real(const std::string& key, double fallback) const;
  /// The word under `key`, or "" when the setting is absent or not a word.
  std::string word(const std::string& key) const;
  /// `n` integers: a list of n, or one integer for all (as torch.nn takes `stride=2`); `fallback` when absent.
  std::vector<int64_t> integers(const std::string& key, size_t n, int64_t fallback) const;
  /// The setting as its module would print it ("2", "(1, 1)", "'same'", "None" when absent), for refusals.
  std::string show(const std::string& key) const;

  const std::map<std::string, Value>& values() const { return values_; }
  const std::map<std::string, at::Tensor>& tensors() const { return tensors_; }

 private:
  std::map<std::string, Value> values_;
  std::map<std::string, at::Tensor> tensors_;
};

}  // namespace kfac
