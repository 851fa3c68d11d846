// The outcomes' definitions (docs/outcomes.md) on their edges: a window's
// end, DST inside a window, open windows, a repurchase of another product,
// a late order, attribution within and past its window.
#include "outcomes/outcomes.h"

#include <gtest/gtest.h>

#include "harness.h"

namespace tp {
namespace {

using testing::At;

const Zone* BerlinZone() { return FindZone("Europe/Berlin"); }
const Zone* Shanghai() { return FindZone("Asia/Shanghai"); }

BuyerHistory::Purchase Bought(std::string_view at, int supply_days, double amount = 120,
                              const Zone* zone = Shanghai(), std::string product = "daily") {
  const Instant t = At(at);
  return {t, AddCalendarDays(t, supply_days, zone), amount, "novice", std::move(product), zone};
}

ReportOptions Options(ReportBy by, std::string_view as_of) {
  ReportOptions o;
  o.from = At("2026-01-01T00:00:00Z");
  o.to = At("2028-01-01T00:00:00Z");
  o.as_of = At(as_of);
  o.by = by;
  return o;
}

const PurchaseOutcomes& Row(const OutcomeReport& r, const std::string& key) {
  static const PurchaseOutcomes kNone;
  auto it = r.purchase_rows().find(key);
  return it == r.purchase_rows().end() ? kNone : it->second;
}

TEST(OutcomesTest, TrustCountsASignalUpToButNotAtTheWindowsEnd) {
  BuyerHistory inside, at_end, before, not_trust;
  for (BuyerHistory* b : {&inside, &at_end, &before, &not_trust}) {
    b->purchases.push_back(Bought("2026-11-01T10:00:00+08:00", 30));
  }
  inside.events.push_back({At("2026-11-11T09:59:59.999+08:00"), true, 0});
  at_end.events.push_back({At("2026-11-11T10:00:00+08:00"), true, 0});
  before.events.push_back({At("2026-11-01T09:59:59+08:00"), true, 0});
  not_trust.events.push_back({At("2026-11-02T10:00:00+08:00"), false, 0});
  OutcomeReport report(Options(ReportBy::kTier, "2026-12-31T00:00:00Z"));
  for (const BuyerHistory* b : {&inside, &at_end, &before, &not_trust}) report.Add(*b);
  const PurchaseOutcomes& row = Row(report, "novice");
  EXPECT_EQ(row.purchases, 4);
  EXPECT_EQ(row.trust_built, 1);
  EXPECT_EQ(row.trust_open, 0);
  EXPECT_DOUBLE_EQ(*row.TrustRate(), 0.25);
}

TEST(OutcomesTest, TrustWithinCountsCalendarDaysAcrossADstChange) {
  // Berlin falls back on 2027-10-31: 10 calendar days from 10-25 10:00 end
  // at 11-04 10:00 local, 241 hours later, not 240.
  BuyerHistory b;
  b.purchases.push_back(Bought("2027-10-25T10:00:00+02:00", 30, 120, BerlinZone()));
  b.events.push_back({At("2027-11-04T09:30:00+01:00"), true, 0});  // 240.5 h later
  OutcomeReport report(Options(ReportBy::kTier, "2027-12-31T00:00:00Z"));
  report.Add(b);
  EXPECT_EQ(Row(report, "novice").trust_built, 1);
}

TEST(OutcomesTest, AWindowStillOpenIsLeftOutOfTheRate) {
  BuyerHistory b;
  b.purchases.push_back(Bought("2026-11-01T10:00:00+08:00", 30));
  // As of 11-05: trust open (ends 11-11), repurchase open (ends 12-01).
  OutcomeReport early(Options(ReportBy::kTier, "2026-11-05T00:00:00+08:00"));
  early.Add(b);
  EXPECT_EQ(Row(early, "novice").trust_open, 1);
  EXPECT_EQ(Row(early, "novice").open, 1);
  EXPECT_FALSE(Row(early, "novice").TrustRate().has_value());
  EXPECT_FALSE(Row(early, "novice").RepurchaseRate().has_value());
  // At the runout itself the window has closed: a failure, not open.
  OutcomeReport closed(Options(ReportBy::kTier, "2026-12-01T10:00:00+08:00"));
  closed.Add(b);
  EXPECT_EQ(Row(closed, "novice").open, 0);
  EXPECT_DOUBLE_EQ(*Row(closed, "novice").RepurchaseRate(), 0);
}

TEST(OutcomesTest, ARepurchaseOfAnotherProductUpToRunoutPlusGraceCounts) {
  BuyerHistory b;
  b.purchases.push_back(Bought("2026-11-01T10:00:00+08:00", 30));
  // Another product, exactly at runout: in the window (its end is inclusive).
  b.purchases.push_back(Bought("2026-12-01T10:00:00+08:00", 365, 900, Shanghai(), "yearly"));
  OutcomeReport report(Options(ReportBy::kProduct, "2027-12-31T00:00:00Z"));
  report.Add(b);
  const PurchaseOutcomes& daily = report.purchase_rows().at("daily");
  EXPECT_EQ(daily.repurchased, 1);
  EXPECT_DOUBLE_EQ(*daily.MedianDaysToRepurchase(), 30);
  // The yearly one is not repurchased: its window closed at 2027-12-01.
  EXPECT_EQ(report.purchase_rows().at("yearly").repurchased, 0);
  EXPECT_EQ(report.purchase_rows().at("yearly").open, 0);

  // A minute later it misses, unless repurchase_grace covers it.
  BuyerHistory late;
  late.purchases.push_back(Bought("2026-11-01T10:00:00+08:00", 30));
  late.purchases.push_back(Bought("2026-12-01T10:01:00+08:00", 30));
  OutcomeReport strict(Options(ReportBy::kProduct, "2027-12-31T00:00:00Z"));
  strict.Add(late);
  EXPECT_EQ(strict.purchase_rows().at("daily").repurchased, 0);
  ReportOptions graced = Options(ReportBy::kProduct, "2027-12-31T00:00:00Z");
  graced.windows.repurchase_grace = Duration{1, Duration::Unit::kDays};
  OutcomeReport lenient(graced);
  lenient.Add(late);
  EXPECT_EQ(lenient.purchase_rows().at("daily").repurchased, 1);
}

TEST(OutcomesTest, APurchaseAfterTheReportWindowStillRepurchasesOneInIt) {
  // The report covers November; the repurchase came in December, and
  // arrived (a late order) after as_of: unknown then, known later.
  BuyerHistory b;
  b.purchases.push_back(Bought("2026-11-20T10:00:00+08:00", 30));
  b.purchases.push_back(Bought("2026-12-10T10:00:00+08:00", 30));
  ReportOptions o = Options(ReportBy::kTier, "2026-12-05T00:00:00Z");
  o.from = At("2026-11-01T00:00:00+08:00");
  o.to = At("2026-12-01T00:00:00+08:00");
  OutcomeReport before(o);
  before.Add(b);
  EXPECT_EQ(Row(before, "novice").purchases, 1);
  EXPECT_EQ(Row(before, "novice").open, 1);
  o.as_of = At("2027-01-31T00:00:00Z");
  OutcomeReport after(o);
  after.Add(b);
  EXPECT_EQ(Row(after, "novice").purchases, 1);
  EXPECT_EQ(Row(after, "novice").repurchased, 1);
  EXPECT_DOUBLE_EQ(*Row(after, "novice").MedianDaysToRepurchase(), 20);
}

TEST(OutcomesTest, FiresAreCreditedWithEngagementAndRepurchasesInTheirWindow) {
  BuyerHistory b;
  b.purchases.push_back(Bought("2026-11-01T10:00:00+08:00", 30));
  b.fires.push_back({At("2026-11-02T10:00:00+08:00"), 1, "trust", "how-to-wear", Shanghai()});
  b.fires.push_back({At("2026-11-04T10:00:00+08:00"), 2, "trust", "comfort-check", Shanghai()});
  b.fires.push_back({At("2026-11-27T10:00:00+08:00"), 3, "repurchase", "reminder", Shanghai()});
  // Two events for one touchpoint both count; one credited to nothing does not.
  b.events.push_back({At("2026-11-04T11:00:00+08:00"), true, 2});
  b.events.push_back({At("2026-11-04T12:00:00+08:00"), false, 2});
  b.events.push_back({At("2026-11-20T12:00:00+08:00"), false, 0});
  // The repurchase, 47 hours after the reminder: credited to it.
  b.purchases.push_back(Bought("2026-11-29T09:00:00+08:00", 30, 240));
  OutcomeReport by_topic(Options(ReportBy::kTopic, "2026-12-31T00:00:00Z"));
  by_topic.Add(b);
  const auto& rows = by_topic.fire_rows();
  EXPECT_EQ(rows.at("comfort-check").engaged, 2);
  EXPECT_DOUBLE_EQ(*rows.at("comfort-check").EngagementRate(), 2);
  EXPECT_EQ(rows.at("how-to-wear").engaged, 0);
  EXPECT_EQ(rows.at("reminder").repurchases, 1);
  EXPECT_DOUBLE_EQ(rows.at("reminder").revenue, 240);
  OutcomeReport by_cadence(Options(ReportBy::kCadence, "2026-12-31T00:00:00Z"));
  by_cadence.Add(b);
  EXPECT_EQ(by_cadence.fire_rows().at("trust").fired, 2);
  EXPECT_EQ(by_cadence.fire_rows().at("trust").repurchases, 0);

  // Past the attribution window (7d) nothing is credited.
  BuyerHistory late = b;
  late.purchases.back() = Bought("2026-12-04T10:00:01+08:00", 30, 240);
  OutcomeReport past(Options(ReportBy::kTopic, "2026-12-31T00:00:00Z"));
  past.Add(late);
  EXPECT_EQ(past.fire_rows().at("reminder").repurchases, 0);
}

}  // namespace
}  // namespace tp
