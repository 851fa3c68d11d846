// The scheduler hearing the buyer (scheduler/scheduler.h RecordEvent and a
// step's `when`), over the in-memory store simulate uses; the SQLite store
// is held to the same in tests/store/engagement_tables_test.cc.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "harness.h"

namespace tp {
namespace {

using ::testing::ElementsAre;
using testing::Harness;

// Times are Shanghai's; the window is open all day so only `when` and
// stop_on decide.
constexpr std::string_view kRules = R"(version: 1
timezone: Asia/Shanghai
misfire_grace: 24h
products:
  daily: {supply_days: 15}
sinks:
  - {name: outbox, type: queue}
  - {name: advisor, type: queue}
cadences:
  - name: trust
    stop_on: [replied]
    steps:
      - {after: 1d, topic: how-to-wear}
      - {after: 3d, topic: comfort-check}
      - {after: 7d, topic: care-tips}
  - name: engaged
    sinks: [outbox]
    steps:
      - {after: 5d, topic: style-ideas, when: engaged}
  - name: checkpoint
    sinks: [advisor]
    steps:
      - {after: 10d, topic: trust-checkpoint, when: not_engaged}
  - name: repurchase
    steps:
      - {anchor: runout, after: -2d, topic: repurchase-reminder}
)";

TEST(EngagementTest, AStopOnTypeCancelsTheCadenceForPurchasesUpToTheEvent) {
  Harness h(kRules, testing::At("2026-11-01T08:00:00+08:00"));
  h.Buy("o1", "lin", "daily", 1, 120, "2026-11-01T10:00:00+08:00");
  h.RunUntil("2026-11-02T12:00:00+08:00");
  EXPECT_THAT(h.FiredTopics("lin"), ElementsAre("how-to-wear"));

  // A click is no stop_on type; a reply is.
  EXPECT_EQ(h.Event("e1", "lin", "clicked", "2026-11-02T13:00:00+08:00").cancelled, 0);
  const EventOutcome replied = h.Event("e2", "lin", "replied", "2026-11-03T09:30:00+08:00");
  EXPECT_EQ(replied.kind, EventOutcome::Kind::kRecorded);
  EXPECT_EQ(replied.cancelled, 2);  // comfort-check and care-tips
  auto comfort = h.Find("o1", "comfort-check");
  ASSERT_TRUE(comfort.has_value());
  EXPECT_EQ(comfort->state, TouchpointState::kCancelled);
  EXPECT_EQ(comfort->reason, "buyer replied at 2026-11-03T01:30:00Z");
  // Other cadences go on.
  EXPECT_EQ(h.Find("o1", "repurchase-reminder")->state, TouchpointState::kPending);

  // A purchase after the reply is not stopped by it, even when the reply
  // is reported late, after the purchase arrived.
  h.Buy("o2", "lin", "daily", 1, 120, "2026-11-04T10:00:00+08:00");
  EXPECT_EQ(h.Event("e3", "lin", "replied", "2026-11-03T20:00:00+08:00").cancelled, 0);
  EXPECT_EQ(h.Find("o2", "comfort-check")->state, TouchpointState::kPending);
}

TEST(EngagementTest, WhenIsDecidedAsTheStepComesDue) {
  Harness h(kRules, testing::At("2026-11-01T08:00:00+08:00"));
  h.Buy("o1", "lin", "daily", 1, 120, "2026-11-01T10:00:00+08:00");
  h.Buy("o2", "wu", "daily", 1, 120, "2026-11-01T10:00:00+08:00");
  // Lin clicks; Wu's only signal came before the purchase, and a read is no
  // trust signal.
  h.Event("e0", "wu", "clicked", "2026-10-30T10:00:00+08:00");
  h.Event("e1", "lin", "clicked", "2026-11-02T10:00:00+08:00");
  h.Event("e2", "wu", "read", "2026-11-02T10:00:00+08:00");
  h.RunUntil("2026-11-12T00:00:00+08:00");

  EXPECT_EQ(h.Find("o1", "style-ideas")->state, TouchpointState::kFired);
  const auto lin_checkpoint = h.Find("o1", "trust-checkpoint");
  EXPECT_EQ(lin_checkpoint->state, TouchpointState::kSkipped);
  EXPECT_EQ(lin_checkpoint->reason,
            "when: not_engaged, and the buyer clicked at 2026-11-02T10:00:00+08:00");

  const auto wu_style = h.Find("o2", "style-ideas");
  EXPECT_EQ(wu_style->state, TouchpointState::kSkipped);
  EXPECT_EQ(wu_style->reason,
            "when: engaged, and the buyer has not replied or clicked since the purchase");
  EXPECT_EQ(h.Find("o2", "trust-checkpoint")->state, TouchpointState::kFired);
}

TEST(EngagementTest, AnEventIdIsRecordedOnce) {
  Harness h(kRules, testing::At("2026-11-01T08:00:00+08:00"));
  EXPECT_EQ(h.Event("e1", "lin", "read", "2026-11-01T09:00:00+08:00").kind,
            EventOutcome::Kind::kRecorded);
  EXPECT_EQ(h.Event("e1", "lin", "read", "2026-11-01T09:00:00+08:00").kind,
            EventOutcome::Kind::kDuplicate);
  EXPECT_EQ(h.Event("e1", "lin", "clicked", "2026-11-01T09:00:00+08:00").kind,
            EventOutcome::Kind::kConflict);
  // A type the rules do not have is an error, not an event.
  EngagementEvent bad{"e2", "lin", "opened", testing::At("2026-11-01T09:00:00+08:00")};
  EXPECT_FALSE(h.scheduler().RecordEvent(bad).ok());
}

TEST(EngagementTest, ATouchpointIdMustBeTheBuyers) {
  Harness h(kRules, testing::At("2026-11-01T08:00:00+08:00"));
  h.store().TrackTouchpoints();
  h.Buy("o1", "lin", "daily", 1, 120, "2026-11-01T10:00:00+08:00");
  h.Buy("o2", "wu", "daily", 1, 120, "2026-11-01T10:00:00+08:00");
  h.RunUntil("2026-11-02T12:00:00+08:00");
  const std::string lins = h.Find("o1", "how-to-wear")->id;
  EXPECT_EQ(h.Event("e1", "lin", "clicked", "2026-11-02T12:00:00+08:00", lins).kind,
            EventOutcome::Kind::kRecorded);
  EXPECT_EQ(h.Event("e2", "wu", "clicked", "2026-11-02T12:00:00+08:00", lins).kind,
            EventOutcome::Kind::kUnknownTouchpoint);
  EXPECT_EQ(h.Event("e3", "lin", "clicked", "2026-11-02T12:00:00+08:00",
                    "tp_00000000000000000000000000000000")
                .kind,
            EventOutcome::Kind::kUnknownTouchpoint);
}

TEST(EngagementTest, OfTwoFiredAtOneInstantTheOneRecordedLastIsCredited) {
  Harness h(kRules, testing::At("2026-11-01T08:00:00+08:00"));
  h.store().TrackTouchpoints();
  h.Buy("o1", "lin", "daily", 1, 120, "2026-11-01T10:00:00+08:00");
  h.Buy("o2", "lin", "daily", 1, 120, "2026-11-01T20:00:00+08:00");
  // Both how-to-wear are due by then, and fire in one pass, at one instant.
  h.clock().Set(testing::At("2026-11-02T20:00:00+08:00"));
  ASSERT_EQ(h.scheduler().RunDue()->fired, 2u);
  const auto first = h.Find("o1", "how-to-wear");
  const auto second = h.Find("o2", "how-to-wear");
  ASSERT_EQ(first->state, TouchpointState::kFired);
  ASSERT_EQ(second->state, TouchpointState::kFired);
  const EventOutcome read = h.Event("e1", "lin", "read", "2026-11-02T21:00:00+08:00");
  auto named = h.store().FindTouchpoint("lin", second->id);
  ASSERT_TRUE(named.ok() && named->touchpoint.has_value());
  EXPECT_EQ(read.credited, named->touchpoint->handle);
}

}  // namespace
}  // namespace tp
