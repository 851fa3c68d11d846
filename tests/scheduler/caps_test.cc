// Frequency caps (scheduler/frequency_caps.h) on a fake clock: day, ISO
// week and calendar month periods in the buyer's zone, several caps at
// once, caps scoped to sinks, and steps whose sinks differ from their
// cadence's. A touchpoint a full cap holds back moves to the next local
// day's window opening, again and again, until every cap allows it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "harness.h"
#include "scoped_caps_config.h"

namespace tp {
namespace {

using testing::At;
using ::testing::ElementsAre;
using testing::Harness;

std::string CapsConfig(
    std::string_view caps, std::string_view zone = "Asia/Shanghai",
    std::string_view window = "send_window: {from: \"09:00\", to: \"21:00\"}\n") {
  return "version: 1\ntimezone: " + std::string(zone) + "\n" + std::string(window) +
         "frequency_cap: " + std::string(caps) + R"(
products: {p: {supply_days: 365}}
sinks: [{name: q, type: queue}]
cadences:
  - name: c
    steps:
      - {after: 1d, topic: a}
      - {after: 2d, topic: b}
      - {after: 3d, topic: c}
      - {after: 4d, topic: d}
      - {after: 5d, topic: e}
)";
}

TEST(CapsTest, AWeekCapCountsTheIsoWeekAcrossAMonthBoundary) {
  // Sunday 06-28; the ISO week of Monday 06-29 runs into July.
  Harness h(CapsConfig("{max: 2, per: week}"), At("2026-06-28T10:00:00+08:00"));
  h.Buy("o", "b", "p", 1, 1, "2026-06-28T10:00:00+08:00");
  h.RunAll();
  EXPECT_EQ(h.Find("o", "a")->fire_at, "2026-06-29T10:00:00+08:00");
  EXPECT_EQ(h.Find("o", "b")->fire_at, "2026-06-30T10:00:00+08:00");
  // 07-01 is a new month, not a new week: c and d wait for Monday 07-06.
  EXPECT_EQ(h.Find("o", "c")->fire_at, "2026-07-06T09:00:00+08:00");
  EXPECT_EQ(h.Find("o", "d")->fire_at, "2026-07-06T09:00:00+08:00");
  EXPECT_EQ(h.Find("o", "e")->fire_at, "2026-07-13T09:00:00+08:00");
}

TEST(CapsTest, AMonthCapCountsTheLocalMonthNotTheUtcOne) {
  // Berlin, no window. March's fires are counted across the change to
  // summer time (03-29); April begins at 03-31T22:00Z, which a UTC month
  // would still count as March.
  Harness h(CapsConfig("{max: 1, per: month}", "Europe/Berlin", ""),
            At("2026-03-01T10:00:00+01:00"));
  h.Buy("o", "b", "p", 1, 1, "2026-03-01T10:00:00+01:00");
  h.RunUntil("2026-03-31T23:59:00+02:00");
  EXPECT_EQ(h.Find("o", "a")->fire_at, "2026-03-02T10:00:00+01:00");
  // b, c, d, e: due in March, held back a day at a time.
  EXPECT_EQ(h.Find("o", "b")->state, TouchpointState::kPending);
  h.RunAll();
  EXPECT_EQ(h.Find("o", "b")->fire_at, "2026-04-01T00:00:00+02:00");
  EXPECT_EQ(h.Find("o", "c")->fire_at, "2026-05-01T00:00:00+02:00");
  EXPECT_EQ(h.Find("o", "d")->fire_at, "2026-06-01T00:00:00+02:00");
}

TEST(CapsTest, EveryCapMustAllowAFire) {
  // One a day and three a week, bought Monday 06-29: a, b, c fill the
  // week; d waits for Monday 07-06, and e, the day cap being full then,
  // for Tuesday.
  Harness h(CapsConfig("[{max: 1, per: day}, {max: 3, per: week}]"),
            At("2026-06-29T10:00:00+08:00"));
  h.Buy("o", "b", "p", 1, 1, "2026-06-29T10:00:00+08:00");
  h.RunAll();
  EXPECT_EQ(h.Find("o", "c")->fire_at, "2026-07-02T10:00:00+08:00");
  EXPECT_EQ(h.Find("o", "d")->due_at, "2026-07-03T10:00:00+08:00");
  EXPECT_EQ(h.Find("o", "d")->fire_at, "2026-07-06T09:00:00+08:00");
  EXPECT_EQ(h.Find("o", "e")->fire_at, "2026-07-07T09:00:00+08:00");
}

TEST(CapsTest, ACapIsPerBuyer) {
  Harness h(CapsConfig("{max: 1, per: month}"), At("2026-06-01T10:00:00+08:00"));
  h.Buy("o1", "x", "p", 1, 1, "2026-06-01T10:00:00+08:00");
  h.Buy("o2", "y", "p", 1, 1, "2026-06-01T10:00:00+08:00");
  h.RunUntil("2026-06-30T20:00:00+08:00");
  EXPECT_THAT(h.FiredTopics("x"), ElementsAre("a"));
  EXPECT_THAT(h.FiredTopics("y"), ElementsAre("a"));
}

// Two touchpoints of one buyer due in one batch, planned in zones whose
// days begin at different instants: the second needs the buyer's fires
// from earlier than the first read, and is read again with the first's
// fire (in this batch, not yet stored) still counted.
TEST(CapsTest, ABuyersFiresAreReadAgainForAnotherZoneAndTheBatchsFireStillCounts) {
  constexpr std::string_view kConfig = R"(version: 1
timezone: Asia/Shanghai
frequency_cap: {max: 1, per: day}
products: {p: {supply_days: 365}}
sinks: [{name: q, type: queue}]
cadences:
  - name: c
    steps: [{after: 24h, topic: a}]
)";
  Harness h(kConfig, At("2026-06-01T02:00:00Z"));
  // Shanghai's day of 06-02T02:00Z began at 06-01T16:00Z; New York's at
  // 06-01T04:00Z, earlier.
  h.Ingest("east", "b", "p", 1, 1, "2026-06-01T10:00:00+08:00");
  h.Ingest("west", "b", "p", 1, 1, "2026-05-31T22:00:00-04:00", "America/New_York");
  h.RunAll();
  EXPECT_EQ(h.Find("east", "a")->fire_at, "2026-06-02T10:00:00+08:00");
  EXPECT_EQ(h.Find("west", "a")->due_at, "2026-06-01T22:00:00-04:00");
  EXPECT_EQ(h.Find("west", "a")->fire_at, "2026-06-02T00:00:00-04:00");
}

