#include "kfac/layers/module_config.h"

#include <sstream>

#include "kfac/errors.h"

namespace kfac {

ModuleConfig& ModuleConfig::set(const std::string& key, Value value) {
  values_[key] = std::move(value);
  return *this;
}

ModuleConfig& ModuleConfig::set(const std::string& key, at::Tensor tensor) {
  if (tensor.defined()) tensors_[key] = std::move(tensor);
  return *this;
}

at::Tensor ModuleConfig::tensor(const std::string& key) const {
  const auto it = tensors_.find(key);
  return it == tensors_.end() ? at::Tensor() : it->second;
}

bool ModuleConfig::flag(const std::string& key, bool fallback) const {
  const auto it = values_.find(key);
  if (it == values_.end()) return fallback;
  const auto* b = std::get_if<bool>(&it->second);
  const auto* i = std::get_if<int64_t>(&it->second);
  KFAC_CHECK(b || i, "module setting '", key, "' must be a flag, got ", show(key));
  return b ? *b : *i != 0;
}

int64_t ModuleConfig::integer(const std::string& key, int64_t fallback) const {
  const auto it = values_.find(key);
  if (it == values_.end()) return fallback;
  const auto* i = std::get_if<int64_t>(&it->second);
  KFAC_CHECK(i != nullptr, "module setting '", key, "' must be an integer, got ", show(key));
  return *i;
}

double ModuleConfig::real(const std::string& key, double fallback) const {
  const auto it = values_.find(key);
  if (it == values_.end()) return fallback;
  const auto* d = std::get_if<double>(&it->second);
  const auto* i = std::get_if<int64_t>(&it->second);
  KFAC_CHECK(d || i, "module setting '", key, "' must be a number, got ", show(key));
  return d ? *d : static_cast<double>(*i);
}

std::string ModuleConfig::word(const std::string& key) const {
  const auto it = values_.find(key);
  if (it == values_.end()) return "";
  const auto* s = std::get_if<std::string>(&it->second);
  return s ? *s : "";
}

std::vector<int64_t> ModuleConfig::integers(const std::string& key, size_t n, int64_t fallback) const {
  const auto it = values_.find(key);
  if (it == values_.end()) return std::vector<int64_t>(n, fallback);
  if (const auto* i = std::get_if<int64_t>(&it->second)) return std::vector<int64_t>(n, *i);
  const auto* list = std::get_if<std::vector<int64_t>>(&it->second);
  KFAC_CHECK(list != nullptr && (list->size() == n || list->size() == 1), "module setting '", key, "' must be ", n,
             " integers, got ", show(key));
  return list->size() == n ? *list : std::vector<int64_t>(n, list->front());
}

std::string ModuleConfig::show(const std::string& key) const {
  const auto it = values_.find(key);
  if (it == values_.end()) return tensors_.count(key) ? "a tensor" : "None";
  std::ostringstream out;
  std::visit(
      [&](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, bool>) {
          out << (v ? "True" : "False");
        } else if constexpr (std::is_same_v<T, std::string>) {
          out << "'" << v << "'";
        } else if constexpr (std::is_same_v<T, std::vector<int64_t>>) {
          out << "(";
          for (size_t i = 0; i < v.size(); ++i) out << (i ? ", " : "") << v[i];
          out << (v.size() == 1 ? ",)" : ")");
        } else {
          out << v;
        }
      },
      it->second);
  return out.str();
}

}  // namespace kfac
