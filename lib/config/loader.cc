#include "config/loader.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <tuple>

#include "config/loader_sections.h"
#include "core/ids.h"
#include "core/text.h"

namespace tp::config {
namespace {

// The one tier of a config that names none, or whose tiers are refused.
Tier DefaultTier() {
  Tier tier;
  tier.name = "default";
  return tier;
}

}  // namespace

LoadResult Loader::Load(std::string_view text) {
  if (auto root = Parse(text)) {
    rules_.sha256 = Sha256Hex(text);
    LoadRoot(*root);
  }
  return Finish();
}

LoadResult Loader::Finish() {
  std::stable_sort(errors().begin(), errors().end(), [](const auto& a, const auto& b) {
    return std::tie(a.line, a.column) < std::tie(b.line, b.column);
  });
  LoadResult result;
  if (errors().empty()) {
    result.rules = std::make_shared<const Rules>(std::move(rules_));
  }
  result.errors = std::move(errors());
  return result;
}

void Loader::LoadRoot(const YAML::Node& root) {
  auto fields =
      Map(root, "the config",
          {"version", "timezone", "send_window", "frequency_cap", "misfire_grace", "products",
           "tiers", "cadences", "sinks", "listen", "database", "database_sync", "database_max_size",
           "http", "log", "auth", "retention", "engagement", "outcomes"});
  if (!fields) return;

  if (auto v = Field(*fields, root, "version", "the config", true); v.IsDefined()) {
    if (!v.IsScalar() || v.Scalar() != "1") {
      Error(v, "unsupported config version (this build reads version: 1)");
    }
  }
  if (auto v = Field(*fields, root, "timezone", "the config", false); v.IsDefined()) {
    if (auto name = String(v, "timezone")) {
      if (const Zone* zone = FindZone(*name)) {
        rules_.timezone_name = *name;
        rules_.timezone = zone;
      } else {
        Error(v, "unknown time zone " + Quote(*name) + " (use an IANA name like Asia/Shanghai)");
      }
    }
  }
  if (rules_.timezone == nullptr) rules_.timezone = UtcZone();
  if (auto v = Field(*fields, root, "send_window", "the config", false); v.IsDefined()) {
    LoadSendWindow(v);
  }
  if (auto v = Field(*fields, root, "misfire_grace", "the config", false); v.IsDefined()) {
    if (auto d = DurationValue(v, "misfire_grace")) {
      if (d->count <= 0) {
        Error(v, "misfire_grace must be positive");
      } else {
        rules_.misfire_grace = *d;
      }
    }
  }
  if (auto v = Field(*fields, root, "listen", "the config", false); v.IsDefined()) {
    if (auto s = String(v, "listen")) {
      const auto colon = s->rfind(':');
      std::int64_t port = 0;
      const bool port_ok =
          colon != std::string::npos && colon > 0 &&
          std::from_chars(s->data() + colon + 1, s->data() + s->size(), port).ptr ==
              s->data() + s->size() &&
          colon + 1 < s->size() && port > 0 && port < 65536;
      if (!port_ok) {
        Error(v, "listen must be HOST:PORT with a port from 1 to 65535, got " + Quote(*s));
      } else {
        rules_.listen = *s;
      }
    }
  }
  if (auto v = Field(*fields, root, "database", "the config", false); v.IsDefined()) {
    if (auto s = String(v, "database")) rules_.database = *s;
  }

  if (auto v = Field(*fields, root, "database_sync", "the config", false); v.IsDefined()) {
    if (auto s = String(v, "database_sync")) {
      if (*s == "normal") {
        rules_.database_sync = Rules::DatabaseSync::kNormal;
      } else if (*s == "full") {
        rules_.database_sync = Rules::DatabaseSync::kFull;
      } else {
        Error(v, "database_sync must be normal or full, got " + Quote(*s));
      }
    }
  }
  if (auto v = Field(*fields, root, "database_max_size", "the config", false); v.IsDefined()) {
    if (auto size = ByteSize(v, "database_max_size")) rules_.database_max_size = *size;
  }
  if (auto v = Field(*fields, root, "http", "the config", false); v.IsDefined()) LoadHttp(v);
  if (auto l = SectionValue(*fields, root, "log", "level", false); l.IsDefined()) {
    if (auto s = String(l, "level")) {
      if (std::find(std::begin(kLogLevels), std::end(kLogLevels), *s) == std::end(kLogLevels)) {
        Error(l, "log level must be trace, debug, info, warn or error, got " + Quote(*s));
      } else {
        rules_.log_level = *s;
      }
    }
  }
  if (auto t = SectionValue(*fields, root, "auth", "token_file", true); t.IsDefined()) {
    if (auto s = String(t, "token_file")) {
      rules_.auth_token_file = RelativeToConfig(*s);
      LoadTokens(t);
    }
  }

  // Order matters: later sections refer to the names earlier ones define.
  if (auto v = Field(*fields, root, "products", "the config", true); v.IsDefined()) {
    LoadProducts(v);
  }
  if (auto v = Field(*fields, root, "tiers", "the config", false); v.IsDefined()) {
    LoadTiers(v);
  } else {
    rules_.tiers.push_back(DefaultTier());
  }
  if (auto v = Field(*fields, root, "sinks", "the config", true); v.IsDefined()) {
    LoadSinks(v);
  }
  if (auto v = Field(*fields, root, "frequency_cap", "the config", false); v.IsDefined()) {
    LoadFrequencyCaps(v);  // after sinks: a cap may name some
  }
  if (auto v = Field(*fields, root, "outcomes", "the config", false); v.IsDefined()) {
    LoadOutcomes(v);
  }
  if (auto t = SectionValue(*fields, root, "retention", "touchpoints", true); t.IsDefined()) {
    // After the caps and the outcomes: they count fires it would delete.
    LoadRetention(t);
  }
  if (auto v = Field(*fields, root, "engagement", "the config", false); v.IsDefined()) {
    LoadEngagement(v);
  }
  if (auto v = Field(*fields, root, "cadences", "the config", true); v.IsDefined()) {
    LoadCadences(v);
  }
}

void Loader::LoadHttp(const YAML::Node& node) {
  auto http = Map(node, "http", {"request_timeout", "max_connections", "allowed_hosts"});
  if (!http) return;
  if (auto t = Field(*http, node, "request_timeout", "http", false); t.IsDefined()) {
    if (auto d = DurationValue(t, "request_timeout")) {
      if (d->count <= 0 || d->IsCalendar()) {
        Error(t, "request_timeout must be a positive number of s, m or h");
      } else {
        rules_.http_request_timeout = *d;
      }
    }
  }
  if (auto n = Field(*http, node, "max_connections", "http", false); n.IsDefined()) {
    if (auto c = Integer(n, "max_connections", 1, 1'000'000)) rules_.http_max_connections = *c;
  }
  auto hosts = Field(*http, node, "allowed_hosts", "http", false);
  if (!hosts.IsDefined()) return;
  if (!hosts.IsSequence()) return Error(hosts, "allowed_hosts must be a list of host names");
  for (const auto& item : hosts) {
    auto name = String(item, "allowed_hosts entries");
    if (!name) continue;
    std::string host = AsciiLower(*name);
    if (host.size() > 1 && host.back() == '.') host.pop_back();  // as a Host is compared
    const bool valid =
        host == "*" ||
        (!host.empty() && host.size() <= 253 && std::all_of(host.begin(), host.end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
        }));
    if (!valid) {
      Error(item, "allowed_hosts: " + Quote(*name) +
                      " is not a host name (no scheme, no port): e.g. touchpoint.internal, or "
                      "\"*\" for any");
      continue;
    }
    rules_.http_allowed_hosts.push_back(std::move(host));
  }
}