TEST(CapsTest, ACapScopedToASinkLeavesOtherSinksAlone) {
  Harness h(testing::kScopedCapsConfig, At("2026-06-01T10:00:00+08:00"));
  h.Buy("o", "b", "p", 1, 1, "2026-06-01T10:00:00+08:00");
  h.RunUntil("2026-06-02T20:00:00+08:00");
  // Day one: a (wecom) fires, b (wecom) waits; x and z (email) fire.
  EXPECT_THAT(h.FiredTopics("b"), ElementsAre("a", "x", "z"));
  EXPECT_EQ(h.Find("o", "x")->fire_at, "2026-06-02T10:00:00+08:00");
  EXPECT_EQ(h.Find("o", "z")->fire_at, "2026-06-02T10:00:00+08:00");
}

TEST(CapsTest, AStepWithItsOwnSinksCountsByThem) {
  Harness h(testing::kScopedCapsConfig, At("2026-06-01T10:00:00+08:00"));
  h.Buy("o", "b", "p", 1, 1, "2026-06-01T10:00:00+08:00");
  h.RunAll();
  // y is in the email cadence but goes to wecom: it waits its turn there,
  // behind b (due at the same time, earlier cadence).
  EXPECT_EQ(h.Find("o", "b")->fire_at, "2026-06-03T09:00:00+08:00");
  EXPECT_EQ(h.Find("o", "y")->fire_at, "2026-06-04T09:00:00+08:00");
}

}  // namespace
}  // namespace tp
