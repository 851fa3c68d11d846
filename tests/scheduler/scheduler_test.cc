#include "scheduler/scheduler.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "harness.h"

namespace tp {
namespace {

using testing::At;
using ::testing::ElementsAre;
using testing::Harness;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::kBriefConfig;

TEST(SchedulerTest, DailyBuyerGetsDay1And3BeforeRepurchaseCancelsTheRest) {
  Harness h(kBriefConfig, At("2026-11-01T15:30:00+08:00"));
  h.Buy("o1", "lin", "daily", 2, 240, "2026-11-01T15:30:00+08:00");
  h.Buy("o2", "lin", "daily", 2, 240, "2026-11-05T12:00:00+08:00");
  EXPECT_THAT(h.FiredTopics("lin"), ElementsAre("how-to-wear", "comfort-check"));
  EXPECT_EQ(h.Find("o1", "care-tips")->state, TouchpointState::kCancelled);
  EXPECT_EQ(h.Find("o1", "repurchase-reminder")->state, TouchpointState::kCancelled);
  EXPECT_EQ(h.Find("o1", "repurchase-reminder")->reason, "repurchased: order o2");
  EXPECT_EQ(h.Find("o2", "colour-match")->state, TouchpointState::kPending);
  h.RunAll();
  EXPECT_THAT(h.FiredTopics("lin"),
              ElementsAre("how-to-wear", "comfort-check", "colour-match", "comfort-check",
                          "care-tips", "trust-checkpoint", "style-ideas", "repurchase-reminder"));
}

TEST(SchedulerTest, WindowEdgesFromIsInsideToIsOutside) {
  constexpr std::string_view kConfig = R"(version: 1
timezone: Europe/Berlin
send_window: {from: "09:00", to: "21:00"}
products: {p: {supply_days: 30}}
sinks: [{name: q, type: queue}]
cadences:
  - name: c
    steps:
      - {after: 12h, topic: at-from}
      - {after: 24h, topic: at-to}
      - {after: 1439m, topic: just-before-to}
)";
  Harness h(kConfig, At("2026-05-01T21:00:00+02:00"));
  h.Buy("o", "b", "p", 1, 1, "2026-05-01T21:00:00+02:00");
  h.RunAll();
  EXPECT_EQ(h.Find("o", "at-from")->fire_at, "2026-05-02T09:00:00+02:00");
  EXPECT_EQ(h.Find("o", "just-before-to")->fire_at, "2026-05-02T20:59:00+02:00");
  EXPECT_EQ(h.Find("o", "at-to")->due_at, "2026-05-02T21:00:00+02:00");
  EXPECT_EQ(h.Find("o", "at-to")->fire_at, "2026-05-03T09:00:00+02:00");
}

constexpr std::string_view kCapConfig = R"(version: 1
timezone: Asia/Shanghai
send_window: {from: "09:00", to: "21:00"}
frequency_cap: {max: 1, per: day}
products: {p: {supply_days: 30}}
sinks: [{name: q, type: queue}]
cadences:
  - name: first
    steps:
      - {after: 1d, topic: a}
      - {after: 1d, topic: b}
  - name: second
    steps:
      - {after: 1d, topic: c}
      - {after: 49h, topic: d}
)";

TEST(SchedulerTest, CapCascadesOverSeveralDaysInDueThenCadenceThenStepOrder) {
  Harness h(kCapConfig, At("2026-06-01T10:00:00+08:00"));
  h.Buy("o", "b", "p", 1, 1, "2026-06-01T10:00:00+08:00");
  h.RunAll();
  // a, b, c all due 06-02 10:00; d due 06-03 11:00. One a day.
  EXPECT_EQ(h.Find("o", "a")->fire_at, "2026-06-02T10:00:00+08:00");
  EXPECT_EQ(h.Find("o", "b")->fire_at, "2026-06-03T09:00:00+08:00");  // deferred, earliest due
  EXPECT_EQ(h.Find("o", "c")->fire_at, "2026-06-04T09:00:00+08:00");  // deferred twice
  EXPECT_EQ(h.Find("o", "d")->due_at, "2026-06-03T11:00:00+08:00");
  EXPECT_EQ(h.Find("o", "d")->fire_at, "2026-06-05T09:00:00+08:00");  // later due_at loses each day
  EXPECT_THAT(h.FiredTopics("b"), ElementsAre("a", "b", "c", "d"));
}

