// Runs the real touchpointctl binary as a child process.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "run_ctl.h"

namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

using tp::testing::Ctl;
using tp::testing::Result;

const std::string kData = TP_TEST_DATA;

TEST(TouchpointctlTest, ValidateAcceptsTheExampleConfig) {
  const Result r = Ctl({"validate", TP_EXAMPLE_CONFIG});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(
      r.out, HasSubstr(": ok (version 1; 2 products, 3 tiers, 3 cadences with 9 steps, 1 sink)\n"));
  EXPECT_EQ(r.err, "");
}

TEST(TouchpointctlTest, ValidateReportsEveryErrorOnStderrAndExits1) {
  const auto path =
      std::filesystem::temp_directory_path() / ("tp-bad-" + std::to_string(::getpid()) + ".yaml");
  std::ofstream(path)
      << "version: 1\nproducts: {daily: {supply_days: 0}}\nsinks: [{name: q, type: queue}]\n"
         "cadences:\n  - {name: c, steps: [{after: 1x, topic: t}]}\n";
  const Result r = Ctl({"validate", path.string()});
  std::filesystem::remove(path);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_THAT(r.err,
              HasSubstr(path.string() + ":2:33: error: product 'daily' supply_days must be"));
  EXPECT_THAT(r.err, HasSubstr(path.string() + ":5:31: error: after must be a duration"));
  EXPECT_THAT(r.err, HasSubstr(": 2 errors\n"));
}

TEST(TouchpointctlTest, BadUsageExits64) {
  EXPECT_EQ(Ctl({}).exit_code, 64);
  EXPECT_EQ(Ctl({"validate"}).exit_code, 64);
  EXPECT_EQ(Ctl({"frobnicate"}).exit_code, 64);
  EXPECT_EQ(Ctl({"simulate", "--config", TP_EXAMPLE_CONFIG}).exit_code, 64);
  const Result r = Ctl({"simulate", "--config", TP_EXAMPLE_CONFIG, "--purchases",
                        kData + "/brief/brief-purchases.csv", "--until", "tomorrow"});
  EXPECT_EQ(r.exit_code, 64);
  EXPECT_THAT(r.err, HasSubstr("--until must be an RFC 3339 time"));
  // Checked here, before any request: a '+' needs no escaping on a command line.
  const Result report = Ctl({"report", "--url", "http://127.0.0.1:9", "--from", "yesterday"});
  EXPECT_EQ(report.exit_code, 64);
  EXPECT_THAT(report.err, HasSubstr("--from: must be an RFC 3339 time"));
  EXPECT_THAT(report.err, Not(HasSubstr("%2B")));
  EXPECT_EQ(Ctl({"--help"}).exit_code, 0);
}

TEST(TouchpointctlTest, SimulatePrintsTheBriefsExpectedLines) {
  const Result r = Ctl({"simulate", "--config", kData + "/brief/touchpoint.yaml", "--purchases",
                        kData + "/brief/brief-purchases.csv"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::istringstream actual(r.out);
  std::ifstream expected(kData + "/brief/brief-expected.jsonl");
  std::string a, e;
  int n = 0;
  while (std::getline(expected, e)) {
    ASSERT_TRUE(std::getline(actual, a)) << "missing line " << n + 1;
    auto aj = nlohmann::json::parse(a), ej = nlohmann::json::parse(e);
    aj.erase("id");
    EXPECT_EQ(aj, ej) << "line " << ++n;
  }
  EXPECT_FALSE(std::getline(actual, a)) << "extra line: " << a;
}

TEST(TouchpointctlTest, SimulateWithBadCsvExits1AndPrintsNothing) {
  const auto path =
      std::filesystem::temp_directory_path() / ("tp-bad-" + std::to_string(::getpid()) + ".csv");
  std::ofstream(path)
      << "order_id,buyer_id,product,quantity,amount,purchased_at,timezone\n"
         "o1,b,daily,1,10,2026-11-01T10:00:00+08:00,\no2,b,daily,1,10,not-a-time,\n";
  const Result r = Ctl({"simulate", "--config", TP_EXAMPLE_CONFIG, "--purchases", path.string()});
  std::filesystem::remove(path);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_THAT(r.err, StartsWith(path.string() + ":3: error: field 'purchased_at'"));
}

}  // namespace