void Loader::LoadRetention(const YAML::Node& node) {
  auto d = DurationValue(node, "retention touchpoints");
  if (!d) return;
  if (d->count <= 0) return Error(node, "retention touchpoints must be positive");
  if (d->Exact() <= rules_.misfire_grace.Exact()) {
    // A re-plan must never find a pruned step still within reach.
    return Error(node, "retention touchpoints must be longer than misfire_grace");
  }
  // A cap counts the fires of its whole buyer-local period, which is at
  // most a day, a week or 31 days, and an hour longer where a clock goes
  // back: retention must keep every one of them.
  for (const FrequencyCap& cap : rules_.frequency_caps) {
    const int days = cap.per == FrequencyCap::Per::kDay    ? 1
                     : cap.per == FrequencyCap::Per::kWeek ? 7
                                                           : 31;
    const std::chrono::hours longest = std::chrono::hours(24 * days + 1);
    if (d->Exact() < longest) {
      return Error(node, "retention touchpoints (" + d->ToString() + ") must be at least " +
                             std::to_string(longest.count()) + "h with a frequency_cap per " +
                             std::string(PeriodName(cap.per)) +
                             ": the cap counts every fire of its period, which retention "
                             "would delete");
    }
  }
  // A repurchase is credited to the last touchpoint fired within the
  // attribution window (in the buyer's days: an hour more where a clock
  // goes back), found among the touchpoints kept.
  const auto attribution = rules_.outcomes.attribution_window.Exact() + std::chrono::hours(1);
  if (d->Exact() < attribution) {
    return Error(node,
                 "retention touchpoints (" + d->ToString() + ") must be at least " +
                     std::to_string(std::chrono::ceil<std::chrono::hours>(attribution).count()) +
                     "h with outcomes.attribution_window " +
                     rules_.outcomes.attribution_window.ToString() +
                     ": a repurchase is credited to a fire it would delete");
  }
  rules_.retention = *d;
}

