// YAML -> Rules, validating everything and reporting every problem at once.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/rules.h"

namespace tp {

// One problem in a config file. Line and column are 1-based and point at the
// offending value, or at the enclosing map when a required key is missing.
struct ConfigError {
  std::string file;
  int line = 0;
  int column = 0;
  std::string message;

  // "FILE:LINE:COL: error: MESSAGE"
  std::string ToString() const;
};

struct LoadResult {
  std::shared_ptr<const Rules> rules;  // null unless errors is empty
  std::vector<ConfigError> errors;     // in file order
  bool ok() const { return rules != nullptr; }
};

// Reads and validates the config at `path`. Never throws.
LoadResult LoadRulesFile(const std::string& path);
// Validates `yaml`; `file` names it in errors. Never throws.
LoadResult LoadRulesString(std::string_view yaml, const std::string& file);

}  // namespace tp
