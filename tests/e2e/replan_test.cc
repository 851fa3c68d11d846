// End-to-end: re-planning after the rules change, in the background, on a
// real touchpointd: after a reload, after a start on other rules, and after
// a kill -9 in the middle of one.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

#include "core/clock.h"
#include "daemon_process.h"
#include "temp_dir.h"
#include "test_config.h"

namespace tp {
namespace {

using nlohmann::json;
using testing::DaemonProcess;
using ::testing::HasSubstr;

std::string ReplanConfig(std::string_view last_step) {
  return testing::TestConfig()
      .Tier("{name: novice}")
      .Step("1d", "tomorrow")
      .StepYaml(std::string(last_step))
      .Yaml();
}

class BackgroundReplanTest : public ::testing::Test {
 protected:
  std::string Path(const std::string& name) const { return dir_.path() + "/" + name; }

  DaemonProcess& Start(std::string_view config) {
    testing::WriteFile(Path("touchpoint.yaml"), config);
    if (!daemon_) {
      daemon_ = std::make_unique<DaemonProcess>(Path("touchpoint.yaml"), Path("tp.db"),
                                                Path("daemon.log"));
    }
    EXPECT_TRUE(daemon_->Start());
    return *daemon_;
  }

  // `buyers` buyers with one purchase each, made an hour ago.
  void Buy(int buyers) {
    const std::string at = FormatRfc3339(SystemClock().Now() - std::chrono::hours(1), UtcZone());
    for (int first = 0; first < buyers; first += 1000) {
      json items = json::array();
      for (int b = first; b < std::min(buyers, first + 1000); ++b) {
        items.push_back({{"order_id", "o" + std::to_string(b)},
                         {"buyer_id", "b" + std::to_string(b)},
                         {"product", "daily"},
                         {"quantity", 1},
                         {"amount", 10},
                         {"purchased_at", at}});
      }
      ASSERT_EQ(daemon_->Call("POST", "/v1/purchases", items).first, 200);
    }
  }

  std::vector<std::string> Topics(const std::string& buyer) {
    std::vector<std::string> out;
    const json report = daemon_->Call("GET", "/v1/buyers/" + buyer).second;
    for (const auto& t : report["touchpoints"]) {
      out.push_back(t["topic"].get<std::string>() + ":" + t["status"].get<std::string>());
    }
    return out;
  }

  ::testing::AssertionResult WaitForLog(const std::string& text) {
    return daemon_->WaitForLog(text, std::chrono::seconds(60));
  }

  testing::TempDir dir_;
  std::unique_ptr<DaemonProcess> daemon_;
};

TEST_F(BackgroundReplanTest, AReloadAnswersAtOnceAndReplansInTheBackground) {
  DaemonProcess& d = Start(ReplanConfig("{after: 3d, topic: later}"));
  Buy(2000);
  testing::WriteFile(Path("touchpoint.yaml"), ReplanConfig("{after: 4d, topic: later-still}"));
  d.Signal(SIGHUP);
  ASSERT_TRUE(WaitForLog("planning rules changed"));
  ASSERT_TRUE(WaitForLog("re-planned pending touchpoints of 2000 buyers"));
  const json health = d.Call("GET", "/healthz").second;
  EXPECT_EQ(health["config"]["replan"]["state"], "done");
  EXPECT_EQ(health["config"]["replan"]["cancelled"], 2000);
  EXPECT_EQ(health["config"]["replan"]["added"], 2000);
  EXPECT_THAT(Topics("b1999"), ::testing::UnorderedElementsAre(
                                   "tomorrow:pending", "later:cancelled", "later-still:pending"));
}

TEST_F(BackgroundReplanTest, AStartOnRulesChangedWhileStoppedReplans) {
  DaemonProcess& d = Start(ReplanConfig("{after: 3d, topic: later}"));
  Buy(10);
  d.Signal(SIGTERM);
  ASSERT_EQ(d.Wait(), 0);
  // Edited while stopped, then started (systemctl restart, not reload).
  Start(ReplanConfig("{after: 4d, topic: later-still}"));
  ASSERT_TRUE(WaitForLog("are not those the pending touchpoints were planned by"));
  ASSERT_TRUE(WaitForLog("re-planned pending touchpoints of 10 buyers"));
  EXPECT_THAT(Topics("b3"), ::testing::UnorderedElementsAre("tomorrow:pending", "later:cancelled",
                                                            "later-still:pending"));
  // The next start on the same rules re-plans nothing.
  d.Signal(SIGTERM);
  ASSERT_EQ(d.Wait(), 0);
  const std::size_t before = d.log().size();
  Start(ReplanConfig("{after: 4d, topic: later-still}"));
  EXPECT_EQ(d.Call("GET", "/healthz").first, 200);
  EXPECT_EQ(d.log().substr(before).find("re-planning"), std::string::npos) << d.log();
}

TEST_F(BackgroundReplanTest, AReplanCutShortByKill9ResumesAtTheNextStart) {
  DaemonProcess& d = Start(ReplanConfig("{after: 3d, topic: later}"));
  constexpr int kBuyers = 10'000;
  Buy(kBuyers);
  testing::WriteFile(Path("touchpoint.yaml"), ReplanConfig("{after: 4d, topic: later-still}"));
  d.Signal(SIGHUP);
  ASSERT_TRUE(WaitForLog("planning rules changed"));
  d.Kill9();
  if (d.log().find("re-planned pending touchpoints of") != std::string::npos) {
    GTEST_SKIP() << "the re-plan finished before the kill: nothing was cut short";
  }
  Start(ReplanConfig("{after: 4d, topic: later-still}"));
  ASSERT_TRUE(WaitForLog("resuming the re-plan a stop interrupted"));
  ASSERT_TRUE(WaitForLog("re-planned pending touchpoints of"));
  for (const int b : {0, kBuyers / 2, kBuyers - 1}) {
    EXPECT_THAT(Topics("b" + std::to_string(b)),
                ::testing::UnorderedElementsAre("tomorrow:pending", "later:cancelled",
                                                "later-still:pending"))
        << b;
  }
}

}  // namespace
}  // namespace tp
