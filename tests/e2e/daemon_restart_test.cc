// End-to-end: the real touchpointd binary killed or stopped and started
// again on its SQLite file: nothing acknowledged is lost, and what fell due
// meanwhile fires within misfire_grace or is skipped.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "daemon_fixture.h"

namespace tp {
namespace {

using nlohmann::json;
using testing::Ago;
using testing::DaemonProcess;
using testing::DaemonTest;
using testing::DailyPurchase;
using ::testing::HasSubstr;
using testing::kFastConfig;

TEST_F(DaemonTest, Kill9LosesNoAcknowledgedPurchaseOrUnackedMessage) {
  DaemonProcess& d = StartDaemon(kFastConfig);
  // One touchpoint fired and leased but not acked before the crash.
  ASSERT_EQ(
      d.Call("POST", "/v1/purchases", DailyPurchase("first", "b0", Ago(std::chrono::seconds(5))))
          .first,
      200);
  WaitForBuyer("b0", [](const json& b) { return CountStatus(b, "fired") == 1; });
  auto [status, leased] =
      d.Call("POST", "/v1/queues/outbox/lease", {{"max", 1}, {"visibility_s", 1}});
  ASSERT_EQ(leased["messages"].size(), 1u);
  const json unacked_id = leased["messages"][0]["event"]["data"]["id"];

  // Writers keep ingesting until the daemon dies under them, spread over
  // enough buyers that each timeline below shows all of a buyer's purchases.
  constexpr int kBuyers = 70;
  std::mutex mu;
  std::vector<json> acknowledged;
  std::atomic<bool> stop{false};
  std::vector<std::thread> writers;
  for (int w = 0; w < 3; ++w) {
    writers.emplace_back([&, w] {
      auto client = HttpClient::Create(d.url());
      for (int batch = 0; !stop; ++batch) {
        json items = json::array();
        for (int i = 0; i < 20; ++i) {
          items.push_back(DailyPurchase(
              "w" + std::to_string(w) + "-" + std::to_string(batch) + "-" + std::to_string(i),
              "b" + std::to_string((batch * 20 + i) % kBuyers), Ago(std::chrono::seconds(30))));
        }
        auto r = (*client)->Request("POST", "/v1/purchases", items.dump());
        if (!r.ok()) break;  // the daemon is gone
        if (r->status == 200) {
          std::lock_guard lock(mu);
          acknowledged.insert(acknowledged.end(), items.begin(), items.end());
        }
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  d.Kill9();
  stop = true;
  for (auto& t : writers) t.join();
  ASSERT_FALSE(acknowledged.empty());

  ASSERT_TRUE(d.Start());
  // Every acknowledged purchase is there: re-sending them is all duplicates.
  for (std::size_t i = 0; i < acknowledged.size(); i += 1000) {
    json items = json::array();
    for (std::size_t j = i; j < std::min(acknowledged.size(), i + 1000); ++j) {
      items.push_back(acknowledged[j]);
    }
    auto [code, body] = d.Call("POST", "/v1/purchases", items);
    ASSERT_EQ(code, 200) << body;
    EXPECT_EQ(body["accepted"], 0);
    EXPECT_EQ(body["duplicates"], items.size());
  }
  // The fired-but-unacked message comes back after its visibility timeout.
  json again;
  for (int i = 0; i < 300 && again.empty(); ++i) {
    auto [code, body] =
        d.Call("POST", "/v1/queues/outbox/lease", {{"max", 1000}, {"visibility_s", 60}});
    for (const auto& m : body["messages"]) {
      if (m["event"]["data"]["id"] == unacked_id) again = m;
    }
    if (again.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_FALSE(again.empty());
  EXPECT_GE(again["deliveries"].get<int>(), 2);
  // Every touchpoint due by now reached a final state: nothing pending is late.
  std::set<std::string> buyers = {"b0"};
  for (const json& p : acknowledged) buyers.insert(p["buyer_id"].get<std::string>());
  for (const std::string& b : buyers) {
    const json seen = WaitForBuyer(b, [](const json& buyer) {
      for (const auto& t : buyer["touchpoints"]) {
        if (t["status"] == "pending" && t["topic"] == "soon") return false;
      }
      return true;
    });
    EXPECT_EQ(seen["earlier_purchases"], 0) << b << ": some purchases were not looked at";
  }
}

TEST_F(DaemonTest, MisfireAfterDowntimeFiresWithinGraceAndSkipsOlder) {
  DaemonProcess& d = StartDaemon(testing::TestConfig()
                                     .MisfireGrace("3s")
                                     .Cadence("c")
                                     .Step("2s", "early")
                                     .Step("6s", "late")
                                     .Yaml());

  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_EQ(d.Call("POST", "/v1/purchases", DailyPurchase("o1", "lin", Ago(Millis(0)))).first, 200);
  d.Signal(SIGTERM);
  ASSERT_EQ(d.Wait(), 0);
  // Down from ~0 s to 6.5 s: "early" (due at 2 s) is 4.5 s late, past the
  // 3 s grace; "late" (due at 6 s) is 0.5 s late.
  std::this_thread::sleep_until(t0 + std::chrono::milliseconds(6500));
  ASSERT_TRUE(d.Start());
  json buyer = WaitForBuyer("lin", [](const json& b) {
    return CountStatus(b, "fired") + CountStatus(b, "skipped") == 2;
  });
  for (const auto& t : buyer["touchpoints"]) {
    if (t["topic"] == "early") {
      EXPECT_EQ(t["status"], "skipped");
      EXPECT_THAT(t["reason"].get<std::string>(), HasSubstr("more than misfire_grace 3s"));
      ASSERT_EQ(t["history"].size(), 1u);
      EXPECT_EQ(t["history"][0]["status"], "skipped");
    } else {
      EXPECT_EQ(t["status"], "fired");
      EXPECT_EQ(t["history"][0]["reason"], "queued on outbox");
    }
  }
}

}  // namespace
}  // namespace tp