void Loader::LoadSendWindow(const YAML::Node& node) {
  auto fields = Map(node, "send_window", {"from", "to"});
  if (!fields) return;
  auto from_node = Field(*fields, node, "from", "send_window", true);
  auto to_node = Field(*fields, node, "to", "send_window", true);
  std::optional<TimeOfDay> from, to;
  if (from_node.IsDefined()) from = TimeOfDayValue(from_node, "send_window.from");
  if (to_node.IsDefined()) to = TimeOfDayValue(to_node, "send_window.to");
  if (from && from->minutes == 24 * 60) {
    Error(from_node, "send_window.from must be earlier than 24:00");
    return;
  }
  if (from && to) {
    if (*to <= *from) {
      Error(to_node, "send_window.to (" + FormatTimeOfDay(*to) + ") must be later than from (" +
                         FormatTimeOfDay(*from) + "); the window is [from, to) within one day");
      return;
    }
    rules_.send_window = SendWindow{*from, *to};
  }
}

void Loader::LoadFrequencyCaps(const YAML::Node& node) {
  if (node.IsSequence()) {
    if (node.size() == 0 || node.size() > kMaxFrequencyCaps) {
      Error(node, "frequency_cap must be one cap or a list of 1 to " +
                      std::to_string(kMaxFrequencyCaps) + " caps");
      return;
    }
    for (const auto& item : node) LoadFrequencyCap(item, "a frequency_cap");
    return;
  }
  if (!node.IsMap()) {
    Error(node, "frequency_cap must be one cap {max, per, sinks} or a list of them");
    return;
  }
  LoadFrequencyCap(node, "frequency_cap");
}

void Loader::LoadFrequencyCap(const YAML::Node& node, const std::string& what) {
  auto fields = Map(node, what, {"max", "per", "sinks"});
  if (!fields) return;
  FrequencyCap cap;
  bool ok = true;
  if (auto per = Field(*fields, node, "per", what, false); per.IsDefined()) {
    const std::string text = per.IsScalar() ? per.Scalar() : "";
    if (text == "day") {
      cap.per = FrequencyCap::Per::kDay;
    } else if (text == "week") {
      cap.per = FrequencyCap::Per::kWeek;
    } else if (text == "month") {
      cap.per = FrequencyCap::Per::kMonth;
    } else {
      Error(per,
            "frequency_cap.per must be day, week or month (buyer-local calendar periods), "
            "got " +
                Quote(text));
      ok = false;
    }
  }
  if (auto max = Field(*fields, node, "max", what, true); max.IsDefined()) {
    if (auto v = Integer(max, "frequency_cap.max", 1, 1000)) {
      cap.max = static_cast<int>(*v);
    } else {
      ok = false;
    }
  } else {
    ok = false;
  }
  if (auto v = Field(*fields, node, "sinks", what, false); v.IsDefined()) {
    const std::size_t errors_before = errors().size();
    cap.sinks = References(v, "frequency_cap.sinks", rules_.sinks, "sink");
    ok = ok && errors().size() == errors_before;
  }
  if (ok) rules_.frequency_caps.push_back(std::move(cap));
}

void Loader::LoadProducts(const YAML::Node& node) {
  if (!node.IsMap() || node.size() == 0) {
    Error(node, "products must be a non-empty map of product name to {supply_days}");
    return;
  }
  std::set<std::string> seen;
  for (const auto& kv : node) {
    auto name = Name(kv.first, "product name");
    if (!name) continue;
    if (!seen.insert(*name).second) {
      Error(kv.first, "duplicate product " + Quote(*name));
      continue;
    }
    const std::string what = "product " + Quote(*name);
    Product product{*name, 0};
    if (auto fields = Map(kv.second, what, {"supply_days"})) {
      if (auto v = Field(*fields, kv.second, "supply_days", what, true); v.IsDefined()) {
        if (auto days = Integer(v, what + " supply_days", 1, 36500)) {
          product.supply_days = static_cast<int>(*days);
        }
      }
    }
    rules_.products.push_back(std::move(product));
  }
}

