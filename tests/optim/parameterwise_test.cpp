// What Muon, Shampoo and SOAP share through ParameterwiseOptimizer, checked for each: a checkpoint resumes bit for
// bit, a non-finite gradient or update changes nothing and says so, and a checkpoint of another method or model is
// refused by name.
#include <gtest/gtest.h>
#include <torch/serialize/archive.h>
#include <torch/torch.h>

#include <functional>

#include "kfac/kfac.h"
#include "support/helpers.h"

namespace kfac::test {
namespace {

struct Method {
  std::string name;
  std::function<std::unique_ptr<ParameterwiseOptimizer>(torch::nn::Sequential&)> make;
};

std::vector<Method> methods() {
  return {{"muon",
           [](torch::nn::Sequential& net) {
             return std::make_unique<Muon>(muon_groups(muon_split(*net), MuonOptions(0.02), 1e-3));
           }},
          {"shampoo",
           [](torch::nn::Sequential& net) {
             return std::make_unique<Shampoo>(net->parameters(), ShampooOptions(1e-2).precondition_frequency(2));
           }},
          {"soap", [](torch::nn::Sequential& net) {
             return std::make_unique<Soap>(net->parameters(), SoapOptions(1e-2).precondition_frequency(2));
           }}};
}

torch::nn::Sequential small_net() {
  torch::manual_seed(11);
  return torch::nn::Sequential(torch::nn::Linear(6, 8), torch::nn::Functional(torch::tanh), torch::nn::Linear(8, 8),
                               torch::nn::Functional(torch::tanh), torch::nn::Linear(8, 3));
}

void train(torch::nn::Sequential& net, ParameterwiseOptimizer& opt, int from, int to) {
  for (int step = from; step < to; ++step) {
    torch::manual_seed(100 + step);
    const auto x = torch::randn({16, 6});
    net->zero_grad();
    net->forward(x).square().mean().backward();
    opt.step();
  }
}

std::string saved(const ParameterwiseOptimizer& opt) {
  torch::serialize::OutputArchive archive;
  opt.save(archive);
  std::ostringstream out;
  archive.save_to(out);
  return out.str();
}
void restore(ParameterwiseOptimizer& opt, const std::string& bytes) {
  torch::serialize::InputArchive archive;
  std::istringstream in(bytes);
  archive.load_from(in);
  opt.load(archive);
}

TEST(ParameterwiseOptimizers, ResumeFromACheckpointIsBitwise) {
  for (const auto& method : methods()) {
    auto straight = small_net();
    auto opt = method.make(straight);
    train(straight, *opt, 0, 7);

    auto first = small_net();
    auto opt1 = method.make(first);
    train(first, *opt1, 0, 3);  // stops between refreshes
    const auto bytes = saved(*opt1);
    std::stringstream weights;
    torch::save(first, weights);

    auto resumed = small_net();
    torch::load(resumed, weights);
    auto opt2 = method.make(resumed);
    restore(*opt2, bytes);
    EXPECT_EQ(opt2->steps_taken(), 3);
    train(resumed, *opt2, 3, 7);
    const auto a = straight->parameters(), b = resumed->parameters();
    for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(a[i].equal(b[i])) << method.name << " parameter " << i;
  }
}

TEST(ParameterwiseOptimizers, NonFiniteGradientOrUpdateChangesNothing) {
  for (const auto& method : methods()) {
    auto net = small_net();
    auto opt = method.make(net);
    train(net, *opt, 0, 3);
    std::vector<at::Tensor> before;
    for (const auto& p : net->parameters()) before.push_back(p.detach().clone());
    const auto state_of = [&] {
      std::vector<std::pair<std::string, at::Tensor>> all;
      for (size_t g = 0; g < opt->param_groups().size(); ++g)
        for (size_t i = 0; i < opt->param_groups()[g].params().size(); ++i)
          for (const auto& [name, t] : opt->parameter_state(g, i)) all.emplace_back(name, t.clone());
      return all;
    };
    const auto state = state_of();

    net->zero_grad();
    net->forward(torch::randn({4, 6})).square().mean().backward();
    net->parameters()[2].mutable_grad()[0][0] = std::nan("");
    opt->step();
    EXPECT_TRUE(opt->last_stats().skipped) << method.name;
    ASSERT_FALSE(opt->last_stats().messages.empty());
    const auto& message = opt->last_stats().messages.back();  // names the parameter (its index is the method's)
    EXPECT_NE(message.find("non-finite gradient in parameter"), std::string::npos) << method.name << ": " << message;
    EXPECT_NE(message.find("[8, 8]; " + method.name + " skipped the step"), std::string::npos) << message;

    // A finite gradient whose update overflows: skipped too, by the check of the new values.
    net->zero_grad();
    net->forward(torch::randn({4, 6})).square().mean().backward();
    for (auto& group : opt->param_groups()) group.options().set_lr(1e300);
    for (auto& p : net->parameters()) p.mutable_grad().mul_(1e30);
    opt->step();
    EXPECT_TRUE(opt->last_stats().skipped) << method.name;
    EXPECT_NE(opt->last_stats().messages.back().find("is not finite"), std::string::npos) << method.name;

    EXPECT_EQ(opt->steps_taken(), 3) << method.name;
    const auto params = net->parameters();
    for (size_t i = 0; i < params.size(); ++i) EXPECT_TRUE(params[i].equal(before[i])) << method.name;
    const auto after = state_of();
    ASSERT_EQ(after.size(), state.size()) << method.name;
    for (size_t k = 0; k < after.size(); ++k)
      EXPECT_TRUE(after[k].second.equal(state[k].second)) << method.name << " state " << after[k].first;
  }
}

TEST(ParameterwiseOptimizers, ACheckpointOfAnotherMethodOrModelIsRefused) {
  auto net = small_net();
  Muon muon(muon_groups(muon_split(*net), MuonOptions(), 1e-3));
  Soap soap(net->parameters());
  try {
    restore(soap, saved(muon));
    FAIL();
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what_without_backtrace()).find("holds a muon optimizer's state, not soap's"),
              std::string::npos);
  }
  auto other = torch::nn::Sequential(torch::nn::Linear(6, 9), torch::nn::Linear(9, 8), torch::nn::Linear(8, 3));
  Soap other_soap(other->parameters());
  try {
    restore(other_soap, saved(soap));
    FAIL();
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what_without_backtrace()).find("has shape [8, 6]: it is another model's"),
              std::string::npos)
        << e.what_without_backtrace();
  }
}

}  // namespace
}  // namespace kfac::test
