#include "kfac/global/stage_registry.h"

#include <algorithm>
#include <mutex>

#include "kfac/errors.h"
#include "kfac/util/enum_names.h"
#include "util/text.h"

namespace kfac {

// The built-in stages, each defined in its own file.
GlobalStageEntry two_level_stage();
GlobalStageEntry block_tridiagonal_stage();

namespace {
struct Registry {
  std::mutex mutex;
  std::vector<std::pair<std::string, GlobalStageEntry>> entries{{"two-level", two_level_stage()},
                                                                {"block-tridiagonal", block_tridiagonal_stage()}};
};

Registry& registry() {
  static Registry r;
  return r;
}

// The entry called `name`, copied under the lock; nullopt when unknown.
c10::optional<GlobalStageEntry> find_stage(const std::string& name) {
  std::lock_guard<std::mutex> lock(registry().mutex);
  for (const auto& [n, e] : registry().entries)
    if (n == name) return e;
  return c10::nullopt;
}
}  // namespace

void register_global_stage(const std::string& name, GlobalStageEntry entry) {
  KFAC_CHECK(!name.empty() && name != "none" && entry.make,
             "register_global_stage: a stage needs a name other than 'none' and a make function, got '", name, "'");
  std::lock_guard<std::mutex> lock(registry().mutex);
  for (auto& [n, e] : registry().entries)
    if (n == name) {
      e = std::move(entry);
      return;
    }
  registry().entries.emplace_back(name, std::move(entry));
}

std::vector<std::string> registered_global_stages() {
  std::lock_guard<std::mutex> lock(registry().mutex);
  std::vector<std::string> names;
  for (const auto& e : registry().entries) names.push_back(e.first);
  return names;
}

void check_registered_global_stage(const std::string& name) {
  if (name == "none" || find_stage(name)) return;
  auto valid = registered_global_stages();
  valid.insert(valid.begin(), "none");
  const auto close = closest_spelling(name, valid);
  KFAC_CHECK(false, "unknown global_stage '", name, "'; valid stages: ", join(valid),
             close.empty() ? "" : "; did you mean '" + close + "'?");
}

std::vector<const OptionTableBase*> global_stage_option_tables(const std::string& name) {
  const auto entry = find_stage(name);
  return entry ? entry->option_tables : std::vector<const OptionTableBase*>{};
}

std::unique_ptr<GlobalStage> make_global_stage(const std::string& name, const GlobalStageContext& context) {
  if (name == "none") return nullptr;
  const auto entry = find_stage(name);
  if (!entry) check_registered_global_stage(name);  // throws naming the valid stages
  return entry->make(context);
}

std::vector<std::string> global_stage_spellings() {
  std::vector<std::string> names{"none"};
  std::lock_guard<std::mutex> lock(registry().mutex);
  for (const auto& [n, e] : registry().entries)
    if (e.spellings.empty())
      names.push_back(n);
    else
      names.insert(names.end(), e.spellings.begin(), e.spellings.end());
  return names;
}

void apply_global_stage_spelling(const std::string& spelling, std::string& stage, OptionBlocks& blocks) {
  {
    std::lock_guard<std::mutex> lock(registry().mutex);
    for (const auto& [n, e] : registry().entries) {
      if (std::find(e.spellings.begin(), e.spellings.end(), spelling) != e.spellings.end()) {
        stage = n;
        e.apply_spelling(spelling, blocks);
        return;
      }
      if (e.spellings.empty() && n == spelling) {
        stage = n;
        return;
      }
    }
  }
  if (spelling == "none") {
    stage = spelling;
    return;
  }
  throw_unknown_name("global stage", spelling, global_stage_spellings());
}

}  // namespace kfac
