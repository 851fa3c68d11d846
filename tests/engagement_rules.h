// The rules the engagement tests share (store, simulate): Shanghai, no
// send window; a trust cadence a reply stops, a style step for engaged
// buyers (day 5) and a checkpoint for the others (day 10).
#pragma once

#include <string_view>

namespace tp::testing {

inline constexpr std::string_view kEngagementRules = R"(version: 1
timezone: Asia/Shanghai
misfire_grace: 24h
products:
  daily: {supply_days: 15}
sinks:
  - {name: outbox, type: queue}
cadences:
  - name: trust
    stop_on: [replied]
    steps:
      - {after: 1d, topic: how-to-wear}
      - {after: 3d, topic: comfort-check}
  - name: style
    steps:
      - {after: 5d, topic: style-ideas, when: engaged}
  - name: checkpoint
    steps:
      - {after: 10d, topic: trust-checkpoint, when: not_engaged}
)";

}  // namespace tp::testing
