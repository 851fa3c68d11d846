// The config loader tests' starting point: a valid config to break one
// piece at a time.
#pragma once

#include <string_view>

namespace tp::testing {

inline constexpr std::string_view kMinimal = R"(version: 1
products:
  daily: {supply_days: 15}
sinks:
  - {name: outbox, type: queue}
cadences:
  - name: trust
    steps:
      - {after: 1d, topic: hello}
)";

}  // namespace tp::testing
