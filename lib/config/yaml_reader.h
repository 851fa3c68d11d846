// Reading one YAML document with every problem reported at its position
// (ConfigError), never thrown: the document's hygiene (one document, spaces
// not tabs, no tags, aliases bounded) and typed values (maps with known
// keys, names, integers, durations, sizes, times of day, lists of
// references). The config loader (config/loader.cc and the section files
// beside it) reads through it. Internal to lib/config.
#pragma once

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/loader.h"
#include "config/rules.h"
#include "core/text.h"
#include "core/time.h"

namespace tp::config {

// Keys of one YAML map, first occurrence of each.
using Fields = std::map<std::string, YAML::Node>;

// The longest duration anywhere in the config, either way.
inline constexpr Duration kMaxDuration{36'500, Duration::Unit::kDays};

std::string Quote(std::string_view s);
std::string JoinNames(std::initializer_list<const char*> names);

class YamlReader {
 public:
  // `file` names the document in errors.
  explicit YamlReader(std::string file) : file_(std::move(file)) {}

  // The document's root map, or nullopt when there is nothing to read
  // (the errors say why).
  std::optional<YAML::Node> Parse(std::string_view text);

  const std::string& file() const { return file_; }
  std::vector<ConfigError>& errors() { return errors_; }

  void AddError(const YAML::Mark& mark, std::string message);
  void Error(const YAML::Node& node, std::string message);
  // Checks that `node` is a map whose keys are all in `allowed` and unique.
  // Returns the fields, or nullopt (with an error) when `node` is no map.
  std::optional<Fields> Map(const YAML::Node& node, const std::string& what,
                            std::initializer_list<const char*> allowed);
  // The field, or an undefined node with an error at the map when required.
  YAML::Node Field(const Fields& fields, const YAML::Node& map, const char* key,
                   const std::string& what, bool required);
  std::optional<std::string> String(const YAML::Node& node, const std::string& what);
  std::optional<std::string> Name(const YAML::Node& node, const std::string& what);
  std::optional<std::int64_t> Integer(const YAML::Node& node, const std::string& what,
                                      std::int64_t min, std::int64_t max);
  std::optional<double> Number(const YAML::Node& node, const std::string& what);
  std::optional<bool> Bool(const YAML::Node& node, const std::string& what);
  std::optional<Duration> DurationValue(const YAML::Node& node, const std::string& what);
  // A positive s/m/h duration as milliseconds.
  std::optional<Millis> ExactDuration(const YAML::Node& node, const std::string& what);
  // "512MiB", "10GiB" or a number of bytes: from 1 MiB to 1 PiB.
  std::optional<std::uint64_t> ByteSize(const YAML::Node& node, const std::string& what);
  std::optional<TimeOfDay> TimeOfDayValue(const YAML::Node& node, const std::string& what);
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
                          const char* key, bool required);

 private:
  // An error at each line whose indentation holds a tab.
  void IndentedWithTabs(std::string_view text);
  // Tags (!!str, !custom) would change what a value means to yaml-cpp and
  // not to us: refuse them rather than ignore them. An alias can make the
  // tree a cycle (`a: &x [*x]`) or blow it up exponentially, so the walk is
  // bounded in depth and in nodes; false once the bound is hit.
  bool NoTags(const YAML::Node& node, int depth, std::size_t& budget);

  std::string file_;
  std::vector<ConfigError> errors_;
};

}  // namespace tp::config
