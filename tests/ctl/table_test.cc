#include "ctl/table.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sstream>

namespace tp {
namespace {

TEST(TableTest, ColumnsAreAsWideAsTheirWidestCell) {
  Table t({"DUE", "ORDER", "WHY"});
  t.Add({"2026-11-02 15:30:00 +08:00", "A-1001", "waiting"});
  t.Add({"2026-11-03 15:30:00 +08:00", "an-order-id-of-thirty-characters", "x"});
  std::ostringstream out;
  t.Print(out, "  ");
  EXPECT_EQ(out.str(),
            "  DUE                         ORDER                             WHY\n"
            "  2026-11-02 15:30:00 +08:00  A-1001                            waiting\n"
            "  2026-11-03 15:30:00 +08:00  an-order-id-of-thirty-characters  x\n");
}

TEST(TableTest, WideCharactersTakeTwoColumns) {
  EXPECT_EQ(DisplayWidth("lin"), 3u);
  EXPECT_EQ(DisplayWidth("林小姐"), 6u);
  EXPECT_EQ(DisplayWidth("café"), 4u);
  Table t({"BUYER", "TIER"});
  t.Add({"林小姐", "novice"});
  t.Add({"lin", "expert"});
  std::ostringstream out;
  t.Print(out);
  EXPECT_EQ(out.str(), "BUYER   TIER\n林小姐  novice\nlin     expert\n");
}

TEST(TableTest, TimesInOneFormatAndAmountsAsDecimals) {
  const Zone* shanghai = FindZone("Asia/Shanghai");
  EXPECT_EQ(DisplayTime("2026-11-02T07:30:00.004Z", shanghai), "2026-11-02 15:30:00 +08:00");
  EXPECT_EQ(DisplayTime("2026-11-02T15:30:00+08:00", UtcZone()), "2026-11-02 07:30:00 +00:00");
  EXPECT_EQ(DisplayTime("", UtcZone()), "-");
  EXPECT_EQ(DisplayTimesIn("waiting until 2026-11-02T01:00:00Z: due outside the send window (x "
                           "2026-11-03T09:00:00.5+08:00)",
                           shanghai),
            "waiting until 2026-11-02 09:00:00 +08:00: due outside the send window (x "
            "2026-11-03 09:00:00 +08:00)");
  EXPECT_EQ(DisplayTimesIn("2026-11-02T01:00 is not one", shanghai), "2026-11-02T01:00 is not one");
  // Digits at the very end are no time, and nothing past the end is read.
  EXPECT_EQ(DisplayTimesIn("repurchased: order A-2026", shanghai), "repurchased: order A-2026");
  EXPECT_EQ(DisplayTimesIn("2026-11-02T01:00:0", shanghai), "2026-11-02T01:00:0");
  EXPECT_EQ(DisplayAmount(99999.99), "99999.99");
  EXPECT_EQ(DisplayAmount(1234567), "1234567");
  EXPECT_EQ(DisplayAmount(0.5), "0.5");
  EXPECT_EQ(DisplayAmount(1e12), "1000000000000");
}

}  // namespace
}  // namespace tp
