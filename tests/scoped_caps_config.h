// A config with a frequency cap scoped to one sink, and a step routed to a
// sink other than its cadence's: the scheduler's cap tests
// (tests/scheduler/caps_test.cc) and the SQLite store's routing test
// (tests/store/fire_tables_test.cc) share it. Every step is due a day
// after the purchase; y is in the email cadence but goes to wecom.
#pragma once

#include <string_view>

namespace tp::testing {

inline constexpr std::string_view kScopedCapsConfig = R"(version: 1
timezone: Asia/Shanghai
send_window: {from: "09:00", to: "21:00"}
frequency_cap:
  - {max: 1, per: day, sinks: [wecom]}
products: {p: {supply_days: 365}}
sinks:
  - {name: wecom, type: queue}
  - {name: email, type: queue}
cadences:
  - name: chat
    sinks: [wecom]
    steps:
      - {after: 1d, topic: a}
      - {after: 1d, topic: b}
  - name: mail
    sinks: [email]
    steps:
      - {after: 1d, topic: x}
      - {after: 1d, topic: y, sinks: [wecom]}
      - {after: 1d, topic: z}
)";

}  // namespace tp::testing
