// The brief's section 3 config, shared by the tests and the fuzz targets
// (which must not depend on gtest).
#pragma once

#include <string_view>

namespace tp::testing {

inline constexpr std::string_view kBriefConfig = R"(version: 1
timezone: Asia/Shanghai
send_window: {from: "09:00", to: "21:00"}
frequency_cap: {max: 2, per: day}
misfire_grace: 24h
products:
  daily:  {supply_days: 15}
  yearly: {supply_days: 365}
tiers:
  - {name: expert, min_purchases: 4, min_spend: 1500}
  - {name: newbie, min_purchases: 2}
  - {name: novice}
cadences:
  - name: trust
    trigger: purchase
    products: [daily, yearly]
    cancel_on_repurchase: true
    steps:
      - {after: 1d,  topic: how-to-wear, tiers: [novice]}
      - {after: 1d,  topic: colour-match, tiers: [newbie, expert]}
      - {after: 3d,  topic: comfort-check}
      - {after: 7d,  topic: care-tips}
      - {after: 21d, topic: style-ideas}
  - name: repurchase
    trigger: purchase
    products: [daily]
    cancel_on_repurchase: true
    steps:
      - {after: 10d, topic: trust-checkpoint}
      - {anchor: runout, after: 0d, topic: repurchase-reminder}
  - name: yearly-switch
    trigger: switch
    from: [daily]
    to: [yearly]
    steps:
      - {after: 30d, topic: yearly-care}
      - {after: 90d, topic: trust-review}
sinks:
  - {name: outbox, type: queue}
)";

}  // namespace tp::testing
