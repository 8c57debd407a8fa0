#include "option_flags.h"

#include <c10/util/Exception.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <sstream>

#include "cli_checks.h"
#include "kfac/global/stage_registry.h"
#include "util/text.h"

namespace kfac::tool {

bool set_by_the_tool(const OptionSpec& spec) { return spec.name == "method" || spec.name == "seed"; }

namespace {
// Earlier spellings of some flags, still accepted.
const std::map<std::string, std::string> kAliases{{"inverse-method", "--inverse"},
                                                  {"no-reset-spectrum", "--keep-spectrum"}};

std::string names_of(const std::string& flag) {
  const auto alias = kAliases.find(flag);
  return "--" + flag + (alias == kAliases.end() ? "" : "," + alias->second);
}

// A library error in a flag's callback becomes CLI11's, so it is reported like any bad flag value.
void set_from_flag(PreconditionerOptions& options, const OptionSpec& spec, const OptionValue& value) {
  try {
    set_option(options, spec.name, value);
  } catch (const c10::Error& e) {
    throw CLI::ValidationError("--" + spec.cli_name(), e.what_without_backtrace());
  }
}

CLI::Validator bounds_check(const OptionSpec& spec) {
  const auto& b = *spec.bounds;
  if (spec.type == OptionType::Integer)
    return whole_in(b.has_low ? static_cast<int64_t>(b.low) + (b.low_open ? 1 : 0) : INT64_MIN,
                    b.has_high ? static_cast<int64_t>(b.high) - (b.high_open ? 1 : 0) : INT64_MAX);
  return real_in(b.has_low ? b.low : -kInf, b.has_high ? b.high : kInf, b.low_open, b.high_open);
}

}  // namespace

nlohmann::json option_json(const OptionValue& v) {
  struct Visit {
    nlohmann::json operator()(std::monostate) const { return nullptr; }
    nlohmann::json operator()(bool b) const { return b; }
    nlohmann::json operator()(int64_t i) const { return i; }
    nlohmann::json operator()(double d) const { return d; }
    nlohmann::json operator()(const std::string& s) const { return s; }
  };
  return std::visit(Visit{}, v);
}

namespace {

OptionValue from_json(const nlohmann::json& j) {
  if (j.is_null()) return std::monostate{};
  if (j.is_boolean()) return j.get<bool>();
  if (j.is_number_integer()) return j.get<int64_t>();
  if (j.is_number()) return j.get<double>();
  if (j.is_string()) return j.get<std::string>();
  throw std::invalid_argument("an option value must be null, a flag, a number or a name, got " + j.dump());
}
}  // namespace

void add_preconditioner_flags(CLI::App* app, PreconditionerOptions& options) {
  for (const auto& spec : option_specs()) {
    if (set_by_the_tool(spec)) continue;
    const auto flag = spec.cli_name();
    const auto default_text = format_value(spec, spec.default_value);
    if (spec.type == OptionType::Flag) {
      app->add_flag_callback(
          names_of(flag), [&options, spec] { set_from_flag(options, spec, true); },
          spec.doc + (default_text == "true" ? " (default)" : ""));
      app->add_flag_callback(
          names_of("no-" + flag), [&options, spec] { set_from_flag(options, spec, false); },
          "Turn off --" + flag + (default_text == "false" ? " (default)" : ""));
      continue;
    }
    auto* o = app->add_option_function<std::string>(
        names_of(flag), [&options, spec](const std::string& text) { set_from_flag(options, spec, text); },
        spec.doc + (spec.nullable ? " (" + spec.unset_text() + ": unset)" : ""));
    o->default_str(default_text);
    if (!spec.choices.empty()) {
      auto choices = spec.choices;
      if (spec.nullable) choices.push_back(spec.unset_text());
      o->check(CLI::IsMember(choices));
    } else if (spec.bounds) {
      o->check(bounds_check(spec));
    }
  }
  // --two-level SPACE: the earlier spelling of --global-stage and --coarse-space together.
  app->add_option_function<std::string>(
         "--two-level",
         [&options](const std::string& name) {
           auto stage = options.global_stage();
           apply_global_stage_spelling(name, stage, options.own_blocks());
           options.global_stage(stage);
         },
         "Global stage after the per-layer one: none, a two-level coarse space (nicolaides, spectral, residual, "
         "tselepidis) or block-tridiagonal (K-FAC only); also as --method kfac+SPACE")
      ->check(CLI::IsMember(global_stage_spellings()))
      ->default_str("none");
}

std::string block_flag(const OptionTableBase& table, const OptionSpec& spec) {
  static const std::vector<std::string> step_rule_flags{"lr", "momentum", "kl_clip", "weight_decay"};
  const bool taken = std::find(step_rule_flags.begin(), step_rule_flags.end(), spec.name) != step_rule_flags.end();
  return "--" + (taken ? table.name() + "-" : "") + spec.cli_name();
}

namespace {
// The flag of the real field `name` of `table`, writing into `target` (a double, or an optional one).
template <class Target>
void add_real_flag(CLI::App* app, const OptionTableBase& table, const std::string& name, Target& target,
                   const std::string& doc_suffix, const std::function<std::string(const OptionSpec&)>& default_text) {
  const auto field = table.find(name);
  TORCH_INTERNAL_ASSERT(field < table.specs().size(), "no field '", name, "' in the ", table.name(), " table");
  const auto& spec = table.specs()[field];
  TORCH_INTERNAL_ASSERT(spec.type == OptionType::Real, "a step-rule flag is a real: ", name);
  app->add_option_function<double>(
         "--" + spec.cli_name(), [&target](double v) { target = v; }, spec.doc + "; " + doc_suffix)
      ->check(bounds_check(spec))
      ->default_str(default_text(spec));
}
}  // namespace

void add_step_flag(CLI::App* app, const OptionTableBase& table, const std::string& name, std::optional<double>& target,
                   const std::string& defaults) {
  add_real_flag(app, table, name, target, "default " + defaults, [](const OptionSpec&) { return std::string("auto"); });
}

void add_step_flag(CLI::App* app, const OptionTableBase& table, const std::string& name, double& target,
                   const std::string& note) {
  add_real_flag(app, table, name, target, note,
                [](const OptionSpec& spec) { return format_value(spec, spec.default_value); });
}

void add_block_flags(CLI::App* app, const std::vector<std::pair<const OptionTableBase*, void*>>& blocks,
                     bool (*skip)(const OptionSpec&)) {
  std::vector<std::string> done;
  for (const auto& [table, _] : blocks)
    for (const auto& spec : table->specs()) {
      if (skip(spec) || std::find(done.begin(), done.end(), spec.name) != done.end()) continue;
      done.push_back(spec.name);
      // Where the name is, and each block's default, for the help.
      std::vector<std::pair<const OptionTableBase*, void*>> owners;
      std::vector<std::string> defaults;
      for (const auto& block : blocks) {
        const auto field = block.first->find(spec.name);
        if (field == block.first->specs().size()) continue;
        owners.push_back(block);
        defaults.push_back(block.first->name() + " " + format_value(spec, block.first->specs()[field].default_value));
      }
      const auto flag = block_flag(*table, spec);
      const auto set = [owners, spec, flag](const OptionValue& value) {
        try {
          check_value(spec, value);
          for (const auto& [t, data] : owners) t->set(data, t->find(spec.name), value);
        } catch (const c10::Error& e) {
          throw CLI::ValidationError(flag, e.what_without_backtrace());
        }
      };
      const auto help = spec.doc + " (default: " + join(defaults) + ")";
      if (spec.type == OptionType::Flag) {
        app->add_flag_callback(
            flag, [set] { set(true); }, help);
        app->add_flag_callback(
            "--no-" + flag.substr(2), [set] { set(false); }, "Turn off " + flag);
        continue;
      }
      auto* o = app->add_option_function<std::string>(
          flag,
          [set, spec, flag](const std::string& text) {
            OptionValue value;
            try {
              value = parse_value(spec, text);
            } catch (const c10::Error& e) {
              throw CLI::ValidationError(flag, e.what_without_backtrace());
            }
            set(value);
          },
          help);
      if (!spec.choices.empty())
        o->check(CLI::IsMember(spec.choices));
      else if (spec.bounds)
        o->check(bounds_check(spec));
    }
}

nlohmann::json options_json(const PreconditionerOptions& options) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& r : option_records(options)) {
    if (r.block.empty())
      out[r.name] = option_json(r.value);
    else
      out[r.block][r.name] = option_json(r.value);
  }
  return out;
}

void apply_options_json(PreconditionerOptions& options, const nlohmann::json& json) {
  for (const auto& [key, value] : json.items()) {
    if (value.is_object()) {
      for (const auto& [name, v] : value.items()) set_option(options, name, from_json(v));
    } else {
      set_option(options, key, from_json(value));
    }
  }
}

std::string options_toml(const PreconditionerOptions& options, const std::string& section) {
  const auto specs = option_specs();
  std::ostringstream s;
  s << "[" << section << "]\n";
  for (const auto& r : option_records(options)) {
    const auto spec = *std::find_if(specs.begin(), specs.end(), [&](const OptionSpec& o) { return o.name == r.name; });
    if (set_by_the_tool(spec)) continue;
    if (std::holds_alternative<std::monostate>(r.value)) continue;  // unset is every nullable option's default
    if (spec.type == OptionType::Flag) {
      s << (std::get<bool>(r.value) ? "" : "no-") << spec.cli_name() << " = true\n";
      continue;
    }
    const auto text = format_value(spec, r.value);
    s << spec.cli_name() << " = " << (spec.type == OptionType::Name ? "\"" + text + "\"" : text) << "\n";
  }
  return s.str();
}

}  // namespace kfac::tool