TEST(SchedulerTest, CapIsPerBuyer) {
  Harness h(kCapConfig, At("2026-06-01T10:00:00+08:00"));
  h.Buy("o1", "x", "p", 1, 1, "2026-06-01T10:00:00+08:00");
  h.Buy("o2", "y", "p", 1, 1, "2026-06-01T10:00:00+08:00");
  h.RunUntil("2026-06-02T20:00:00+08:00");
  EXPECT_THAT(h.FiredTopics("x"), ElementsAre("a"));
  EXPECT_THAT(h.FiredTopics("y"), ElementsAre("a"));
}

TEST(SchedulerTest, CapCountsTheBuyersLocalCalendarDay) {
  // Buyer in New York, cap 1: a fires 23:00 local, b due one hour later is
  // the next local day and may fire; no window.
  constexpr std::string_view kConfig = R"(version: 1
frequency_cap: {max: 1}
products: {p: {supply_days: 30}}
sinks: [{name: q, type: queue}]
cadences:
  - name: c
    steps:
      - {after: 13h, topic: a}
      - {after: 14h, topic: b}
      - {after: 15h, topic: c}
)";
  Harness h(kConfig, At("2026-06-01T10:00:00-04:00"));
  h.Buy("o", "b", "p", 1, 1, "2026-06-01T10:00:00-04:00", "America/New_York");
  h.RunAll();
  EXPECT_EQ(h.Find("o", "a")->fire_at, "2026-06-01T23:00:00-04:00");
  EXPECT_EQ(h.Find("o", "b")->fire_at, "2026-06-02T00:00:00-04:00");
  // No window: the next day's opening is local midnight.
  EXPECT_EQ(h.Find("o", "c")->fire_at, "2026-06-03T00:00:00-04:00");
}

TEST(SchedulerTest, DuplicateOrderPlansNothingAndConflictIsReported) {
  Harness h(kBriefConfig, At("2026-11-01T10:00:00+08:00"));
  EXPECT_EQ(h.Buy("o1", "lin", "daily", 2, 240, "2026-11-01T10:00:00+08:00").kind,
            IngestOutcome::Kind::kPlanned);
  const auto pending = h.Pending().size();
  EXPECT_EQ(h.Ingest("o1", "lin", "daily", 2, 240, "2026-11-01T10:00:00+08:00").kind,
            IngestOutcome::Kind::kDuplicate);
  EXPECT_EQ(h.Pending().size(), pending);
  EXPECT_EQ(h.Ingest("o1", "lin", "daily", 3, 240, "2026-11-01T10:00:00+08:00").kind,
            IngestOutcome::Kind::kConflict);
  EXPECT_EQ(h.Ingest("o1", "lin", "daily", 2, 240, "2026-11-01T10:00:00+08:00", "Asia/Tokyo").kind,
            IngestOutcome::Kind::kConflict);
  EXPECT_EQ(h.Pending().size(), pending);
  EXPECT_THAT(h.finals(), IsEmpty());
}

