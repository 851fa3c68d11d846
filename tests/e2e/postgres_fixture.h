// The fixture of the end-to-end tests on PostgreSQL: touchpointd
// processes on databases of the shared test server, a temporary directory
// for their configs and logs, and helpers to buy and to drain a queue.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "core/time.h"
#include "daemon_process.h"
#include "temp_dir.h"

namespace tp {

inline std::string Ago(std::chrono::milliseconds ago) {
  return FormatRfc3339(SystemClock().Now() - ago, UtcZone());
}

// A zone where it is about noon now: a cap's day in it does not end while
// a test runs, whatever the hour it runs at.
inline std::string ZoneAtNoon() {
  const auto now = std::chrono::system_clock::now();
  const auto day = std::chrono::floor<std::chrono::days>(now);
  const auto hour = std::chrono::duration_cast<std::chrono::hours>(now - day).count();
  long offset = 12 - hour;  // local = UTC + offset
  if (offset > 12) offset -= 24;
  if (offset == 0) return "Etc/UTC";
  // Etc/GMT-N is N hours ahead of UTC.
  return offset > 0 ? "Etc/GMT-" + std::to_string(offset) : "Etc/GMT+" + std::to_string(-offset);
}

// Whether `done` comes to hold within `timeout` (asked every 50 ms).
inline bool Eventually(const std::function<bool()>& done, std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return true;
}

inline nlohmann::json PurchaseBody(const std::string& order, const std::string& buyer,
                                   const std::string& at) {
  return {{"order_id", order}, {"buyer_id", buyer}, {"product", "daily"},
          {"quantity", 2},     {"amount", 240},     {"purchased_at", at}};
}

class PostgresDaemonTest : public ::testing::Test {
 protected:
  std::string Path(const std::string& name) const { return dir_.path() + "/" + name; }

  // A daemon on `url`, its log in daemon-`n`.log.
  testing::DaemonProcess& Start(const std::string& config, const std::string& url, int n = 0) {
    testing::WriteFile(Path("touchpoint.yaml"), config);
    daemons_.push_back(std::make_unique<testing::DaemonProcess>(
        Path("touchpoint.yaml"), url, Path("daemon-" + std::to_string(n) + ".log")));
    EXPECT_TRUE(daemons_.back()->Start());
    return *daemons_.back();
  }

  // Leases from each daemon in turn until none has anything left, acking
  // each message: touchpoint id -> how many times it was handed out. Each
  // message's event data, in the order handed out, into `handed` if given.
  static std::map<std::string, int> DrainQueue(std::vector<testing::DaemonProcess*> from,
                                               int expect, std::chrono::seconds within,
                                               std::vector<nlohmann::json>* handed = nullptr) {
    std::map<std::string, int> seen;
    std::size_t total = 0;
    const auto deadline = std::chrono::steady_clock::now() + within;
    while (std::chrono::steady_clock::now() < deadline &&
           total < static_cast<std::size_t>(expect)) {
      for (testing::DaemonProcess* d : from) {
        auto [status, body] =
            d->Call("POST", "/v1/queues/outbox/lease", {{"max", 100}, {"visibility_s", 60}});
        EXPECT_EQ(status, 200) << body;
        nlohmann::json receipts = nlohmann::json::array();
        for (const nlohmann::json& m : body["messages"]) {
          ++seen[m["event"]["data"]["id"].get<std::string>()];
          if (handed != nullptr) handed->push_back(m["event"]["data"]);
          ++total;
          receipts.push_back(m["receipt"]);
        }
        if (!receipts.empty()) {
          EXPECT_EQ(d->Call("POST", "/v1/queues/outbox/ack", {{"receipts", receipts}}).first, 200);
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return seen;
  }

  // /healthz once it says "degraded", or after 10 s.
  static std::pair<int, nlohmann::json> AwaitDegraded(testing::DaemonProcess& d) {
    std::pair<int, nlohmann::json> health;
    for (int i = 0; i < 100; ++i) {
      health = d.Call("GET", "/healthz");
      if (health.second["status"] == "degraded") break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return health;
  }

  testing::TempDir dir_;
  std::vector<std::unique_ptr<testing::DaemonProcess>> daemons_;
};

}  // namespace tp
