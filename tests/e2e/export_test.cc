// End-to-end: `touchpointctl export` from a running daemon's database, and
// `simulate` on what it wrote, which must replay exactly as the files the
// purchases and events were imported from.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/clock.h"
#include "core/ids.h"
#include "daemon_process.h"
#include "engagement_rules.h"
#include "harness.h"
#include "run_ctl.h"
#include "temp_dir.h"

namespace tp {
namespace {

using testing::DaemonProcess;
using ::testing::HasSubstr;

class ExportTest : public ::testing::Test {
 protected:
  std::string Path(const std::string& name) const { return dir_.path() + "/" + name; }
  void SetUp() override {
    testing::WriteFile(Path("touchpoint.yaml"), std::string(testing::kEngagementRules));
    daemon_ =
        std::make_unique<DaemonProcess>(Path("touchpoint.yaml"), Path("tp.db"), Path("daemon.log"));
    ASSERT_TRUE(daemon_->Start());
  }
  // simulate's JSON lines for these files.
  std::string Simulate(const std::string& purchases, const std::string& events) {
    auto r = testing::Ctl({"simulate", "--config", Path("touchpoint.yaml"), "--purchases",
                           purchases, "--events", events});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.out;
  }

  testing::TempDir dir_;
  std::unique_ptr<DaemonProcess> daemon_;
};

// Days ago, in UTC, to the millisecond: recent enough that the daemon plans
// and fires them, and not at an hour the rules care about (no send window).
std::string DaysAgo(int days, int ms) {
  return FormatRfc3339(
      SystemClock().Now() - std::chrono::days(days) + std::chrono::milliseconds(ms), UtcZone());
}

TEST_F(ExportTest, WhatItWritesReplaysAsTheFilesThatWereImported) {
  const std::string purchases = Path("purchases.csv"), events = Path("events.csv");
  // Quotes, commas and spaces in attributes, a decimal amount, a blank and
  // a named zone, and a repurchase.
  testing::WriteFile(purchases,
                     "order_id,buyer_id,product,quantity,amount,purchased_at,timezone,attributes\n"
                     "o1,lin,daily,2,199.9," +
                         DaysAgo(12, 0) +
                         ",,\"{\"\"note\"\":\"\"a, \\\"\"b\\\"\" \"\"}\"\n"
                         "o2,wu,daily,1,120," +
                         DaysAgo(11, 1) +
                         ",Europe/Berlin,\n"
                         "o3,mei,daily,3,0.1," +
                         DaysAgo(10, 2) +
                         ",Asia/Tokyo,\"{\"\"size\"\":14}\"\n"
                         "o4,lin,daily,2,240," +
                         DaysAgo(4, 3) + ",,\n");
  auto r = testing::Ctl({"import", "--url", daemon_->url(), purchases});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // A reply stops lin's trust cadence; wu clicks her day-1 touchpoint.
  testing::WriteFile(events,
                     "event_id,buyer_id,type,at,touchpoint_id\n"
                     "e1,wu,clicked," +
                         DaysAgo(9, 0) + "," + TouchpointId("o2", "trust", "how-to-wear") +
                         "\n"
                         "e2,lin,replied," +
                         DaysAgo(3, 0) +
                         ",\n"
                         "e3,mei,read," +
                         DaysAgo(2, 0) + ",\n");
  r = testing::Ctl({"import", "--events", "--url", daemon_->url(), events});
  ASSERT_EQ(r.exit_code, 0) << r.err;

  // While the daemon runs.
  r = testing::Ctl({"export", "--database", Path("tp.db"), Path("out")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("exported 4 purchases and 3 events from " + Path("tp.db")));
  EXPECT_THAT(r.err, HasSubstr("export: purchases: 4 of 4 (100%)"));
  EXPECT_THAT(r.err, HasSubstr("export: events: 3 of 3 (100%)"));
  const std::string written = testing::Slurp(Path("out/purchases.csv"));
  EXPECT_THAT(written, HasSubstr(R"("{""note"":""a, \""b\"" ""}")")) << written;
  EXPECT_THAT(written, HasSubstr(",199.9,"));
  EXPECT_THAT(written, HasSubstr(",Europe/Berlin,"));

  const std::string original = Simulate(purchases, events);
  EXPECT_THAT(original, HasSubstr("\"status\":\"cancelled\"")) << "the reply stops a cadence";
  EXPECT_EQ(Simulate(Path("out/purchases.csv"), Path("out/events.csv")), original);

  // The files are never overwritten.
  r = testing::Ctl({"export", "--database", Path("tp.db"), Path("out")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr(Path("out/purchases.csv") + " exists"));
  EXPECT_EQ(testing::Slurp(Path("out/purchases.csv")), written);
}

TEST_F(ExportTest, WhatIsNotADatabaseItCanReadIsNamed) {
  auto r = testing::Ctl({"export", "--database", Path("none.db"), Path("out")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("cannot read the database " + Path("none.db") +
                               ": No such file or directory"));
  testing::WriteFile(Path("empty.db"), "");
  r = testing::Ctl({"export", "--database", Path("empty.db"), Path("out")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr(Path("empty.db") + " has schema version 0; this touchpointctl "
                                                  "exports versions 9 to"));
}

}  // namespace
}  // namespace tp
