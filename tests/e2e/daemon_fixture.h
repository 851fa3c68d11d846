// The DaemonTest fixture of the end-to-end tests on one real touchpointd
// with a temporary SQLite file (daemon_test.cc, daemon_restart_test.cc),
// and the purchases they send.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <thread>

#include "brief_config.h"
#include "core/clock.h"
#include "daemon_process.h"
#include "temp_dir.h"
#include "test_config.h"

namespace tp::testing {

// Steps a real-time test can wait for: one due a second after the purchase.
inline const std::string kFastConfig = testing::TestConfig()
                                           .Tier("{name: newbie, min_purchases: 2}")
                                           .Tier("{name: novice}")
                                           .CancelOnRepurchase()
                                           .Step("1s", "soon")
                                           .Step("1d", "later")
                                           .Step("3d", "much-later")
                                           .Yaml();

inline std::string Ago(std::chrono::milliseconds ago) {
  return FormatRfc3339(SystemClock().Now() - ago, UtcZone());
}

// A minute before the tests started: nothing of it is due for a day, and
// the same for every call, so re-sending a purchase is a true duplicate.
inline const std::string& RecentTime() {
  static const std::string at = Ago(std::chrono::minutes(1));
  return at;
}

// The latest of 10:00, 15:00 and 20:00 in `zone` that is at least a minute
// ago: the same wall-clock time a day later is inside a 09:00-21:00 send
// window and still ahead, whatever the hour and day the test runs at.
inline std::string RecentInsideTheWindow(std::string_view zone_name) {
  const Zone* zone = FindZone(zone_name);
  const Instant latest = SystemClock().Now() - std::chrono::minutes(1);
  Instant best{};
  for (int days_back : {0, 1}) {
    for (int hour : {10, 15, 20}) {
      const Instant t =
          AtLocalTimeOfDay(AddCalendarDays(latest, -days_back, zone), TimeOfDay{hour * 60}, zone);
      if (t <= latest && t > best) best = t;
    }
  }
  return FormatRfc3339(best, zone);
}

inline nlohmann::json DailyPurchase(const std::string& order, const std::string& buyer,
                                    const std::string& at = RecentTime()) {
  return {{"order_id", order}, {"buyer_id", buyer}, {"product", "daily"},
          {"quantity", 2},     {"amount", 240},     {"purchased_at", at}};
}

class DaemonTest : public ::testing::Test {
 protected:
  std::string Path(const std::string& name) const { return dir_.path() + "/" + name; }

  DaemonProcess& StartDaemon(std::string_view config = testing::kBriefConfig) {
    testing::WriteFile(Path("touchpoint.yaml"), config);
    daemon_ =
        std::make_unique<DaemonProcess>(Path("touchpoint.yaml"), Path("tp.db"), Path("daemon.log"));
    EXPECT_TRUE(daemon_->Start());
    return *daemon_;
  }

  // Polls the buyer until `done` holds (10 s at most).
  // (The timeline of the buyer's last 500 purchases: a test that needs all
  // checks earlier_purchases.)
  nlohmann::json WaitForBuyer(const std::string& buyer,
                              const std::function<bool(const nlohmann::json&)>& done) {
    nlohmann::json last;
    for (int i = 0; i < 1000; ++i) {
      auto [status, body] = daemon_->Call("GET", "/v1/buyers/" + buyer + "?purchases=500");
      last = body;
      if (status == 200 && done(body)) return body;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ADD_FAILURE() << "buyer " << buyer << " never reached the expected state: " << last.dump(2);
    return last;
  }

  static int CountStatus(const nlohmann::json& buyer, const std::string& status) {
    int n = 0;
    for (const auto& t : buyer["touchpoints"]) n += t["status"] == status;
    return n;
  }

  testing::TempDir dir_;
  std::unique_ptr<DaemonProcess> daemon_;
};

}  // namespace tp::testing
