#include "core/time.h"

#include <gtest/gtest.h>

#include "config/rules.h"
#include "harness.h"
#include "planner/window.h"

namespace tp {
namespace {

using testing::At;
using testing::Fmt;

const Zone* Berlin() { return FindZone("Europe/Berlin"); }
const Zone* NewYork() { return FindZone("America/New_York"); }

TEST(DurationTest, ParsesEveryUnitAndSign) {
  EXPECT_EQ(ParseDuration("90s"), (Duration{90, Duration::Unit::kSeconds}));
  EXPECT_EQ(ParseDuration("15m"), (Duration{15, Duration::Unit::kMinutes}));
  EXPECT_EQ(ParseDuration("24h"), (Duration{24, Duration::Unit::kHours}));
  EXPECT_EQ(ParseDuration("21d"), (Duration{21, Duration::Unit::kDays}));
  EXPECT_EQ(ParseDuration("-3d"), (Duration{-3, Duration::Unit::kDays}));
  EXPECT_EQ(ParseDuration("0d"), (Duration{0, Duration::Unit::kDays}));
}

TEST(DurationTest, RejectsAnythingElse) {
  for (const char* bad :
       {"", "1", "d", "1w", "1.5d", "+1d", "--1d", "1 d", "1dd", "-d", "1D", "9999999999d"}) {
    EXPECT_FALSE(ParseDuration(bad).has_value()) << bad;
  }
}

TEST(DurationTest, ExactCountsDaysAs24Hours) {
  EXPECT_EQ(ParseDuration("2d")->Exact(), std::chrono::hours(48));
  EXPECT_EQ(ParseDuration("24h")->ToString(), "24h");
}

TEST(TimeOfDayTest, ParsesHoursAndMinutes) {
  EXPECT_EQ(ParseTimeOfDay("09:00")->minutes, 9 * 60);
  EXPECT_EQ(ParseTimeOfDay("24:00")->minutes, 24 * 60);
  for (const char* bad : {"9:00", "24:01", "12:60", "25:00", "12-00", "", "12:00:00"}) {
    EXPECT_FALSE(ParseTimeOfDay(bad).has_value()) << bad;
  }
}

TEST(Rfc3339Test, ParsesOffsetsAndFractions) {
  EXPECT_EQ(At("2026-11-01T15:30:00+08:00"), At("2026-11-01T07:30:00Z"));
  EXPECT_EQ(At("2026-11-01T02:30:00-05:00"), At("2026-11-01T07:30:00z"));
  EXPECT_EQ(Fmt(At("2026-11-01T07:30:00.25Z"), "Etc/UTC"), "2026-11-01T07:30:00.250Z");
}

TEST(Rfc3339Test, RejectsInvalidInstants) {
  for (const char* bad :
       {"2026-11-01T15:30:00", "2026-11-01 15:30:00+08:00", "2026-13-01T00:00:00Z",
        "2026-02-29T00:00:00Z", "2026-11-01T24:00:00Z", "2026-11-01T15:30:00+8:00",
        "2026-11-01T15:30:00.Z", "2026-11-01T15:30:00+08:00x", "yesterday"}) {
    EXPECT_FALSE(ParseRfc3339(bad).has_value()) << bad;
  }
  EXPECT_TRUE(ParseRfc3339("2028-02-29T00:00:00Z").has_value());
}

TEST(Rfc3339Test, FormatsWithTheZonesOffsetAtThatInstant) {
  EXPECT_EQ(Fmt(At("2026-03-28T07:00:00Z"), "Europe/Berlin"), "2026-03-28T08:00:00+01:00");
  EXPECT_EQ(Fmt(At("2026-03-30T06:00:00Z"), "Europe/Berlin"), "2026-03-30T08:00:00+02:00");
  EXPECT_EQ(Fmt(At("2026-07-01T12:00:00Z"), "America/New_York"), "2026-07-01T08:00:00-04:00");
  EXPECT_EQ(Fmt(At("2026-07-01T12:00:00Z"), "Asia/Kolkata"), "2026-07-01T17:30:00+05:30");
}

TEST(CalendarDaysTest, KeepWallClockAcrossBerlinSpringForward) {
  // 2026-03-29 02:00 -> 03:00 in Berlin: that day has 23 hours.
  const Instant start = At("2026-03-28T10:00:00+01:00");
  const Instant next = AddCalendarDays(start, 1, Berlin());
  EXPECT_EQ(Fmt(next, "Europe/Berlin"), "2026-03-29T10:00:00+02:00");
  EXPECT_EQ(next - start, std::chrono::hours(23));
  // Exact hours do not follow the wall clock.
  EXPECT_EQ(Fmt(AddDuration(start, *ParseDuration("24h"), Berlin()), "Europe/Berlin"),
            "2026-03-29T11:00:00+02:00");
}

TEST(CalendarDaysTest, KeepWallClockAcrossBerlinFallBack) {
  // 2026-10-25 03:00 -> 02:00 in Berlin: that day has 25 hours.
  const Instant start = At("2026-10-24T10:00:00+02:00");
  const Instant next = AddCalendarDays(start, 1, Berlin());
  EXPECT_EQ(Fmt(next, "Europe/Berlin"), "2026-10-25T10:00:00+01:00");
  EXPECT_EQ(next - start, std::chrono::hours(25));
}

TEST(CalendarDaysTest, NonexistentLocalTimeShiftsForwardByTheGap) {
  EXPECT_EQ(Fmt(AddCalendarDays(At("2026-03-28T02:30:00+01:00"), 1, Berlin()), "Europe/Berlin"),
            "2026-03-29T03:30:00+02:00");
  // New York springs forward 2026-03-08 02:00 -> 03:00.
  EXPECT_EQ(Fmt(AddCalendarDays(At("2026-03-07T02:15:00-05:00"), 1, NewYork()), "America/New_York"),
            "2026-03-08T03:15:00-04:00");
}

TEST(CalendarDaysTest, AmbiguousLocalTimeTakesTheFirstOccurrence) {
  EXPECT_EQ(Fmt(AddCalendarDays(At("2026-10-24T02:30:00+02:00"), 1, Berlin()), "Europe/Berlin"),
            "2026-10-25T02:30:00+02:00");
  // New York falls back 2026-11-01 02:00 -> 01:00.
  EXPECT_EQ(Fmt(AddCalendarDays(At("2026-10-31T01:30:00-04:00"), 1, NewYork()), "America/New_York"),
            "2026-11-01T01:30:00-04:00");
}

TEST(CalendarDaysTest, CrossesTheYearBoundary) {
  const Zone* shanghai = FindZone("Asia/Shanghai");
  EXPECT_EQ(Fmt(AddCalendarDays(At("2026-12-31T22:00:00+08:00"), 1, shanghai), "Asia/Shanghai"),
            "2027-01-01T22:00:00+08:00");
  EXPECT_EQ(Fmt(AddCalendarDays(At("2026-12-10T10:00:00+08:00"), 90, shanghai), "Asia/Shanghai"),
            "2027-03-10T10:00:00+08:00");
  EXPECT_EQ(Fmt(AddCalendarDays(At("2027-01-05T10:00:00+08:00"), -10, shanghai), "Asia/Shanghai"),
            "2026-12-26T10:00:00+08:00");
}

TEST(LocalDayTest, DaysAreBuyerLocal) {
  // 23:30 UTC is already the next day in Shanghai.
  const Zone* shanghai = FindZone("Asia/Shanghai");
  const Instant t = At("2026-12-31T23:30:00Z");
  EXPECT_EQ(Fmt(StartOfLocalDay(t, shanghai), "Asia/Shanghai"), "2027-01-01T00:00:00+08:00");
  EXPECT_EQ(Fmt(StartOfNextLocalDay(t, shanghai), "Asia/Shanghai"), "2027-01-02T00:00:00+08:00");
  // The fall-back day in Berlin is 25 hours long.
  const Instant fb = At("2026-10-25T12:00:00+01:00");
  EXPECT_EQ(StartOfNextLocalDay(fb, Berlin()) - StartOfLocalDay(fb, Berlin()),
            std::chrono::hours(25));
}

TEST(SendWindowTest, FromIsInsideToIsOutside) {
  const SendWindow w{*ParseTimeOfDay("09:00"), *ParseTimeOfDay("21:00")};
  EXPECT_EQ(Fmt(NextOpening(At("2026-03-10T09:00:00+01:00"), w, Berlin()), "Europe/Berlin"),
            "2026-03-10T09:00:00+01:00");
  EXPECT_EQ(Fmt(NextOpening(At("2026-03-10T20:59:59+01:00"), w, Berlin()), "Europe/Berlin"),
            "2026-03-10T20:59:59+01:00");
  EXPECT_EQ(Fmt(NextOpening(At("2026-03-10T21:00:00+01:00"), w, Berlin()), "Europe/Berlin"),
            "2026-03-11T09:00:00+01:00");
  EXPECT_EQ(Fmt(NextOpening(At("2026-03-10T08:59:59+01:00"), w, Berlin()), "Europe/Berlin"),
            "2026-03-10T09:00:00+01:00");
  EXPECT_EQ(Fmt(NextOpening(At("2026-03-10T00:00:00+01:00"), w, Berlin()), "Europe/Berlin"),
            "2026-03-10T09:00:00+01:00");
}

TEST(SendWindowTest, OpeningInsideADstGapShiftsForward) {
  const SendWindow w{*ParseTimeOfDay("02:30"), *ParseTimeOfDay("22:00")};
  // 2026-03-29 has no 02:30 in Berlin: the window opens at 03:30 CEST.
  EXPECT_EQ(Fmt(NextOpening(At("2026-03-28T23:00:00+01:00"), w, Berlin()), "Europe/Berlin"),
            "2026-03-29T03:30:00+02:00");
  EXPECT_EQ(Fmt(NextDayOpening(At("2026-03-28T12:00:00+01:00"), w, Berlin()), "Europe/Berlin"),
            "2026-03-29T03:30:00+02:00");
}

}  // namespace
}  // namespace tp
