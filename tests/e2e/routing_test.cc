// End-to-end, on a real touchpointd: a channel per step and per tier. A
// step's `sinks` replace its cadence's; with `tiers` (here a tier by the
// purchase's `attributes`) novices' first step goes to an advisor's queue
// while the rest goes to the cadence's queue.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>

#include "core/clock.h"
#include "daemon_process.h"
#include "temp_dir.h"

namespace tp {
namespace {

using nlohmann::json;
using testing::DaemonProcess;

constexpr std::string_view kRoutingConfig = R"(version: 1
timezone: UTC
misfire_grace: 1h
products: {daily: {supply_days: 15}}
tiers:
  - {name: natural, attributes: {style: [natural, nude]}}
  - {name: other}
sinks:
  - {name: outbox, type: queue}
  - {name: advisor, type: queue}
cadences:
  - name: trust
    sinks: [outbox]
    steps:
      - {after: 1s, topic: personal-welcome, tiers: [natural], sinks: [advisor]}
      - {after: 1s, topic: how-to-wear}
)";

class RoutingTest : public ::testing::Test {
 protected:
  std::string Path(const std::string& name) const { return dir_.path() + "/" + name; }

  // (buyer, topic) of every message `queue` hands out now.
  std::set<std::pair<std::string, std::string>> Lease(const std::string& queue) {
    auto [status, body] = daemon_->Call("POST", "/v1/queues/" + queue + "/lease", {{"max", 100}});
    EXPECT_EQ(status, 200) << body;
    std::set<std::pair<std::string, std::string>> out;
    for (const auto& m : body["messages"]) {
      out.emplace(m["event"]["data"]["buyer_id"], m["event"]["data"]["topic"]);
    }
    return out;
  }

  testing::TempDir dir_;
  std::unique_ptr<DaemonProcess> daemon_;
};

TEST_F(RoutingTest, AStepWithItsOwnSinksGoesThereAndNotToItsCadences) {
  testing::WriteFile(Path("touchpoint.yaml"), kRoutingConfig);
  daemon_ =
      std::make_unique<DaemonProcess>(Path("touchpoint.yaml"), Path("tp.db"), Path("daemon.log"));
  ASSERT_TRUE(daemon_->Start());
  const std::string at = FormatRfc3339(SystemClock().Now() - std::chrono::seconds(5), UtcZone());
  json items = json::array();
  for (const auto& [buyer, style] : {std::pair{"lin", "natural"}, std::pair{"mei", "glam"}}) {
    items.push_back({{"order_id", std::string("o-") + buyer},
                     {"buyer_id", buyer},
                     {"product", "daily"},
                     {"quantity", 1},
                     {"amount", 10},
                     {"purchased_at", at},
                     {"attributes", {{"style", style}}}});
  }
  ASSERT_EQ(daemon_->Call("POST", "/v1/purchases", items).first, 200);

  // Three fires: lin's two, mei's one (her tier has no personal welcome).
  json lin;
  for (int i = 0; i < 1000; ++i) {
    lin = daemon_->Call("GET", "/v1/buyers/lin").second;
    int fired = 0;
    for (const auto& t : lin["touchpoints"]) fired += t["status"] == "fired";
    if (fired == 2) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const auto advisor = Lease("advisor");
  const auto outbox = Lease("outbox");
  EXPECT_EQ(advisor, (std::set<std::pair<std::string, std::string>>{{"lin", "personal-welcome"}}));
  EXPECT_EQ(outbox, (std::set<std::pair<std::string, std::string>>{{"lin", "how-to-wear"},
                                                                   {"mei", "how-to-wear"}}));
  // The buyer's timeline says where each went.
  std::set<std::string> reasons;
  for (const auto& t : lin["touchpoints"]) {
    for (const auto& h : t["history"]) reasons.insert(h["reason"].get<std::string>());
  }
  EXPECT_TRUE(reasons.contains("queued on advisor")) << lin.dump(2);
  EXPECT_TRUE(reasons.contains("queued on outbox")) << lin.dump(2);
  EXPECT_EQ(lin["touchpoints"][0]["tier"], "natural");
}

}  // namespace
}  // namespace tp
