#include "kfac/preconditioner/options.h"

#include <regex>

#include <map>
#include <mutex>

#include "kfac/curvature/registry.h"
#include "kfac/global/stage_registry.h"
#include "kfac/errors.h"

namespace kfac {

const OptionTable<PreconditionerOptions>& PreconditionerOptions::table() {
  using O = PreconditionerOptions;
  static const OptionTable<O> t("", "The curvature method",
                                {field<O>(KFAC_FIELD(O, method),
                                          "Curvature method, by registered name (kfac, ekfac, tkfac, tekfac, ...)")});
  return t;
}

const OptionTable<ScheduleOptions>& ScheduleOptions::table() {
  using O = ScheduleOptions;
  static const OptionTable<O> t(
      "schedule", "When statistics are updated and decompositions refreshed",
      {field<O>(KFAC_FIELD(O, stats_period), "Steps between statistics (factor) updates", bounded(at_least(1))),
       field<O>(KFAC_FIELD(O, refresh_period), "Steps between refreshes of the inverses or eigendecompositions",
                bounded(at_least(1))),
       field<O>(KFAC_FIELD(O, ema_decay),
                "Cap ε of the factor EMA: the k-th statistics update uses decay min(1 - 1/k, ε)",
                bounded(between(0, 1, false, true))),
       field<O>(KFAC_FIELD(O, background_refresh),
                "Recompute decompositions on a worker thread, adopted at the next scheduled refresh (staleness at "
                "most 2·refresh_period − 1 steps; one process only)")});
  return t;
}

const OptionTable<DistributedOptions>& DistributedOptions::table() {
  using O = DistributedOptions;
  static const OptionTable<O> t(
      "distributed", "How the work is shared among the ranks of a data-parallel run",
      {field<O>(KFAC_FIELD(O, grad_worker_fraction),
                "Fraction of ranks holding each layer's decompositions and preconditioning its gradient (KAISA's "
                "gradient workers): 1/ranks = memory-optimal, 1 = communication-optimal",
                bounded(between(0, 1, true, false)))});
  return t;
}

const OptionTable<FallbackOptions>& FallbackOptions::table() {
  using O = FallbackOptions;
  static const OptionTable<O> t(
      "fallback", "What the parameters that no layer kind covers get (listed by the registration report)",
      {field<O>(KFAC_FIELD(O, fallback),
                "identity (their raw gradient) or adam (g / (sqrt(v) + epsilon), v the bias-corrected EMA of g^2, "
                "times fallback_scale)"),
       field<O>(KFAC_FIELD(O, fallback_beta2), "Decay of the adam fallback's second-moment EMA",
                bounded(between(0, 1, false, true))),
       field<O>(KFAC_FIELD(O, fallback_epsilon), "epsilon of the adam fallback", bounded(positive())),
       field<O>(KFAC_FIELD(O, fallback_scale),
                "Multiplies the adam fallback's direction: the outer learning rate times this is Adam's learning "
                "rate for those parameters",
                bounded(positive()))});
  return t;
}

namespace {
struct MutableBlock {
  const OptionTableBase* table;
  void* data;
};

// The tables of the shared blocks with their place in PreconditionerOptions.
std::vector<MutableBlock> shared_blocks(PreconditionerOptions& o) {
  return {{&PreconditionerOptions::table(), &o},
          {&ScheduleOptions::table(), &o.schedule_options()},
          {&FisherOptions::table(), &o.fisher_options()},
          {&LayerOptions::table(), &o.layer_options()},
          {&DampingOptions::table(), &o.damping_options()},
          {&NumericsOptions::table(), &o.numerics_options()},
          {&DistributedOptions::table(), &o.distributed_options()},
          {&GlobalStageOptions::table(), &o.global_options()},
          {&FallbackOptions::table(), &o.fallback_options()}};
}

// The own blocks of the method and the global stage in effect (or, with `every`, of every registered one), each once.
std::vector<const OptionTableBase*> own_tables(const PreconditionerOptions& options, bool every) {
  std::vector<const OptionTableBase*> all;
  auto add = [&](const std::vector<const OptionTableBase*>& tables) {
    for (const auto* t : tables)
      if (std::find(all.begin(), all.end(), t) == all.end()) all.push_back(t);
  };
  if (every) {
    for (const auto& m : registered_methods()) add(method_option_tables(m));
    for (const auto& s : registered_global_stages()) add(global_stage_option_tables(s));
  } else {
    if (is_registered_method(options.method())) add(method_option_tables(options.method()));
    add(global_stage_option_tables(options.global_stage()));
  }
  return all;
}

// A default block per own table, for reading options that were never set.
const void* default_block(const OptionTableBase& table) {
  static std::mutex mutex;
  static std::map<const OptionTableBase*, std::unique_ptr<AnyOptionBlock>> defaults;
  std::lock_guard<std::mutex> lock(mutex);
  auto& d = defaults[&table];
  if (!d) d = table.make_default();
  return d->data();
}

std::vector<std::string> all_option_names() {
  std::vector<std::string> names;
  for (const auto& s : option_specs()) names.push_back(s.name);
  return names;
}
}  // namespace

std::vector<OptionBlockRef> option_blocks(const PreconditionerOptions& options, bool every_method) {
  std::vector<OptionBlockRef> out;
  for (const auto& b : shared_blocks(const_cast<PreconditionerOptions&>(options))) out.push_back({b.table, b.data});
  for (const auto* t : own_tables(options, every_method)) {
    const auto* stored = options.own_blocks().find(t->name());
    out.push_back({t, stored ? stored->data() : default_block(*t)});
  }
  return out;
}

std::vector<OptionSpec> option_specs() {
  std::vector<OptionSpec> specs;
  for (const auto& b : option_blocks(PreconditionerOptions(), /*every_method=*/true))
    for (const auto& s : b.table->specs()) specs.push_back(s);
  return specs;
}

OptionValue get_option(const PreconditionerOptions& options, const std::string& name) {
  for (const auto& b : option_blocks(options, true)) {
    const size_t i = b.table->find(name);
    if (i < b.table->specs().size()) return b.get(i);
  }
  throw_unknown_name("option", name, all_option_names());
}

void set_option(PreconditionerOptions& options, const std::string& name, const OptionValue& value) {
  auto blocks = shared_blocks(options);
  for (const auto* t : own_tables(options, true)) blocks.push_back({t, nullptr});
  for (auto& b : blocks) {
    const size_t i = b.table->find(name);
    if (i == b.table->specs().size()) continue;
    const auto v = coerce_value(b.table->specs()[i], value);
    check_value(b.table->specs()[i], v);
    void* data = b.data ? b.data : options.own_blocks().ensure(*b.table).data();
    b.table->set(data, i, v);
    return;
  }
  throw_unknown_name("option", name, all_option_names());
}

std::vector<OptionRecord> option_records(const PreconditionerOptions& options) {
  std::vector<OptionRecord> out;
  for (const auto& b : option_blocks(options))
    for (size_t i = 0; i < b.table->specs().size(); ++i)
      out.push_back({b.table->name(), b.table->specs()[i].name, b.get(i)});
  return out;
}

std::vector<std::string> option_differences(const std::vector<OptionRecord>& saved, const PreconditionerOptions& now) {
  std::vector<std::string> out;
  const auto current = option_records(now);
  const auto specs = option_specs();
  auto text = [&](const std::string& name, const OptionValue& v) {
    for (const auto& s : specs)
      if (s.name == name) return format_value(s, v);
    return std::string("?");
  };
  for (const auto& s : saved) {
    auto it = std::find_if(current.begin(), current.end(), [&](const OptionRecord& r) { return r.name == s.name; });
    if (it == current.end()) continue;  // another method's or stage's block: that option's own difference says it
    if (it->value != s.value)
      out.push_back(s.name + ": " + text(s.name, s.value) + " (saved) -> " + text(s.name, it->value) + " (now)");
  }
  for (const auto& c : current)
    if (std::none_of(saved.begin(), saved.end(), [&](const OptionRecord& r) { return r.name == c.name; }))
      out.push_back(c.name + ": not saved -> " + text(c.name, c.value) + " (now)");
  return out;
}

bool operator==(const PreconditionerOptions& a, const PreconditionerOptions& b) {
  const auto ra = option_records(a), rb = option_records(b);
  if (ra.size() != rb.size()) return false;
  for (size_t i = 0; i < ra.size(); ++i)
    if (ra[i].name != rb[i].name || ra[i].value != rb[i].value) return false;
  return true;
}

void validate(const PreconditionerOptions& o) {
  check_registered_method(o.method());
  check_registered_global_stage(o.global_stage());
  KFAC_CHECK(!o.factor_dtype() || *o.factor_dtype() == c10::kFloat || *o.factor_dtype() == c10::kDouble,
             "factor_dtype must be float32 or float64, got ", c10::toString(*o.factor_dtype()));
  for (const auto& b : option_blocks(o, /*every_method=*/true)) b.table->validate(b.data);  // set blocks too
  try {
    std::regex pattern(o.exclude());
  } catch (const std::regex_error& e) {
    KFAC_CHECK(false, "exclude '", o.exclude(), "' is not a regular expression (", e.what(),
               "); write alternatives with '|', e.g. 'embed|head'");
  }
  KFAC_CHECK(!(o.damping_mode() == DampingMode::Eigen && o.inverse_method() == InverseMethod::Cholesky),
             "inverse_method 'cholesky' cannot be combined with damping_mode 'eigen' (exact Tikhonov needs the "
             "eigendecomposition); use damping_mode 'factored' or inverse_method 'eigen'");
}

namespace presets {
PreconditionerOptions kfac_paper() {
  return PreconditionerOptions()
      .damping_mode(DampingMode::Factored)
      .stats_period(1)
      .refresh_period(20)
      .stats_fraction(1.0 / 8.0)
      .fisher(FisherType::Sampled);
}
PreconditionerOptions pytorch_ports() {
  return PreconditionerOptions().damping(1e-3).damping_mode(DampingMode::Eigen).stats_period(10).refresh_period(100);
}
}  // namespace presets

}  // namespace kfac
