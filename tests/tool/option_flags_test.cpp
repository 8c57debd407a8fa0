// The tool's flags, TOML keys and JSON come from the option tables: each form reads back to the same options.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "kfac/kfac.h"
#include "tools/kfac/option_flags.h"

namespace kfac::test {
namespace {

// Options with a value off its default in every block, the method-specific ones included.
PreconditionerOptions unusual() {
  auto o = PreconditionerOptions()
               .method("tekfac")
               .damping(0.02)
               .damping_mode(DampingMode::Eigen)
               .stats_period(3)
               .refresh_period(7)
               .ema_decay(0.5)
               .background_refresh(true)
               .fisher(FisherType::Empirical)
               .fisher_samples(2)
               .stats_fraction(0.25)
               .retain_statistics(true)
               .factor_dtype(c10::kDouble)
               .inverse_method(InverseMethod::Eigen)
               .eigenvalue_floor(1e-9)
               .max_consecutive_failures(5)
               .grad_worker_fraction(0.5)
               .global_stage("two-level");
  o.with(two_level(CoarseSpace::Residual).krylov(true).coarse_damping(0.3).coarse_period(4));
  o.with(EigenCorrectedOptions().spectrum_period(6).reset_spectrum(false));
  o.with(TraceDampingOptions().trace_damping(TraceDamping::TraceRelative));
  return o;
}

PreconditionerOptions parse_flags(std::vector<std::string> args) {
  CLI::App app;
  PreconditionerOptions o;
  o.method("tekfac");
  tool::add_preconditioner_flags(&app, o);
  std::reverse(args.begin(), args.end());  // CLI11 takes the arguments last first
  app.parse(args);
  return o;
}

TEST(OptionFlags, JsonReadsBackToTheSameOptions) {
  const auto o = unusual();
  const auto json = tool::options_json(o);
  EXPECT_EQ(json["schedule"]["refresh_period"], 7);
  EXPECT_EQ(json["ekfac"]["spectrum_period"], 6);
  EXPECT_EQ(json["numerics"]["factor_dtype"], "float64");
  EXPECT_TRUE(json["two_level"]["coarse_matrix"].is_null());
  PreconditionerOptions back;
  tool::apply_options_json(back, json);
  EXPECT_EQ(back, o);
  EXPECT_NE(back, PreconditionerOptions(o).refresh_period(8)) << "the comparison sees a change";
}

TEST(OptionFlags, TomlReadsBackThroughTheFlags) {
  const auto o = unusual();
  const std::string path = ::testing::TempDir() + "/kfac_options.toml";
  std::ofstream(path) << tool::options_toml(o, "train");
  CLI::App app;
  PreconditionerOptions back;
  back.method("tekfac");  // --method is the tool's own flag
  auto* train = app.add_subcommand("train");
  tool::add_preconditioner_flags(train, back);
  app.set_config("--config");
  app.allow_config_extras(CLI::config_extras_mode::error);
  app.parse(std::vector<std::string>{"train", path, "--config"});
  std::remove(path.c_str());
  EXPECT_EQ(back, o) << tool::options_toml(back, "train");
}

TEST(OptionFlags, FlagsAndTheirEarlierSpellings) {
  const auto o = parse_flags({"--damping-mode", "eigen", "--inverse", "eigen", "--keep-spectrum", "--two-level",
                              "block-tridiagonal", "--factor-dtype", "model", "--spectrum-period", "2"});
  EXPECT_EQ(o.damping_mode(), DampingMode::Eigen);
  EXPECT_EQ(o.inverse_method(), InverseMethod::Eigen);
  EXPECT_FALSE(o.get<EigenCorrectedOptions>().reset_spectrum());
  EXPECT_EQ(o.global_stage(), "block-tridiagonal");
  EXPECT_FALSE(o.factor_dtype().has_value());
  EXPECT_EQ(o.get<EigenCorrectedOptions>().spectrum_period(), 2);
  EXPECT_TRUE(parse_flags({"--background-refresh"}).background_refresh());
  EXPECT_FALSE(parse_flags({"--background-refresh", "--no-background-refresh"}).background_refresh());
}

TEST(OptionFlags, ABadValueNamesTheFlagAndTheRange) {
  auto message = [](std::vector<std::string> args) {
    try {
      parse_flags(std::move(args));
    } catch (const CLI::ParseError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_THAT(message({"--refresh-period", "0"}),
              ::testing::HasSubstr("'0' is out of range (it must be a whole number from 1"));
  EXPECT_THAT(message({"--damping", "-1"}), ::testing::HasSubstr("it must be a number > 0"));
  EXPECT_THAT(message({"--damping-mode", "eigne"}), ::testing::HasSubstr("eigne not in {factored,eigen}"));
}

}  // namespace
}  // namespace kfac::test