void Loader::LoadTiers(const YAML::Node& node) {
  if (!node.IsSequence() || node.size() == 0) {
    Error(node,
          "tiers must be a non-empty list of {name, min_purchases, min_spend, within, bought, "
          "attributes}");
    rules_.tiers.push_back(DefaultTier());
    return;
  }
  std::set<std::string> seen;
  for (const auto& item : node) {
    auto fields = Map(item, "a tier",
                      {"name", "min_purchases", "min_spend", "within", "bought", "attributes"});
    if (!fields) continue;
    Tier tier;
    auto name_node = Field(*fields, item, "name", "a tier", true);
    if (name_node.IsDefined()) {
      if (auto name = Name(name_node, "tier name")) {
        if (!seen.insert(*name).second) {
          Error(name_node, "duplicate tier " + Quote(*name));
        }
        tier.name = *name;
      }
    }
    const std::string what = "tier " + Quote(tier.name);
    if (auto v = Field(*fields, item, "min_purchases", what, false); v.IsDefined()) {
      tier.min_purchases = Integer(v, what + " min_purchases", 0, 1000000);
    }
    if (auto v = Field(*fields, item, "min_spend", what, false); v.IsDefined()) {
      tier.min_spend = Number(v, what + " min_spend");
    }
    if (auto v = Field(*fields, item, "within", what, false); v.IsDefined()) {
      if (auto d = DurationValue(v, what + " within")) {
        if (d->count <= 0) {
          Error(v, what + " within must be positive, like 180d");
        } else {
          tier.within = *d;
        }
      }
    }
    if (auto v = Field(*fields, item, "bought", what, false); v.IsDefined()) {
      tier.bought = References(v, what + " bought", rules_.products, "product");
    }
    if (auto v = Field(*fields, item, "attributes", what, false); v.IsDefined()) {
      LoadTierAttributes(v, what, tier);
    }
    rules_.tiers.push_back(std::move(tier));
  }
  if (rules_.tiers.empty()) {
    // Every item was refused, each with its error; the rest of the load
    // still needs a tier, as above.
    rules_.tiers.push_back(DefaultTier());
    return;
  }
  if (!rules_.tiers.back().MatchesEveryPurchase()) {
    Error(node[node.size() - 1],
          "the last tier must have no conditions, so that every buyer gets a tier");
  }
}

void Loader::LoadTierAttributes(const YAML::Node& node, const std::string& what, Tier& tier) {
  const std::string where = what + " attributes";
  if (!node.IsMap() || node.size() == 0) {
    Error(node, where + " must be a non-empty map of key to a value or a list of values");
    return;
  }
  std::set<std::string> seen;
  for (const auto& kv : node) {
    auto key = String(kv.first, where + " keys");
    if (!key) continue;
    if (!seen.insert(*key).second) {
      Error(kv.first, "duplicate key " + Quote(*key) + " in " + where);
      continue;
    }
    AttributeCondition condition{*key, {}};
    const std::string values_what = where + " " + Quote(*key);
    if (kv.second.IsSequence()) {
      if (kv.second.size() == 0) {
        Error(kv.second, values_what + " must list at least one value");
        continue;
      }
      for (const auto& value : kv.second) {
        if (auto text = String(value, values_what + " values")) {
          condition.values.push_back(std::move(*text));
        }
      }
    } else if (auto text = String(kv.second, values_what)) {
      condition.values.push_back(std::move(*text));
    }
    if (!condition.values.empty()) tier.attributes.push_back(std::move(condition));
  }
}

}  // namespace tp::config

namespace tp {

std::string ConfigError::ToString() const {
  return file + ":" + std::to_string(line) + ":" + std::to_string(column) + ": error: " + message;
}

LoadResult LoadRulesFile(const std::string& path) {
  LoadResult result;
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    result.errors.push_back({path, 1, 1, "cannot read the file: it is a directory"});
    return result;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    result.errors.push_back(
        {path, 1, 1, std::string("cannot read the file: ") + std::strerror(errno)});
    return result;
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    result.errors.push_back(
        {path, 1, 1, std::string("cannot read the file: ") + std::strerror(errno)});
    return result;
  }
  return LoadRulesString(text.str(), path);
}

LoadResult LoadRulesString(std::string_view yaml, const std::string& file) {
  try {
    return config::Loader(file).Load(yaml);
  } catch (const std::exception& e) {
    // yaml-cpp throws on some malformed documents outside Load(); never crash.
    LoadResult result;
    result.errors.push_back({file, 1, 1, std::string("cannot load the config: ") + e.what()});
    return result;
  }
}

}  // namespace tp