TEST(SchedulerTest, LateOrderDoesNotCancelANewerPurchasesTouchpoints) {
  Harness h(kBriefConfig, At("2026-11-10T10:00:00+08:00"));
  h.Buy("new", "mei", "daily", 2, 100, "2026-11-10T10:00:00+08:00");
  // An order made on 11-05 arrives on 11-10, after the newer one.
  const IngestOutcome late = h.Ingest("old", "mei", "daily", 1, 100, "2026-11-05T10:00:00+08:00");
  EXPECT_EQ(late.kind, IngestOutcome::Kind::kPlanned);
  EXPECT_EQ(h.Find("new", "how-to-wear")->state, TouchpointState::kPending);
  EXPECT_EQ(h.Find("new", "repurchase-reminder")->state, TouchpointState::kPending);
  // The newer purchase would have cancelled the late one's later steps.
  EXPECT_EQ(h.Find("old", "trust-checkpoint")->state, TouchpointState::kCancelled);
  EXPECT_EQ(h.Find("old", "style-ideas")->state, TouchpointState::kCancelled);
  // The newer purchase's tier counts only itself (it was planned first);
  // the late one sees nothing before it.
  EXPECT_EQ(h.Find("new", "colour-match"), std::nullopt);
  EXPECT_EQ(h.Find("new", "how-to-wear")->tier, "novice");
  EXPECT_EQ(h.Find("old", "how-to-wear")->tier, "novice");
}

TEST(SchedulerTest, RepurchaseCancelsOnlyNotYetFiredAndKeepsNonCancellingCadences) {
  Harness h(kBriefConfig, At("2026-11-01T10:00:00+08:00"));
  h.Buy("d", "mei", "daily", 1, 100, "2026-11-01T10:00:00+08:00");
  h.Buy("y", "mei", "yearly", 1, 900, "2026-11-03T10:00:00+08:00");  // switch
  h.Buy("y2", "mei", "yearly", 1, 900, "2026-11-20T10:00:00+08:00");
  h.RunAll();
  EXPECT_EQ(h.Find("d", "how-to-wear")->state, TouchpointState::kFired);
  // comfort-check was due 11-04 10:00, after the 11-03 repurchase.
  EXPECT_EQ(h.Find("d", "comfort-check")->state, TouchpointState::kCancelled);
  // yearly-switch has cancel_on_repurchase: false, so y2 (11-20) does not
  // stop it; y's trust steps after 11-20 are cancelled.
  EXPECT_EQ(h.Find("y", "yearly-care")->state, TouchpointState::kFired);
  EXPECT_EQ(h.Find("y", "trust-review")->state, TouchpointState::kFired);
  EXPECT_EQ(h.Find("y", "style-ideas")->state, TouchpointState::kCancelled);
  EXPECT_EQ(h.Find("y2", "yearly-care"), std::nullopt);  // yearly -> yearly is no switch
}

TEST(SchedulerTest, OptOutSuppressesAndPlansNoneOptInPlansOnlyFuture) {
  Harness h(kBriefConfig, At("2026-11-01T10:00:00+08:00"));
  h.Buy("o1", "ann", "daily", 1, 100, "2026-11-01T10:00:00+08:00");
  h.RunUntil("2026-11-03T00:00:00+08:00");
  ASSERT_TRUE(h.scheduler().OptOut("ann").ok());
  EXPECT_EQ(h.Find("o1", "comfort-check")->state, TouchpointState::kSuppressed);
  EXPECT_EQ(h.Find("o1", "comfort-check")->reason, "opted out");
  EXPECT_THAT(h.Pending(), IsEmpty());
  EXPECT_EQ(h.Buy("o2", "ann", "daily", 1, 100, "2026-11-04T10:00:00+08:00").planned, 0);
  EXPECT_THAT(h.Pending(), IsEmpty());
  ASSERT_TRUE(h.scheduler().OptIn("ann").ok());
  EXPECT_THAT(h.Pending(), IsEmpty());  // nothing resurrected
  // The tier still counts every purchase: third purchase -> newbie.
  EXPECT_GT(h.Buy("o3", "ann", "daily", 1, 100, "2026-11-06T10:00:00+08:00").planned, 0);
  EXPECT_EQ(h.Find("o3", "colour-match")->tier, "newbie");
  h.RunAll();
  EXPECT_THAT(h.FiredTopics("ann"),
              ElementsAre("how-to-wear", "colour-match", "comfort-check", "care-tips",
                          "trust-checkpoint", "repurchase-reminder", "style-ideas"));
}

