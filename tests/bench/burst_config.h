// The config of the fire benchmarks (the end-to-end one and the store's
// micro-benchmarks): a first daily purchase plans six touchpoints, all an
// hour after it, handed to `sink` (one YAML flow mapping).
#pragma once

#include <string>

namespace tp::bench {

inline std::string BurstConfig(const std::string& sink) {
  std::string yaml =
      "version: 1\ntimezone: UTC\nmisfire_grace: 1h\nproducts: {daily: {supply_days: 15}}\n"
      "cadences:\n  - name: burst\n    trigger: purchase\n    products: [daily]\n"
      "    steps:\n";
  for (int s = 1; s <= 6; ++s)
    yaml += "      - {after: 1h, topic: step-" + std::to_string(s) + "}\n";
  return yaml + "sinks:\n  - " + sink + "\nlog: {level: warn}\n";
}

}  // namespace tp::bench
