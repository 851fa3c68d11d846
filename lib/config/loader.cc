#include "config/loader.h"

#include <unistd.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <map>
#include <set>
#include <sstream>

#include "core/base64.h"
#include "core/ids.h"
#include "core/url.h"

namespace tp {
namespace {

// API tokens shorter than this are refused: guessable.
constexpr std::size_t kMinTokenLength = 16;
// Bounds on walking the YAML tree (Loader::NoTags).
constexpr int kMaxYamlDepth = 64;
constexpr std::size_t kMaxNodesWalked = 200'000;
// The longest duration anywhere in the config, either way.
constexpr Duration kMaxDuration{36'500, Duration::Unit::kDays};

// Keys of one YAML map, first occurrence of each.
using Fields = std::map<std::string, YAML::Node>;

bool IsName(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  auto ok = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.';
  };
  return std::all_of(s.begin(), s.end(), ok) && s.front() != '-' && s.front() != '.';
}

std::string Quote(std::string_view s) { return "'" + std::string(s) + "'"; }

std::string JoinNames(std::initializer_list<const char*> names) {
  std::string out;
  for (const char* n : names) {
    if (!out.empty()) out += ", ";
    out += n;
  }
  return out;
}

// Where the first two documents of a YAML stream begin (their root nodes),
// without building them. yaml-cpp 0.7's LoadAll() never returns, allocating
// all the while, on a token no document can begin with, such as a lone ','
// (jbeder/yaml-cpp#1040): each document it parses is empty and leaves the
// token in place. Counting two at most ends that, and a second document that
// begins where the first did is that token, reported as a syntax error.
class DocumentStarts final : public YAML::EventHandler {
 public:
  // Throws YAML::ParserException as YAML::LoadAll() would.
  static std::vector<YAML::Mark> Scan(const std::string& text) {
    std::istringstream in(text);
    YAML::Parser parser(in);
    DocumentStarts handler;
    while (handler.starts_.size() < 2 && parser.HandleNextDocument(handler)) {
    }
    const std::vector<YAML::Mark>& starts = handler.starts_;
    if (starts.size() == 2 && starts[1].pos == starts[0].pos) {
      const std::size_t at = static_cast<std::size_t>(starts[1].pos);
      throw YAML::ParserException(starts[1], at < text.size() && text[at] == ','
                                                 ? "a ',' outside a flow [list] or {map}"
                                                 : "unexpected text where a value should begin");
    }
    return handler.starts_;
  }

