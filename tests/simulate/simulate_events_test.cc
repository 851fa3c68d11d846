// `simulate --events`: engagement events replayed with the purchases on the
// virtual clock, by the daemon's rules (stop_on, when, touchpoint ids).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/ids.h"
#include "engagement_rules.h"
#include "harness.h"
#include "simulate/simulate.h"

namespace tp {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

using testing::kEngagementRules;

constexpr std::string_view kPurchases =
    "order_id,buyer_id,product,quantity,amount,purchased_at\n"
    "o1,lin,daily,1,120,2026-11-01T10:00:00+08:00\n"
    "o2,wu,daily,1,120,2026-11-01T10:00:00+08:00\n";

class SimulateEventsTest : public ::testing::Test {
 protected:
  std::filesystem::path dir_ = std::filesystem::temp_directory_path() /
                               ("tp-simev-" + std::to_string(::getpid()) + "-" +
                                ::testing::UnitTest::GetInstance()->current_test_info()->name());
  void SetUp() override { std::filesystem::create_directories(dir_); }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Write(const std::string& name, std::string_view text) {
    const auto path = dir_ / name;
    std::ofstream(path) << text;
    return path.string();
  }
  // Runs simulate; the status of each (buyer, topic).
  SimulateResult Run(std::string_view events, std::map<std::string, std::string>& status) {
    SimulateOptions options;
    options.purchases_path = Write("p.csv", kPurchases);
    options.events_path = Write("e.csv", events);
    std::ostringstream out;
    SimulateResult r = Simulate(testing::MustLoad(kEngagementRules), options, out);
    std::istringstream lines(out.str());
    for (std::string line; std::getline(lines, line);) {
      const json j = json::parse(line);
      status[j["buyer_id"].get<std::string>() + " " + j["topic"].get<std::string>()] =
          j["status"].get<std::string>();
    }
    return r;
  }
};

TEST_F(SimulateEventsTest, EventsStopCadencesAndDecideWhen) {
  std::map<std::string, std::string> status;
  const SimulateResult r =
      Run("event_id,buyer_id,type,at,touchpoint_id\n"
          "e2,lin,replied,2026-11-02T12:00:00+08:00,\n"
          "e1,wu,read,2026-11-02T12:00:00+08:00,\n"
          "e2,lin,replied,2026-11-02T12:00:00+08:00,\n",  // a repeat: a duplicate
          status);
  ASSERT_TRUE(r.ok()) << r.errors.front();
  EXPECT_EQ(r.events, 2u);
  EXPECT_EQ(r.event_duplicates, 1u);
  EXPECT_EQ(status["lin how-to-wear"], "fired");
  EXPECT_EQ(status["lin comfort-check"], "cancelled");
  EXPECT_EQ(status["lin style-ideas"], "fired");
  EXPECT_EQ(status["lin trust-checkpoint"], "skipped");
  EXPECT_EQ(status["wu comfort-check"], "fired");
  EXPECT_EQ(status["wu style-ideas"], "skipped");
  EXPECT_EQ(status["wu trust-checkpoint"], "fired");
}

TEST_F(SimulateEventsTest, BadEventRowsAreNamedAndNothingIsSimulated) {
  std::map<std::string, std::string> status;
  const SimulateResult r =
      Run("event_id,buyer_id,type,at\n"
          "e1,lin,opened,2026-11-02T12:00:00+08:00\n"
          "e2,lin,read,yesterday\n"
          "e3,lin,read,2026-11-02T12:00:00+08:00\n"
          "e3,lin,clicked,2026-11-02T12:00:00+08:00\n",
          status);
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(status.empty());
  ASSERT_EQ(r.errors.size(), 3u);
  EXPECT_THAT(r.errors[0], HasSubstr("e.csv:2: error: field 'type': unknown type 'opened'"));
  EXPECT_THAT(r.errors[1], HasSubstr("e.csv:3: error: field 'at': at must be an RFC 3339 time"));
  EXPECT_THAT(r.errors[2], HasSubstr("e.csv:5: error: field 'type': event_id 'e3' is also line "
                                     "4, with another type"));
}

TEST_F(SimulateEventsTest, AnEventForAnotherBuyersTouchpointIsLeftOutWithAWarning) {
  // Lin's how-to-wear fires on 11-02 10:00; its id is the daemon's.
  const std::string lins = TouchpointId("o1", "trust", "how-to-wear");
  std::map<std::string, std::string> status;
  const SimulateResult r =
      Run("event_id,buyer_id,type,at,touchpoint_id\n"
          "e1,wu,clicked,2026-11-02T12:00:00+08:00," +
              lins + "\ne2,lin,clicked,2026-11-02T12:00:00+08:00," + lins + "\n",
          status);
  ASSERT_TRUE(r.ok()) << r.errors.front();
  EXPECT_EQ(r.events, 1u);
  ASSERT_EQ(r.warnings.size(), 1u);
  EXPECT_THAT(r.warnings[0], HasSubstr("e.csv:2: warning: field 'touchpoint_id'"));
  EXPECT_EQ(status["lin style-ideas"], "fired");   // e2 counted
  EXPECT_EQ(status["wu style-ideas"], "skipped");  // e1 left out
}

TEST_F(SimulateEventsTest, TheReportIsComputedFromTheReplay) {
  SimulateOptions options;
  options.purchases_path = Write("p.csv",
                                 "order_id,buyer_id,product,quantity,amount,purchased_at\n"
                                 "o1,lin,daily,1,120,2026-11-01T10:00:00+08:00\n"
                                 "o2,wu,daily,1,120,2026-11-01T10:00:00+08:00\n"
                                 "o3,lin,daily,1,120,2026-11-10T10:00:00+08:00\n");
  options.events_path = Write("e.csv",
                              "event_id,buyer_id,type,at\n"
                              "e1,lin,clicked,2026-11-02T12:00:00+08:00\n");
  options.report = ReportBy::kTier;
  std::ostringstream out;
  const SimulateResult r = Simulate(testing::MustLoad(kEngagementRules), options, out);
  ASSERT_TRUE(r.ok()) << r.errors.front();
  EXPECT_TRUE(out.str().empty());  // the report instead of the touchpoints
  ASSERT_TRUE(r.report.has_value());
  const PurchaseOutcomes& row = r.report->purchase_rows().at("default");
  EXPECT_EQ(row.purchases, 3);
  EXPECT_EQ(row.trust_built, 1);  // o1; o3 came after the click
  EXPECT_EQ(row.repurchased, 1);  // o1, by o3 nine days on
  EXPECT_DOUBLE_EQ(*row.MedianDaysToRepurchase(), 9);

  options.report = ReportBy::kCadence;
  const SimulateResult by_cadence = Simulate(testing::MustLoad(kEngagementRules), options, out);
  ASSERT_TRUE(by_cadence.ok());
  // The click a day after how-to-wear fired to lin is credited to it.
  EXPECT_EQ(by_cadence.report->fire_rows().at("trust").engaged, 1);
  EXPECT_GE(by_cadence.report->fire_rows().at("trust").fired, 3);
}

}  // namespace
}  // namespace tp
