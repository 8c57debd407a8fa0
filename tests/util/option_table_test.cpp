// The option tables themselves: every field is well described, its text form reads back, and errors name the
// option and the closest valid spelling.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>

#include "kfac/kfac.h"
#include "support/helpers.h"

namespace kfac::test {
namespace {

using ::testing::HasSubstr;

TEST(OptionTable, EveryFieldHasAUniqueNameADocAndAValidDefault) {
  std::set<std::string> names;
  for (const auto& spec : option_specs()) {
    SCOPED_TRACE(spec.name);
    EXPECT_TRUE(names.insert(spec.name).second) << "two blocks share the name " << spec.name;
    EXPECT_FALSE(spec.doc.empty());
    EXPECT_EQ(spec.name.find_first_not_of("abcdefghijklmnopqrstuvwxyz_0123456789"), std::string::npos);
    EXPECT_NO_THROW(check_value(spec, spec.default_value));
    EXPECT_EQ(parse_value(spec, format_value(spec, spec.default_value)), spec.default_value);
  }
  // The method-specific blocks of every registered method are in the list.
  EXPECT_TRUE(names.count("spectrum_period") && names.count("trace_damping") && names.count("coarse_space"));
}

TEST(OptionTable, TheDefaultIsThatOfADefaultConstructedBlock) {
  const PreconditionerOptions defaults;
  for (const auto& spec : option_specs()) EXPECT_EQ(get_option(defaults, spec.name), spec.default_value) << spec.name;
  EXPECT_EQ(get_option(defaults, "refresh_period"), OptionValue(int64_t{10}));
  EXPECT_EQ(get_option(defaults, "damping_mode"), OptionValue(std::string("factored")));
  EXPECT_EQ(get_option(defaults, "factor_dtype"), OptionValue(std::monostate{}));
}

TEST(OptionTable, SetOptionReachesEveryBlockAndChecksTheRange) {
  PreconditionerOptions o;
  set_option(o, "refresh_period", int64_t{20});
  set_option(o, "damping", std::string("0.01"));           // the text form
  set_option(o, "spectrum_period", 3.0);                   // an integral real for an integer
  set_option(o, "coarse_space", std::string("residual"));  // a global stage's own block
  set_option(o, "factor_dtype", std::string("float64"));
  EXPECT_EQ(o.refresh_period(), 20);
  EXPECT_EQ(o.damping(), 0.01);
  EXPECT_EQ(o.get<EigenCorrectedOptions>().spectrum_period(), 3);
  EXPECT_EQ(o.get<TwoLevelOptions>().coarse_space(), CoarseSpace::Residual);
  EXPECT_EQ(o.factor_dtype(), c10::optional<c10::ScalarType>(c10::kDouble));
  set_option(o, "factor_dtype", std::monostate{});
  EXPECT_FALSE(o.factor_dtype().has_value());

  EXPECT_THAT(error_of([&] { set_option(o, "refresh_period", int64_t{0}); }),
              HasSubstr("refresh_period must be >= 1, got 0"));
  EXPECT_THAT(error_of([&] { set_option(o, "stats_fraction", 1.5); }),
              HasSubstr("stats_fraction must be in (0, 1], got 1.5"));
  EXPECT_THAT(error_of([&] { set_option(o, "refresh_period", 2.5); }), HasSubstr("refresh_period must be a whole"));
  EXPECT_THAT(error_of([&] { set_option(o, "damping", std::string("nan")); }),
              HasSubstr("damping must be a finite number, got 'nan'"));
  EXPECT_THAT(error_of([&] { set_option(o, "refresh_perod", int64_t{3}); }),
              HasSubstr("unknown option 'refresh_perod'; valid: method, "));
  EXPECT_THAT(error_of([&] { set_option(o, "refresh_perod", int64_t{3}); }),
              HasSubstr("did you mean 'refresh_period'?"));
  EXPECT_THAT(error_of([&] { set_option(o, "damping_mode", std::string("eigne")); }),
              HasSubstr("unknown damping_mode 'eigne'; valid: factored, eigen; did you mean 'eigen'?"));
  EXPECT_EQ(o.refresh_period(), 20) << "a refused value leaves the option as it was";
}

TEST(EnumNames, OneFacilityForEveryEnum) {
  EXPECT_EQ(to_string(DampingMode::Eigen), "eigen");
  EXPECT_EQ(parse_enum<CoarseCombine>("balanced"), CoarseCombine::Balanced);
  EXPECT_EQ(enum_choices<CoarseMatrix>(), (std::vector<std::string>{"exact", "kronecker"}));
  EXPECT_THAT(error_of([] { parse_enum<FisherType>("sampeld"); }),
              HasSubstr("unknown Fisher type 'sampeld'; valid: sampled, empirical, exact; did you mean 'sampled'?"));
  EXPECT_EQ(closest_spelling("zzzzzz", {"kfac", "ekfac"}), "") << "nothing is close";
  std::ostringstream s;
  s << TraceDamping::TraceRelative;
  EXPECT_EQ(s.str(), "trace-relative");
}

TEST(OptionTable, EqualityAndDifferencesCoverEveryOptionInEffect) {
  const auto a = PreconditionerOptions().method("ekfac");
  auto b = a;
  EXPECT_EQ(a, b);
  b.with(EigenCorrectedOptions().spectrum_period(4));
  EXPECT_NE(a, b);
  const auto changes = option_differences(option_records(a), b.refresh_period(30));
  EXPECT_THAT(changes, ::testing::UnorderedElementsAre("refresh_period: 10 (saved) -> 30 (now)",
                                                       "spectrum_period: 1 (saved) -> 4 (now)"));
  // A block that another method reads does not count for this one.
  EXPECT_EQ(PreconditionerOptions(), PreconditionerOptions().with(EigenCorrectedOptions().spectrum_period(4)));
}

TEST(OptionTable, AUserMethodBringsItsOwnBlock) {
  struct ShrinkOptions {
    static const OptionTable<ShrinkOptions>& table() {
      static const OptionTable<ShrinkOptions> t("shrink", "test method",
                                                {field<ShrinkOptions>(KFAC_FIELD(ShrinkOptions, shrinkage),
                                                                      "Shrinkage toward I", bounded(between(0, 1)))});
      return t;
    }
    TORCH_ARG(double, shrinkage) = 0.5;
  };
  register_method("shrink-kfac", [](CurvatureContext c) { return make_curvature("kfac", std::move(c)); },
                  {&ShrinkOptions::table()});
  PreconditionerOptions o;
  o.method("shrink-kfac");
  set_option(o, "shrinkage", 0.25);
  EXPECT_EQ(o.get<ShrinkOptions>().shrinkage(), 0.25);
  EXPECT_THAT(error_of([&] { set_option(o, "shrinkage", 2.0); }), HasSubstr("shrinkage must be in [0, 1], got 2"));
  const auto records = option_records(o);
  EXPECT_TRUE(std::any_of(records.begin(), records.end(), [](const OptionRecord& r) {
    return r.block == "shrink" && r.name == "shrinkage" && r.value == OptionValue(0.25);
  }));
}

}  // namespace
}  // namespace kfac::test