TEST(SchedulerTest, MisfireWithinGraceFiresLateBeyondIsSkipped) {
  Harness h(kBriefConfig, At("2026-11-01T10:00:00+08:00"));
  h.Buy("o", "lin", "daily", 2, 100, "2026-11-01T10:00:00+08:00");
  // The daemon was down from before 11-02 10:00 until 11-04 12:00:
  // how-to-wear (11-02 10:00) is 50h late, comfort-check (11-04 10:00) 2h.
  h.clock().Set(At("2026-11-04T12:00:00+08:00"));
  auto stats = h.scheduler().RunDue();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->skipped, 1u);
  EXPECT_EQ(stats->fired, 1u);
  EXPECT_EQ(h.Find("o", "how-to-wear")->state, TouchpointState::kSkipped);
  EXPECT_EQ(h.Find("o", "how-to-wear")->reason, "missed by 2d2h, more than misfire_grace 24h");
  EXPECT_EQ(h.Find("o", "comfort-check")->fire_at, "2026-11-04T12:00:00+08:00");
}

TEST(SchedulerTest, LateTouchpointOutsideTheWindowWaitsForTheNextOpening) {
  Harness h(kBriefConfig, At("2026-11-01T20:00:00+08:00"));
  h.Buy("o", "lin", "daily", 2, 100, "2026-11-01T20:00:00+08:00");
  // Due 11-02 20:00; the daemon comes back at 22:00, inside the grace.
  h.clock().Set(At("2026-11-02T22:00:00+08:00"));
  ASSERT_TRUE(h.scheduler().RunDue().ok());
  EXPECT_EQ(h.Find("o", "how-to-wear")->state, TouchpointState::kPending);
  h.RunUntil("2026-11-03T12:00:00+08:00");
  EXPECT_EQ(h.Find("o", "how-to-wear")->fire_at, "2026-11-03T09:00:00+08:00");
}

TEST(SchedulerTest, RejectsPurchasesTheRulesCannotPlan) {
  Harness h(kBriefConfig, At("2026-11-01T10:00:00+08:00"));
  Purchase p{"o", "b", "weekly", 1, 1, At("2026-11-01T10:00:00+08:00"), ""};
  auto r = h.scheduler().Ingest(p);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "unknown product 'weekly' (the rules have daily, yearly)");
  p.product = "daily";
  p.timezone = "Nowhere/Land";
  EXPECT_THAT(h.scheduler().Ingest(p).status().message(),
              HasSubstr("unknown time zone 'Nowhere/Land'"));
  p.timezone = "";
  p.quantity = 0;
  EXPECT_FALSE(h.scheduler().Ingest(p).ok());
  // Whatever a caller lets through, the planner's arithmetic never sees.
  p.quantity = 5000;  // boxes of 15 days: 205 years
  EXPECT_THAT(h.scheduler().Ingest(p).status().message(), HasSubstr("more than the 36500"));
  p.quantity = 1;
  p.purchased_at = At("9999-05-15T10:00:00+08:00");
  EXPECT_THAT(h.scheduler().Ingest(p).status().message(), HasSubstr("purchased_at must be"));
  EXPECT_THAT(h.Pending(), IsEmpty());
}

TEST(SchedulerTest, NinetyDayJourneyOnTheVirtualClock) {
  Harness h(kBriefConfig, At("2026-11-12T11:00:00+08:00"));
  h.Buy("d", "mei", "daily", 1, 120, "2026-11-12T11:00:00+08:00");
  h.Buy("y", "mei", "yearly", 1, 900, "2026-11-20T10:00:00+08:00");
  h.RunUntil("2027-03-01T00:00:00+08:00");
  EXPECT_EQ(h.Find("y", "trust-review")->fire_at, "2027-02-18T10:00:00+08:00");
  EXPECT_THAT(h.Pending(), IsEmpty());
}

}  // namespace
}  // namespace tp
