// One table of module configurations (kind_configurations.json) and what the layer kinds decide for each, checked
// here through kfac::nn's stand-ins and in python/tests/test_layer_kinds.py through torch.nn's modules: the two front
// ends accept and refuse alike, for the same reasons, because both ask the kind (kfac/layers/kind_definition.h).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "kfac/kfac.h"

namespace kfac::test {
namespace {

using nlohmann::json;

json table() {
  std::ifstream in(std::string(KFAC_TEST_DATA_DIR) + "/layers/kind_configurations.json");
  EXPECT_TRUE(in.good()) << "tests/layers/kind_configurations.json";
  return json::parse(in)["cases"];
}

template <size_t D>
torch::ExpandingArray<D> array(const json& v) {
  if (v.is_number()) return torch::ExpandingArray<D>(v.get<int64_t>());
  return torch::ExpandingArray<D>(v.get<std::vector<int64_t>>());
}

template <size_t D>
torch::nn::ConvOptions<D> conv_options(const json& a) {
  torch::nn::ConvOptions<D> o(a["in_channels"], a["out_channels"], array<D>(a["kernel_size"]));
  if (a.contains("stride")) o.stride(array<D>(a["stride"]));
  if (a.contains("dilation")) o.dilation(array<D>(a["dilation"]));
  if (a.contains("groups")) o.groups(a["groups"].get<int64_t>());
  if (a.contains("bias")) o.bias(a["bias"].get<bool>());
  if (a.contains("padding")) {
    const auto& p = a["padding"];
    if (p == "same")
      o.padding(torch::kSame);
    else if (p == "valid")
      o.padding(torch::kValid);
    else
      o.padding(array<D>(p));
  }
  if (a.contains("padding_mode")) {
    const auto mode = a["padding_mode"].get<std::string>();
    if (mode == "reflect") o.padding_mode(torch::kReflect);
    if (mode == "replicate") o.padding_mode(torch::kReplicate);
    if (mode == "circular") o.padding_mode(torch::kCircular);
  }
  return o;
}

std::vector<int64_t> shape(const json& v) {
  return v.is_number() ? std::vector<int64_t>{v.get<int64_t>()} : v.get<std::vector<int64_t>>();
}

/// The kfac::nn stand-in of each kind, from torch.nn's constructor keywords.
const std::map<std::string, std::function<torch::nn::AnyModule(const json&)>>& builders() {
  static const std::map<std::string, std::function<torch::nn::AnyModule(const json&)>> b{
      {"Linear",
       [](const json& a) {
         return torch::nn::AnyModule(kfac::nn::Linear(
             torch::nn::LinearOptions(a["in_features"], a["out_features"]).bias(a.value("bias", true))));
       }},
      {"Conv2d", [](const json& a) { return torch::nn::AnyModule(kfac::nn::Conv2d(conv_options<2>(a))); }},
      {"Conv1d", [](const json& a) { return torch::nn::AnyModule(kfac::nn::Conv1d(conv_options<1>(a))); }},
      {"Embedding",
       [](const json& a) {
         torch::nn::EmbeddingOptions o(a["num_embeddings"], a["embedding_dim"]);
         if (a.contains("padding_idx")) o.padding_idx(a["padding_idx"].get<int64_t>());
         if (a.contains("max_norm")) o.max_norm(a["max_norm"].get<double>());
         o.sparse(a.value("sparse", false));
         return torch::nn::AnyModule(kfac::nn::Embedding(o));
       }},
      {"LayerNorm",
       [](const json& a) {
         return torch::nn::AnyModule(kfac::nn::LayerNorm(torch::nn::LayerNormOptions(shape(a["normalized_shape"]))
                                                             .eps(a.value("eps", 1e-5))
                                                             .elementwise_affine(a.value("elementwise_affine", true))));
       }},
      {"BatchNorm2d",
       [](const json& a) {
         return torch::nn::AnyModule(
             kfac::nn::BatchNorm2d(torch::nn::BatchNormOptions(a["num_features"])
                                       .affine(a.value("affine", true))
                                       .track_running_stats(a.value("track_running_stats", true))));
       }},
      {"GroupNorm",
       [](const json& a) {
         return torch::nn::AnyModule(kfac::nn::GroupNorm(
             torch::nn::GroupNormOptions(a["num_groups"], a["num_channels"]).affine(a.value("affine", true))));
       }},
      {"RMSNorm",
       [](const json& a) {
         kfac::nn::RMSNormOptions o(shape(a["normalized_shape"]));
         if (a.contains("eps")) o.eps(a["eps"].get<double>());
         return torch::nn::AnyModule(kfac::nn::RMSNorm(o.elementwise_affine(a.value("elementwise_affine", true))));
       }},
  };
  return b;
}

TEST(KindParity, TheStandInsDecideAsTheTableSays) {
  for (const auto& c : table()) {
    const auto kind = c["kind"].get<std::string>();
    const auto what = kind + " " + c["args"].dump();
    ASSERT_EQ(builders().count(kind), 1U) << "no kfac::nn builder for " << kind;
    if (c.contains("refused")) {
      try {
        builders().at(kind)(c["args"]);
        ADD_FAILURE() << what << ": accepted, the table says refused";
      } catch (const c10::Error& e) {
        EXPECT_NE(std::string(e.what()).find(c["refused"].get<std::string>()), std::string::npos)
            << what << ": " << e.what();
      }
      continue;
    }
    torch::nn::Sequential model;
    model->push_back(builders().at(kind)(c["args"]));
    const auto layers = find_layers(*model);
    ASSERT_EQ(layers.size(), 1U) << what;
    EXPECT_EQ(layers[0].kind->kind_name(), kind) << what;
  }
}

TEST(KindParity, EveryKindIsInTheTableAndNamesItsStandIn) {
  std::set<std::string> accepted;
  for (const auto& c : table())
    if (!c.contains("refused")) accepted.insert(c["kind"].get<std::string>());
  for (const auto& kind : registered_layer_kinds()) {
    EXPECT_EQ(accepted.count(kind), 1U) << kind << " has no accepted configuration in kind_configurations.json";
    const auto d = kind_definition(kind);
    EXPECT_FALSE(d.python_modules.empty()) << kind;
    if (!d.libtorch_module.empty()) {  // the report points a stock LibTorch module to its stand-in
      EXPECT_EQ(replacement_hint(d.libtorch_module), "use " + d.libtorch_stand_in) << kind;
    }
  }
}

TEST(KindParity, AStockModuleTappedByHandGetsTheKindsDecision) {
  EXPECT_EQ(
      conv2d_layer("c", *torch::nn::Conv2d(torch::nn::Conv2dOptions(2, 3, 3).padding(torch::kSame))).kind->kind_name(),
      "Conv2d");
  try {
    conv2d_layer("c", *torch::nn::Conv2d(torch::nn::Conv2dOptions(2, 4, 3).groups(2)));
    FAIL() << "expected a refusal";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("Conv2d 'c': groups 2: K-FAC supports groups 1 only"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace kfac::test
