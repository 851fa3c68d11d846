// The outcomes report read from SQLite (store/outcome_rows.h): the buyers
// split into ranges read at once give the figures one range gives, and a
// stop gives up.
#include "store/outcome_rows.h"

#include "outcomes/report_json.h"
#include "planner/planner.h"
#include "store/engagement_store_test.h"

namespace tp {
namespace {

class OutcomeRowsTest : public EngagementStoreTest {
 protected:
  OutcomeQuery Query(ReportBy by) const {
    OutcomeQuery query;
    query.options.by = by;
    query.options.from = At("2026-01-01T00:00:00Z");
    query.options.to = At("2027-01-01T00:00:00Z");
    query.options.as_of = At("2026-12-31T00:00:00Z");
    query.options.windows = rules_->outcomes;
    query.trust_types = {"replied", "clicked"};
    const std::shared_ptr<const Rules> rules = rules_.shared();
    query.runout = [rules](Instant at, std::int64_t quantity, const std::string& product,
                           const Zone* zone) {
      const int p = rules->ProductIndex(product);
      return p < 0 ? at : Runout(at, quantity, rules->products[static_cast<std::size_t>(p)], zone);
    };
    return query;
  }

  std::string Report(ReportBy by, int parts, const std::atomic<bool>& stop) {
    auto report = ComputeOutcomes(Path(), Query(by), parts, stop);
    EXPECT_TRUE(report.ok()) << report.status().message();
    return report.ok() ? ReportJson(*report).dump() : "";
  }
};

TEST_F(OutcomeRowsTest, BuyersReadInRangesAtOnceGiveTheFiguresOfOneRange) {
  // Twelve buyers: each buys; the steps of the first 20 days fire; every
  // other buyer clicks an hour after the first fire, every fourth replies;
  // every third buys again the day after the day-10 step.
  for (int b = 0; b < 12; ++b) {
    const std::string buyer = "b" + std::to_string(b);
    ASSERT_TRUE(scheduler_
                    ->Ingest({"o" + std::to_string(b), buyer, "daily", 1, 100.0 + b,
                              clock_.Now() + std::chrono::hours(b), ""})
                    .ok());
  }
  for (int day = 1; day <= 20; ++day) {
    clock_.Set(At("2026-11-01T23:00:00+08:00") + std::chrono::hours(24 * (day - 1)));
    ASSERT_TRUE(scheduler_->RunDue().ok());
    for (int b = 0; day == 2 && b < 12; b += 2) {
      const std::string type = b % 4 == 0 ? "replied" : "clicked";
      auto e = scheduler_->RecordEvent({"e" + std::to_string(b), "b" + std::to_string(b), type,
                                        clock_.Now() + std::chrono::hours(1), ""});
      ASSERT_TRUE(e.ok() && e->kind == EventOutcome::Kind::kRecorded && e->credited != 0);
    }
    for (int b = 0; day == 11 && b < 12; b += 3) {
      ASSERT_TRUE(scheduler_
                      ->Ingest({"r" + std::to_string(b), "b" + std::to_string(b), "daily", 1, 90,
                                clock_.Now(), ""})
                      .ok());
    }
  }
  store_.reset();

  const std::atomic<bool> go{false};
  for (ReportBy by : {ReportBy::kTier, ReportBy::kProduct, ReportBy::kCadence, ReportBy::kTopic}) {
    const std::string whole = Report(by, 1, go);
    const auto rows = nlohmann::json::parse(whole).at("rows");
    ASSERT_FALSE(rows.empty()) << ReportByName(by);
    for (int parts : {2, 3, 5, 20}) {
      EXPECT_EQ(Report(by, parts, go), whole) << ReportByName(by) << " in " << parts << " parts";
    }
  }
  // What the cadence report counted: fires, events credited, repurchases.
  const auto rows = nlohmann::json::parse(Report(ReportBy::kCadence, 3, go)).at("rows");
  std::int64_t fired = 0, engaged = 0, repurchases = 0;
  for (const auto& row : rows) {
    fired += row.at("fired").get<std::int64_t>();
    engaged += row.at("engaged").get<std::int64_t>();
    repurchases += row.at("repurchases").get<std::int64_t>();
  }
  EXPECT_GT(fired, 12);
  EXPECT_EQ(engaged, 6);
  EXPECT_EQ(repurchases, 4);
}

TEST_F(OutcomeRowsTest, AReportGivesUpWhenStopped) {
  ASSERT_TRUE(scheduler_->Ingest({"o1", "lin", "daily", 1, 120, clock_.Now(), ""}).ok());
  store_.reset();
  const std::atomic<bool> stop{true};
  auto report = ComputeOutcomes(Path(), Query(ReportBy::kTier), 2, stop);
  EXPECT_FALSE(report.ok());
}

}  // namespace
}  // namespace tp
