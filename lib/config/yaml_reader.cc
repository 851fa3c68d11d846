#include "config/yaml_reader.h"

#include <yaml-cpp/eventhandler.h>

#include <charconv>
#include <cmath>
#include <sstream>
#include <utility>

namespace tp::config {
namespace {

// Bounds on walking the YAML tree (YamlReader::NoTags).
constexpr int kMaxYamlDepth = 64;
constexpr std::size_t kMaxNodesWalked = 200'000;

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

}  // namespace

std::string Quote(std::string_view s) { return "'" + std::string(s) + "'"; }

std::string JoinNames(std::initializer_list<const char*> names) {
  std::string out;
  for (const char* n : names) {
    if (!out.empty()) out += ", ";
    out += n;
  }
  return out;
}

std::optional<YAML::Node> YamlReader::Parse(std::string_view text) {
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
    return std::nullopt;
  } catch (const YAML::Exception& e) {
    AddError(e.mark, std::string("YAML: ") + e.what());
    return std::nullopt;
  }
  if (starts.size() > 1) {
    // Silently reading only the first would drop what follows.
    AddError(starts[1],
             "a second YAML document starts here (after '---'): the config is one "
             "document; remove the '---' line or merge the documents");
  }
  if (!root.IsMap()) {
    errors_.push_back({file_, 1, 1, "the config must be a YAML map of top-level keys"});
    return std::nullopt;
  }
  std::size_t budget = kMaxNodesWalked;
  if (!NoTags(root, 0, budget)) return std::nullopt;
  return root;
}

// An error at each line whose indentation holds a tab.
void YamlReader::IndentedWithTabs(std::string_view text) {
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
bool YamlReader::NoTags(const YAML::Node& node, int depth, std::size_t& budget) {
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

void YamlReader::AddError(const YAML::Mark& mark, std::string message) {
  const int line = mark.line >= 0 ? mark.line + 1 : 1;
  const int column = mark.column >= 0 ? mark.column + 1 : 1;
  errors_.push_back({file_, line, column, std::move(message)});
}

void YamlReader::Error(const YAML::Node& node, std::string message) {
  AddError(node.Mark(), std::move(message));
}

// Checks that `node` is a map whose keys are all in `allowed` and unique.
// Returns the fields, or nullopt (with an error) when `node` is no map.
std::optional<Fields> YamlReader::Map(const YAML::Node& node, const std::string& what,
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
YAML::Node YamlReader::Field(const Fields& fields, const YAML::Node& map, const char* key,
                             const std::string& what, bool required) {
  auto it = fields.find(key);
  if (it != fields.end()) return it->second;
  if (required) Error(map, "missing required key " + Quote(key) + " in " + what);
  return YAML::Node(YAML::NodeType::Undefined);
}

std::optional<std::string> YamlReader::String(const YAML::Node& node, const std::string& what) {
  if (!node.IsScalar() || node.Scalar().empty()) {
    Error(node, what + " must be a non-empty string");
    return std::nullopt;
  }
  return node.Scalar();
}

std::optional<std::string> YamlReader::Name(const YAML::Node& node, const std::string& what) {
  auto s = String(node, what);
  if (s && !IsName(*s)) {
    Error(node, what + " " + Quote(*s) +
                    " must be 1-64 letters, digits, '_', '-' or '.', not starting with '-' or '.'");
    return std::nullopt;
  }
  return s;
}

std::optional<std::int64_t> YamlReader::Integer(const YAML::Node& node, const std::string& what,
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

std::optional<double> YamlReader::Number(const YAML::Node& node, const std::string& what) {
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

std::optional<bool> YamlReader::Bool(const YAML::Node& node, const std::string& what) {
  if (node.IsScalar() && (node.Scalar() == "true" || node.Scalar() == "false")) {
    return node.Scalar() == "true";
  }
  Error(node, what + " must be true or false");
  return std::nullopt;
}

std::optional<Duration> YamlReader::DurationValue(const YAML::Node& node, const std::string& what) {
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

// A positive s/m/h duration as milliseconds.
std::optional<Millis> YamlReader::ExactDuration(const YAML::Node& node, const std::string& what) {
  auto d = DurationValue(node, what);
  if (!d) return std::nullopt;
  if (d->count <= 0 || d->IsCalendar()) {
    Error(node, what + " must be a positive number of s, m or h");
    return std::nullopt;
  }
  return d->Exact();
}

// "512MiB", "10GiB" or a number of bytes: from 1 MiB to 1 PiB.
std::optional<std::uint64_t> YamlReader::ByteSize(const YAML::Node& node, const std::string& what) {
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

std::optional<TimeOfDay> YamlReader::TimeOfDayValue(const YAML::Node& node,
                                                    const std::string& what) {
  std::optional<TimeOfDay> t;
  if (node.IsScalar()) t = ParseTimeOfDay(node.Scalar());
  if (!t) Error(node, what + " must be a time of day \"HH:MM\" from 00:00 to 24:00");
  return t;
}

// `section: {key: VALUE}` at the top level, a map with that one key: the
// value, or an undefined node when the section (or the key) is absent or
// malformed (reported).
YAML::Node YamlReader::SectionValue(const Fields& fields, const YAML::Node& root,
                                    const char* section, const char* key, bool required) {
  auto v = Field(fields, root, section, "the config", false);
  if (!v.IsDefined()) return YAML::Node(YAML::NodeType::Undefined);
  auto map = Map(v, section, {key});
  if (!map) return YAML::Node(YAML::NodeType::Undefined);
  return Field(*map, v, key, section, required);
}

}  // namespace tp::config