 private:
  void OnDocumentStart(const YAML::Mark& mark) override {
    starts_.push_back(mark);
    at_root_ = true;
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t) override { Node(mark); }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override { Node(mark); }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                const std::string&) override {
    Node(mark);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {
    Node(mark);
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {
    Node(mark);
  }
  void OnMapEnd() override {}

  // The root's mark is the document's, as its node would have it.
  void Node(const YAML::Mark& mark) {
    if (!at_root_) return;
    starts_.back() = mark;
    at_root_ = false;
  }

  std::vector<YAML::Mark> starts_;
  bool at_root_ = false;
};

class Loader {
 public:
  explicit Loader(std::string file) : file_(std::move(file)) {}

  LoadResult Load(std::string_view text) {
    const std::string yaml(text);
    std::vector<YAML::Mark> starts;
    YAML::Node root;
    try {
      starts = DocumentStarts::Scan(yaml);
      root = YAML::Load(yaml);
    } catch (const YAML::ParserException& e) {
      // yaml-cpp stops at the first syntax error; there is no more to report
      // but a tab in an indentation, which its messages seldom name.
      std::string msg = e.msg.empty() ? "invalid YAML" : e.msg;
      AddError(e.mark, "YAML syntax: " + msg);
      IndentedWithTabs(text);
      return Finish();
    } catch (const YAML::Exception& e) {
      AddError(e.mark, std::string("YAML: ") + e.what());
      return Finish();
    }
    if (starts.size() > 1) {
      // Silently reading only the first would drop what follows.
      AddError(starts[1],
               "a second YAML document starts here (after '---'): the config is one "
               "document; remove the '---' line or merge the documents");
    }
    if (!root.IsMap()) {
      errors_.push_back({file_, 1, 1, "the config must be a YAML map of top-level keys"});
      return Finish();
    }
    std::size_t budget = kMaxNodesWalked;
    if (!NoTags(root, 0, budget)) return Finish();
    rules_.sha256 = Sha256Hex(text);
    LoadRoot(root);
    return Finish();
  }

 private:
  LoadResult Finish() {
    std::stable_sort(errors_.begin(), errors_.end(), [](const auto& a, const auto& b) {
      return std::tie(a.line, a.column) < std::tie(b.line, b.column);
    });
    LoadResult result;
    if (errors_.empty()) {
      result.rules = std::make_shared<const Rules>(std::move(rules_));
    }
    result.errors = std::move(errors_);
    return result;
  }

  // An error at each line whose indentation holds a tab.
  void IndentedWithTabs(std::string_view text) {
    int line = 1;
    for (std::size_t start = 0; start < text.size(); ++line) {
      const std::size_t end = std::min(text.find('\n', start), text.size());
      const std::string_view l = text.substr(start, end - start);
      const std::size_t indent = l.find_first_not_of(" \t");
      const std::size_t tab = l.substr(0, indent).find('\t');
      if (tab != std::string_view::npos) {
        errors_.push_back({file_, line, static_cast<int>(tab) + 1,
                           "a tab in the indentation: YAML indents with spaces only"});
      }
      start = end + 1;
    }
  }

  // Tags (!!str, !custom) would change what a value means to yaml-cpp and
  // not to us: refuse them rather than ignore them. An alias can make the
  // tree a cycle (`a: &x [*x]`) or blow it up exponentially, so the walk is
  // bounded in depth and in nodes; false once the bound is hit.
  bool NoTags(const YAML::Node& node, int depth, std::size_t& budget) {
    if (depth > kMaxYamlDepth || budget == 0) {
      Error(node, "the YAML nests deeper than " + std::to_string(kMaxYamlDepth) +
                      " levels or has too many nodes (does an alias refer to itself?)");
      return false;
    }
    --budget;
    const std::string& tag = node.Tag();
    if (!tag.empty() && tag != "?" && tag != "!") {
      Error(node, "YAML tags like '" + tag + "' are not supported: write the plain value");
    }
    if (node.IsMap()) {
      for (const auto& kv : node) {
        if (!NoTags(kv.first, depth + 1, budget) || !NoTags(kv.second, depth + 1, budget)) {
          return false;
        }
      }
    } else if (node.IsSequence()) {
      for (const auto& item : node) {
        if (!NoTags(item, depth + 1, budget)) return false;
      }
    }
    return true;
  }

  void AddError(const YAML::Mark& mark, std::string message) {
    const int line = mark.line >= 0 ? mark.line + 1 : 1;
    const int column = mark.column >= 0 ? mark.column + 1 : 1;
    errors_.push_back({file_, line, column, std::move(message)});
  }
  void Error(const YAML::Node& node, std::string message) {
    AddError(node.Mark(), std::move(message));
  }

  // Checks that `node` is a map whose keys are all in `allowed` and unique.
  // Returns the fields, or nullopt (with an error) when `node` is no map.
  std::optional<Fields> Map(const YAML::Node& node, const std::string& what,
                            std::initializer_list<const char*> allowed) {
    if (!node.IsMap()) {
      Error(node, what + " must be a map");
      return std::nullopt;
    }
    Fields fields;
    for (const auto& kv : node) {
      const YAML::Node& key = kv.first;
      if (!key.IsScalar()) {
        Error(key, "keys in " + what + " must be plain strings");
        continue;
      }
      const std::string& k = key.Scalar();
      if (std::none_of(allowed.begin(), allowed.end(), [&](const char* a) { return k == a; })) {
        Error(key, "unknown key " + Quote(k) + " in " + what +
                       " (expected one of: " + JoinNames(allowed) + ")");
        continue;
      }
      if (!fields.emplace(k, kv.second).second) {
        Error(key, "duplicate key " + Quote(k) + " in " + what);
      }
    }
    return fields;
  }

  // The field, or an undefined node with an error at the map when required.
  YAML::Node Field(const Fields& fields, const YAML::Node& map, const char* key,
                   const std::string& what, bool required) {
    auto it = fields.find(key);
    if (it != fields.end()) return it->second;
    if (required) Error(map, "missing required key " + Quote(key) + " in " + what);
    return YAML::Node(YAML::NodeType::Undefined);
  }

  std::optional<std::string> String(const YAML::Node& node, const std::string& what) {
    if (!node.IsScalar() || node.Scalar().empty()) {
      Error(node, what + " must be a non-empty string");
      return std::nullopt;
    }
    return node.Scalar();
  }

  std::optional<std::string> Name(const YAML::Node& node, const std::string& what) {
    auto s = String(node, what);
    if (s && !IsName(*s)) {
      Error(node,
            what + " " + Quote(*s) +
                " must be 1-64 letters, digits, '_', '-' or '.', not starting with '-' or '.'");
      return std::nullopt;
    }
    return s;
  }

  std::optional<std::int64_t> Integer(const YAML::Node& node, const std::string& what,
                                      std::int64_t min, std::int64_t max) {
    const std::string range =
        " must be an integer from " + std::to_string(min) + " to " + std::to_string(max);
    if (!node.IsScalar()) {
      Error(node, what + range);
      return std::nullopt;
    }
    const std::string& s = node.Scalar();
    std::int64_t v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size() || v < min || v > max) {
      Error(node, what + range + ", got " + Quote(s));
      return std::nullopt;
    }
    return v;
  }

  std::optional<double> Number(const YAML::Node& node, const std::string& what) {
    if (node.IsScalar()) {
      const std::string& s = node.Scalar();
      double v = 0;
      auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
      if (ec == std::errc() && end == s.data() + s.size() && std::isfinite(v) && v >= 0) return v;
      Error(node, what + " must be a number >= 0, got " + Quote(s));
    } else {
      Error(node, what + " must be a number >= 0");
    }
    return std::nullopt;
  }

  std::optional<bool> Bool(const YAML::Node& node, const std::string& what) {
    if (node.IsScalar() && (node.Scalar() == "true" || node.Scalar() == "false")) {
      return node.Scalar() == "true";
    }
    Error(node, what + " must be true or false");
    return std::nullopt;
  }

  std::optional<Duration> DurationValue(const YAML::Node& node, const std::string& what) {
    std::optional<Duration> d;
    if (node.IsScalar()) d = ParseDuration(node.Scalar());
    if (!d) {
      Error(node, what + " must be a duration like 90s, 15m, 24h or 3d" +
                      (node.IsScalar() ? ", got " + Quote(node.Scalar()) : std::string()));
      return d;
    }
    // Every date planned from a duration stays where calendars and RFC 3339
    // hold (planner/purchase_check.h bounds the rest).
    if (d->Exact() > kMaxDuration.Exact() || d->Exact() < -kMaxDuration.Exact()) {
      Error(node, what + " must be at most " + kMaxDuration.ToString() + " (100 years), got " +
                      Quote(node.Scalar()));
      return std::nullopt;
    }
    return d;
  }

  // "512MiB", "10GiB" or a number of bytes: from 1 MiB to 1 PiB.
  std::optional<std::uint64_t> ByteSize(const YAML::Node& node, const std::string& what) {
    const std::string problem = what + " must be a size like 512MiB or 10GiB, from 1MiB to 1PiB";
    if (!node.IsScalar()) {
      Error(node, problem);
      return std::nullopt;
    }
    const std::string& s = node.Scalar();
    std::uint64_t n = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
    const std::string_view unit(end, static_cast<std::size_t>(s.data() + s.size() - end));
    int shift = -1;
    for (const auto& [name, bits] : {std::pair<std::string_view, int>{"", 0},
                                     {"KiB", 10},
                                     {"MiB", 20},
                                     {"GiB", 30},
                                     {"TiB", 40},
                                     {"PiB", 50}}) {
      if (unit == name) shift = bits;
    }
    constexpr std::uint64_t kMin = 1u << 20, kMax = std::uint64_t{1} << 50;
    if (ec != std::errc() || end == s.data() || shift < 0 || n > (kMax >> shift) ||
        (n << shift) < kMin) {
      Error(node, problem + ", got " + Quote(s));
      return std::nullopt;
    }
    return n << shift;
  }

  std::optional<TimeOfDay> TimeOfDayValue(const YAML::Node& node, const std::string& what) {
    std::optional<TimeOfDay> t;
    if (node.IsScalar()) t = ParseTimeOfDay(node.Scalar());
    if (!t) Error(node, what + " must be a time of day \"HH:MM\" from 00:00 to 24:00");
    return t;
  }

  // A list of names each of which must be in `known` (by index); unknown
  // names are errors naming `kind`.
  template <typename T>
  std::vector<int> References(const YAML::Node& node, const std::string& what,
                              const std::vector<T>& known, const char* kind) {
    std::vector<int> out;
    if (!node.IsSequence() || node.size() == 0) {
      Error(node, what + " must be a non-empty list of " + kind + " names");
      return out;
    }
    for (const auto& item : node) {
      auto name = String(item, what + " entries");
      if (!name) continue;
      auto it =
          std::find_if(known.begin(), known.end(), [&](const T& k) { return k.name == *name; });
      if (it == known.end()) {
        Error(item, "unknown " + std::string(kind) + " " + Quote(*name) + " in " + what);
        continue;
      }
      const int index = static_cast<int>(it - known.begin());
      if (std::find(out.begin(), out.end(), index) != out.end()) {
        Error(item, std::string(kind) + " " + Quote(*name) + " is listed twice in " + what);
        continue;
      }
      out.push_back(index);
    }
    return out;
  }

  // `section: {key: VALUE}` at the top level, a map with that one key: the
  // value, or an undefined node when the section (or the key) is absent or
  // malformed (reported).
  YAML::Node SectionValue(const Fields& fields, const YAML::Node& root, const char* section,
                          const char* key, bool required) {
    auto v = Field(fields, root, section, "the config", false);
    if (!v.IsDefined()) return YAML::Node(YAML::NodeType::Undefined);
    auto map = Map(v, section, {key});
    if (!map) return YAML::Node(YAML::NodeType::Undefined);
    return Field(*map, v, key, section, required);
  }

  void LoadRoot(const YAML::Node& root) {
    auto fields = Map(root, "the config",
                      {"version", "timezone", "send_window", "frequency_cap", "misfire_grace",
                       "products", "tiers", "cadences", "sinks", "listen", "database",
                       "database_sync", "database_max_size", "http", "log", "auth", "retention"});
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
    if (auto v = Field(*fields, root, "frequency_cap", "the config", false); v.IsDefined()) {
      LoadFrequencyCap(v);
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
    if (auto t = SectionValue(*fields, root, "http", "request_timeout", false); t.IsDefined()) {
      if (auto d = DurationValue(t, "request_timeout")) {
        if (d->count <= 0 || d->IsCalendar()) {
          Error(t, "request_timeout must be a positive number of s, m or h");
        } else {
          rules_.http_request_timeout = *d;
        }
      }
    }
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
    if (auto t = SectionValue(*fields, root, "retention", "touchpoints", true); t.IsDefined()) {
      if (auto d = DurationValue(t, "retention touchpoints")) {
        if (d->count <= 0) {
          Error(t, "retention touchpoints must be positive");
        } else if (d->Exact() <= rules_.misfire_grace.Exact()) {
          // A re-plan must never find a pruned step still within reach.
          Error(t, "retention touchpoints must be longer than misfire_grace");
        } else {
          rules_.retention = *d;
        }
      }
    }

    // Order matters: later sections refer to the names earlier ones define.
    if (auto v = Field(*fields, root, "products", "the config", true); v.IsDefined()) {
      LoadProducts(v);
    }
    if (auto v = Field(*fields, root, "tiers", "the config", false); v.IsDefined()) {
      LoadTiers(v);
    } else {
      rules_.tiers.push_back(Tier{"default", std::nullopt, std::nullopt});
    }
    if (auto v = Field(*fields, root, "sinks", "the config", true); v.IsDefined()) {
      LoadSinks(v);
    }
    if (auto v = Field(*fields, root, "cadences", "the config", true); v.IsDefined()) {
      LoadCadences(v);
    }
  }

  void LoadSendWindow(const YAML::Node& node) {
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

  void LoadFrequencyCap(const YAML::Node& node) {
    auto fields = Map(node, "frequency_cap", {"max", "per"});
    if (!fields) return;
    if (auto per = Field(*fields, node, "per", "frequency_cap", false); per.IsDefined()) {
      if (!per.IsScalar() || per.Scalar() != "day") {
        Error(per, "frequency_cap.per must be 'day' (a buyer-local calendar day)");
      }
    }
    if (auto max = Field(*fields, node, "max", "frequency_cap", true); max.IsDefined()) {
      if (auto v = Integer(max, "frequency_cap.max", 1, 1000))
        rules_.frequency_cap = static_cast<int>(*v);
    }
  }

  void LoadProducts(const YAML::Node& node) {
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

  void LoadTiers(const YAML::Node& node) {
    if (!node.IsSequence() || node.size() == 0) {
      Error(node, "tiers must be a non-empty list of {name, min_purchases, min_spend}");
      rules_.tiers.push_back(Tier{"default", std::nullopt, std::nullopt});
      return;
    }
    std::set<std::string> seen;
    for (const auto& item : node) {
      auto fields = Map(item, "a tier", {"name", "min_purchases", "min_spend"});
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
      rules_.tiers.push_back(std::move(tier));
    }
    if (rules_.tiers.empty()) {
      // Every item was refused, each with its error; the rest of the load
      // still needs a tier, as above.
      rules_.tiers.push_back(Tier{"default", std::nullopt, std::nullopt});
      return;
    }
    const Tier& last = rules_.tiers.back();
    const bool catch_all = (!last.min_purchases || *last.min_purchases <= 1) &&
                           (!last.min_spend || *last.min_spend <= 0);
    if (!catch_all) {
      Error(node[node.size() - 1],
            "the last tier must have no conditions, so that every buyer gets a tier");
    }
  }

  void LoadSinks(const YAML::Node& node) {
    if (!node.IsSequence() || node.size() == 0) {
      Error(node, "sinks must be a non-empty list of {name, type, ...}");
      return;
    }
    std::set<std::string> seen;
    for (const auto& item : node) {
      auto fields = Map(item, "a sink",
                        {"name", "type", "url", "secret_file", "timeout", "retry", "concurrency",
                         "ca_file", "tls_verify", "stream", "maxlen"});
      if (!fields) continue;
      Sink sink;
      if (auto v = Field(*fields, item, "name", "a sink", true); v.IsDefined()) {
        if (auto name = Name(v, "sink name")) {
          if (!seen.insert(*name).second) Error(v, "duplicate sink " + Quote(*name));
          sink.name = *name;
        }
      }
      const std::string what = "sink " + Quote(sink.name);
      auto type_node = Field(*fields, item, "type", what, true);
      if (!type_node.IsDefined()) {
        rules_.sinks.push_back(std::move(sink));
        continue;
      }
      const std::string type = type_node.IsScalar() ? type_node.Scalar() : std::string();
      if (type == "queue") {
        sink.type = Sink::Type::kQueue;
      } else if (type == "webhook") {
        sink.type = Sink::Type::kWebhook;
      } else if (type == "redis") {
        sink.type = Sink::Type::kRedis;
      } else {
        Error(type_node, "unknown sink type" + (type.empty() ? std::string() : " " + Quote(type)) +
                             " (expected queue, webhook or redis)");
        rules_.sinks.push_back(std::move(sink));  // known by name: no cascade of errors
        continue;
      }
      // Keys that belong to another type are mistakes, not decoration.
      static const std::map<std::string, Sink::Type> kOwner = {
          {"secret_file", Sink::Type::kWebhook}, {"retry", Sink::Type::kWebhook},
          {"concurrency", Sink::Type::kWebhook}, {"ca_file", Sink::Type::kWebhook},
          {"tls_verify", Sink::Type::kWebhook},  {"stream", Sink::Type::kRedis},
          {"maxlen", Sink::Type::kRedis}};
      for (const auto& [key, value] : *fields) {
        auto owner = kOwner.find(key);
        if ((owner != kOwner.end() && owner->second != sink.type) ||
            (key == "url" && sink.type == Sink::Type::kQueue)) {
          Error(value, "key " + Quote(key) + " does not apply to a " + type + " sink");
        }
      }
      if (auto v = Field(*fields, item, "timeout", what, false); v.IsDefined()) {
        if (sink.type == Sink::Type::kQueue) {
          Error(v, "key 'timeout' does not apply to a queue sink");
        } else if (auto d = ExactDuration(v, "timeout")) {
          sink.timeout = *d;
        }
      }
      if (sink.type == Sink::Type::kWebhook) LoadWebhook(*fields, item, what, sink);
      if (sink.type == Sink::Type::kRedis) LoadRedis(*fields, item, what, sink);
      rules_.sinks.push_back(std::move(sink));
    }
  }

  // A positive s/m/h duration as milliseconds.
  std::optional<Millis> ExactDuration(const YAML::Node& node, const std::string& what) {
    auto d = DurationValue(node, what);
    if (!d) return std::nullopt;
    if (d->count <= 0 || d->IsCalendar()) {
      Error(node, what + " must be a positive number of s, m or h");
      return std::nullopt;
    }
    return d->Exact();
  }

  // A path in the config relative to the config file's directory.
  std::string RelativeToConfig(const std::string& path) const {
    if (path.starts_with('/')) return path;
    const auto slash = file_.rfind('/');
    return slash == std::string::npos ? path : file_.substr(0, slash + 1) + path;
  }

  void LoadUrl(const Fields& fields, const YAML::Node& item, const std::string& what, bool required,
               StatusOr<Url> (*parse)(std::string_view), Sink& sink) {
    auto v = Field(fields, item, "url", what, required);
    if (!v.IsDefined()) return;
    if (auto s = String(v, "url")) {
      auto url = parse(*s);
      if (url.ok()) {
        sink.url = *s;
      } else {
        Error(v, "url " + Quote(*s) + " " + url.status().message());
      }
    }
  }

  void LoadWebhook(const Fields& fields, const YAML::Node& item, const std::string& what,
                   Sink& sink) {
    LoadUrl(fields, item, what, true, ParseHttpUrl, sink);
    if (auto v = Field(fields, item, "secret_file", what, true); v.IsDefined()) {
      if (auto s = String(v, "secret_file")) {
        sink.secret_file = RelativeToConfig(*s);
        LoadSecrets(v, sink);
      }
    }
    if (auto v = Field(fields, item, "concurrency", what, false); v.IsDefined()) {
      if (auto n = Integer(v, "concurrency", 1, 1024)) sink.concurrency = static_cast<int>(*n);
    }
    if (auto v = Field(fields, item, "ca_file", what, false); v.IsDefined()) {
      if (auto s = String(v, "ca_file")) {
        sink.ca_file = RelativeToConfig(*s);
        if (::access(sink.ca_file.c_str(), R_OK) != 0) {
          Error(v, "cannot read ca_file " + Quote(sink.ca_file) + ": " + std::strerror(errno));
        }
      }
    }
    if (auto v = Field(fields, item, "tls_verify", what, false); v.IsDefined()) {
      if (auto b = Bool(v, "tls_verify")) sink.tls_verify = *b;
    }
    if (auto v = Field(fields, item, "retry", what, false); v.IsDefined()) {
      auto retry = Map(v, what + " retry", {"initial", "max_delay", "max_attempts"});
      if (!retry) return;
      if (auto t = Field(*retry, v, "initial", "retry", false); t.IsDefined()) {
        if (auto d = ExactDuration(t, "retry initial")) sink.retry.initial = *d;
      }
      auto max_delay = Field(*retry, v, "max_delay", "retry", false);
      if (max_delay.IsDefined()) {
        if (auto d = ExactDuration(max_delay, "retry max_delay")) sink.retry.max_delay = *d;
      }
      if (auto t = Field(*retry, v, "max_attempts", "retry", false); t.IsDefined()) {
        if (auto n = Integer(t, "retry max_attempts", 1, 1000)) {
          sink.retry.max_attempts = static_cast<int>(*n);
        }
      }
      if (sink.retry.max_delay < sink.retry.initial) {
        Error(max_delay.IsDefined() ? max_delay : v,
              "retry max_delay must be at least retry initial");
      }
    }
  }

  // Reads a file of secrets now (at start and at every reload): one per
  // line, several during a rotation; blank lines and '#' comments are
  // skipped. `take` gets each trimmed line and says whether it is valid; the
  // first invalid one is reported by its number only, never echoed.
  // `what` names the key ("secret_file"), `noun` one line's thing
  // ("secret"), `expected` what a line must be.
  void LoadSecretLines(const YAML::Node& node, const std::string& path, const char* what,
                       const char* noun, const std::string& expected,
                       const std::function<bool(std::string_view)>& take) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      Error(node,
            std::string("cannot read ") + what + " " + Quote(path) + ": " + std::strerror(errno));
      return;
    }
    std::string line;
    int number = 0, taken = 0;
    while (std::getline(in, line)) {
      ++number;
      const auto first = line.find_first_not_of(" \t\r");
      if (first == std::string::npos || line[first] == '#') continue;
      const auto last = line.find_last_not_of(" \t\r");
      if (!take(std::string_view(line).substr(first, last - first + 1))) {
        Error(node, std::string(what) + " " + Quote(path) + " line " + std::to_string(number) +
                        " is not " + expected);
        return;
      }
      ++taken;
    }
    if (taken == 0) Error(node, std::string(what) + " " + Quote(path) + " holds no " + noun);
  }

  void LoadSecrets(const YAML::Node& node, Sink& sink) {
    LoadSecretLines(node, sink.secret_file, "secret_file", "secret", "a whsec_<base64> secret",
                    [&](std::string_view line) {
                      auto key = DecodeWebhookSecret(line);
                      if (key) sink.secrets.push_back(std::move(*key));
                      return key.has_value();
                    });
  }

  void LoadTokens(const YAML::Node& node) {
    LoadSecretLines(node, rules_.auth_token_file, "token_file", "token",
                    "a token (at least " + std::to_string(kMinTokenLength) +
                        " printable characters, no spaces)",
                    [&](std::string_view line) {
                      const bool ok = line.size() >= kMinTokenLength &&
                                      std::all_of(line.begin(), line.end(), [](char c) {
                                        return static_cast<unsigned char>(c) > 0x20 &&
                                               static_cast<unsigned char>(c) < 0x7f;
                                      });
                      if (ok) rules_.auth_tokens.emplace_back(line);
                      return ok;
                    });
  }

  void LoadRedis(const Fields& fields, const YAML::Node& item, const std::string& what,
                 Sink& sink) {
    sink.url = "redis://127.0.0.1:6379/0";
    LoadUrl(fields, item, what, false, ParseRedisUrl, sink);
    sink.stream = "touchpoints";
    if (auto v = Field(fields, item, "stream", what, false); v.IsDefined()) {
      if (auto s = String(v, "stream")) sink.stream = *s;
    }
    if (auto v = Field(fields, item, "maxlen", what, false); v.IsDefined()) {
      if (auto n = Integer(v, "maxlen", 1, std::int64_t{1} << 40)) sink.maxlen = *n;
    }
  }

  void LoadCadences(const YAML::Node& node) {
    if (!node.IsSequence() || node.size() == 0) {
      Error(node, "cadences must be a non-empty list");
      return;
    }
    std::set<std::string> seen;
    for (const auto& item : node) {
      auto fields = Map(
          item, "a cadence",
          {"name", "trigger", "products", "from", "to", "cancel_on_repurchase", "sinks", "steps"});
      if (!fields) continue;
      Cadence cadence;
      if (auto v = Field(*fields, item, "name", "a cadence", true); v.IsDefined()) {
        if (auto name = Name(v, "cadence name")) {
          if (!seen.insert(*name).second) Error(v, "duplicate cadence " + Quote(*name));
          cadence.name = *name;
        }
      }
      const std::string what = "cadence " + Quote(cadence.name);
      if (auto v = Field(*fields, item, "trigger", what, false); v.IsDefined()) {
        if (v.IsScalar() && v.Scalar() == "purchase") {
          cadence.trigger = Trigger::kPurchase;
        } else if (v.IsScalar() && v.Scalar() == "switch") {
          cadence.trigger = Trigger::kSwitch;
        } else {
          Error(v, what + " trigger must be 'purchase' or 'switch'");
        }
      }
      auto products = Field(*fields, item, "products", what, false);
      auto from = Field(*fields, item, "from", what, false);
      auto to = Field(*fields, item, "to", what, false);
      if (cadence.trigger == Trigger::kPurchase) {
        if (from.IsDefined()) Error(from, "'from' applies only to trigger: switch");
        if (to.IsDefined()) Error(to, "'to' applies only to trigger: switch");
        if (products.IsDefined()) {
          cadence.products = References(products, what + " products", rules_.products, "product");
        } else {
          for (std::size_t i = 0; i < rules_.products.size(); ++i) {
            cadence.products.push_back(static_cast<int>(i));
          }
        }
      } else {
        if (products.IsDefined()) {
          Error(products, "'products' applies only to trigger: purchase (a switch uses from/to)");
        }
        if (!from.IsDefined())
          Error(item, "missing required key 'from' in " + what + " (trigger: switch)");
        if (!to.IsDefined())
          Error(item, "missing required key 'to' in " + what + " (trigger: switch)");
        if (from.IsDefined())
          cadence.from = References(from, what + " from", rules_.products, "product");
        if (to.IsDefined()) cadence.to = References(to, what + " to", rules_.products, "product");
      }
      if (auto v = Field(*fields, item, "cancel_on_repurchase", what, false); v.IsDefined()) {
        cadence.cancel_on_repurchase = Bool(v, what + " cancel_on_repurchase").value_or(false);
      }
      if (auto v = Field(*fields, item, "sinks", what, false); v.IsDefined()) {
        cadence.sinks = References(v, what + " sinks", rules_.sinks, "sink");
      } else {
        for (std::size_t i = 0; i < rules_.sinks.size(); ++i)
          cadence.sinks.push_back(static_cast<int>(i));
      }
      if (auto v = Field(*fields, item, "steps", what, true); v.IsDefined()) {
        LoadSteps(v, what, cadence);
      }
      rules_.cadences.push_back(std::move(cadence));
    }
  }

  void LoadSteps(const YAML::Node& node, const std::string& what, Cadence& cadence) {
    if (!node.IsSequence() || node.size() == 0) {
      Error(node, what + " steps must be a non-empty list");
      return;
    }
    std::map<std::string, int> ids;
    for (const auto& item : node) {
      const std::string step_what = "a step of " + what;
      auto fields = Map(item, step_what, {"id", "after", "anchor", "topic", "tiers"});
      if (!fields) continue;
      Step step;
      // Where a duplicate id is reported: the id, else the topic it defaults
      // to. (A Mark, not a Node: assigning to a YAML::Node rebinds the node
      // it was copied from.)
      YAML::Mark id_mark = item.Mark();
      if (auto v = Field(*fields, item, "topic", step_what, true); v.IsDefined()) {
        step.topic = String(v, "topic").value_or("");
        id_mark = v.Mark();
      }
      if (auto v = Field(*fields, item, "id", step_what, false); v.IsDefined()) {
        step.id = Name(v, "step id").value_or("");
        id_mark = v.Mark();
      } else {
        step.id = step.topic;
      }
      if (!step.id.empty() && !ids.emplace(step.id, id_mark.line).second) {
        AddError(id_mark, "step id " + Quote(step.id) + " is used twice in " + what +
                              " (ids default to the topic; give one step an 'id:')");
      }
      if (auto v = Field(*fields, item, "anchor", step_what, false); v.IsDefined()) {
        if (v.IsScalar() && v.Scalar() == "purchase") {
          step.anchor = Anchor::kPurchase;
        } else if (v.IsScalar() && v.Scalar() == "runout") {
          step.anchor = Anchor::kRunout;
        } else {
          Error(v, "anchor must be 'purchase' or 'runout'");
        }
      }
      if (auto v = Field(*fields, item, "after", step_what, true); v.IsDefined()) {
        if (auto d = DurationValue(v, "after")) {
          if (d->IsNegative() && step.anchor != Anchor::kRunout) {
            Error(v, "a negative 'after' is allowed only with anchor: runout");
          } else {
            step.after = *d;
          }
        }
      }
      if (auto v = Field(*fields, item, "tiers", step_what, false); v.IsDefined()) {
        step.tiers = References(v, "step tiers", rules_.tiers, "tier");
      }
      cadence.steps.push_back(std::move(step));
    }
  }

  std::string file_;
  Rules rules_;
  std::vector<ConfigError> errors_;
};

}  // namespace

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
    return Loader(file).Load(yaml);
  } catch (const std::exception& e) {
    // yaml-cpp throws on some malformed documents outside Load(); never crash.
    LoadResult result;
    result.errors.push_back({file, 1, 1, std::string("cannot load the config: ") + e.what()});
    return result;
  }
}

}  // namespace tp
