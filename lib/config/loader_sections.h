// The config loader's class: YAML -> Rules, section by section, every
// problem reported (config/yaml_reader.h). Its members live in a file per
// group of sections: loader.cc (the top level, send window, caps,
// products, tiers), sinks_loader.cc (sinks, their secrets, API tokens),
// engagement_loader.cc (engagement events and the outcomes' windows),
// cadences_loader.cc (cadences and their steps). Internal to lib/config;
// LoadRulesString (config/loader.h) is the entry point.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "config/loader.h"
#include "config/yaml_reader.h"
#include "core/status.h"
#include "core/url.h"

namespace tp::config {

// A config may list this many frequency caps.
inline constexpr std::size_t kMaxFrequencyCaps = 16;

class Loader : public YamlReader {
 public:
  using YamlReader::YamlReader;

  LoadResult Load(std::string_view text);

 private:
  // loader.cc
  LoadResult Finish();
  void LoadRoot(const YAML::Node& root);
  void LoadSendWindow(const YAML::Node& node);
  void LoadHttp(const YAML::Node& node);
  // One cap or a list of them (after the sinks: a cap may name some).
  void LoadRetention(const YAML::Node& node);
  void LoadFrequencyCaps(const YAML::Node& node);
  void LoadFrequencyCap(const YAML::Node& node, const std::string& what);
  void LoadProducts(const YAML::Node& node);
  void LoadTiers(const YAML::Node& node);
  void LoadTierAttributes(const YAML::Node& node, const std::string& what, Tier& tier);
  // sinks_loader.cc
  void LoadSinks(const YAML::Node& node);
  // A path in the config relative to the config file's directory.
  std::string RelativeToConfig(const std::string& path) const;
  void LoadUrl(const Fields& fields, const YAML::Node& item, const std::string& what, bool required,
               StatusOr<Url> (*parse)(std::string_view), Sink& sink);
  void LoadWebhook(const Fields& fields, const YAML::Node& item, const std::string& what,
                   Sink& sink);
  // Reads a file of secrets now (at start and at every reload): one per
  // line, several during a rotation; blank lines and '#' comments are
  // skipped. `take` gets each trimmed line and says whether it is valid; the
  // first invalid one is reported by its number only, never echoed.
  // `what` names the key ("secret_file"), `noun` one line's thing
  // ("secret"), `expected` what a line must be.
  void LoadSecretLines(const YAML::Node& node, const std::string& path, const char* what,
                       const char* noun, const std::string& expected,
                       const std::function<bool(std::string_view)>& take);
  void LoadSecrets(const YAML::Node& node, Sink& sink);
  void LoadCaFile(const YAML::Node& node, Sink& sink);
  void LoadTokens(const YAML::Node& node);
  void LoadRedis(const Fields& fields, const YAML::Node& item, const std::string& what, Sink& sink);
  // engagement_loader.cc
  void LoadEngagement(const YAML::Node& node);
  void LoadOutcomes(const YAML::Node& node);
  // cadences_loader.cc
  void LoadCadences(const YAML::Node& node);
  void LoadSteps(const YAML::Node& node, const std::string& what, Cadence& cadence);

  Rules rules_;
};

}  // namespace tp::config
