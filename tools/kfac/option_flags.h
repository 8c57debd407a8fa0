// The preconditioner's options as CLI flags, TOML keys and JSON, all generated from the option tables
// (kfac/util/option_table.h): a new option, or a method's own block, appears here without an edit.
//
//   flag      --NAME-WITH-DASHES VALUE; a flag field is --NAME (true) and --no-NAME (false)
//   TOML      the same names as keys of the subcommand's section: refresh-period = 20, no-reset-spectrum = true
//   JSON      nested by block: {"method": "kfac", "schedule": {"refresh_period": 10, ...}, ...}
// Legacy spellings stay: --inverse (inverse-method), --keep-spectrum (no-reset-spectrum), --two-level SPACE.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <optional>
#include <string>

#include "kfac/preconditioner/options.h"

namespace kfac::tool {

/// Options the tool sets from its own flags (--method with a global stage, --seed for everything): no flag of their own.
bool set_by_the_tool(const OptionSpec& spec);

/// One flag per option of every block (every registered method's included) except `method` and `seed`, which the
/// tool's own --method and --seed set. Values are checked against the tables and written into `options`.
void add_preconditioner_flags(CLI::App* app, PreconditionerOptions& options);

/// One flag per field of several blocks whose same-named fields mean the same (Muon's, Shampoo's and SOAP's beta1):
/// giving it sets the field in every block that has one. Fields for which `skip` is true get no flag.
void add_block_flags(CLI::App* app, const std::vector<std::pair<const OptionTableBase*, void*>>& blocks,
                     bool (*skip)(const OptionSpec&));

/// The flag of a block field: --NAME, or --BLOCK-NAME where NAME is one of the tool's own step-rule flags (the
/// quadratic model's switch `momentum` is --qmodel-momentum, as --momentum is the methods' momentum rate).
std::string block_flag(const OptionTableBase& table, const OptionSpec& spec);

/// A step-rule flag for the field `name` of `table` (KfacOptimizerOptions: lr, momentum, kl_clip, weight_decay) whose
/// default the tool picks per method or model: its name, range and doc come from the table, `defaults` says how the
/// default is picked ("auto" in the help).
void add_step_flag(CLI::App* app, const OptionTableBase& table, const std::string& name, std::optional<double>& target,
                   const std::string& defaults);
/// The same with the table's default; `note` is added to the table's doc (how other methods read the flag).
void add_step_flag(CLI::App* app, const OptionTableBase& table, const std::string& name, double& target,
                   const std::string& note);

/// An option value as JSON (null, bool, number or string).
nlohmann::json option_json(const OptionValue& value);

/// The options in effect, nested by block (the root fields at the top).
nlohmann::json options_json(const PreconditionerOptions& options);
/// Sets every option named in `json` (the form options_json writes); unknown names throw naming the closest.
void apply_options_json(PreconditionerOptions& options, const nlohmann::json& json);
/// The options in effect as TOML lines "flag-name = value" under `[section]`, read back by the flags above.
std::string options_toml(const PreconditionerOptions& options, const std::string& section);

}  // namespace kfac::tool
