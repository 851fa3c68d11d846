#include "simulate/simulate.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "harness.h"

namespace tp {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

std::vector<json> ReadJsonLines(std::istream& in) {
  std::vector<json> out;
  std::string line;
  while (std::getline(in, line)) out.push_back(json::parse(line));
  return out;
}

// Compares instants as instants and drops ids, as the acceptance README says.
json Normalise(json j) {
  j.erase("id");
  for (const char* key : {"due_at", "fire_at"}) {
    if (j[key].is_string()) {
      j[key] = ParseRfc3339(j[key].get<std::string>())->time_since_epoch().count();
    }
  }
  return j;
}

class SimulateTest : public ::testing::Test {
 protected:
  std::filesystem::path dir_ = std::filesystem::temp_directory_path() /
                               ("tp-sim-" + std::to_string(::getpid()) + "-" +
                                ::testing::UnitTest::GetInstance()->current_test_info()->name());
  void SetUp() override { std::filesystem::create_directories(dir_); }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Write(const std::string& name, const std::string& text) {
    const auto path = dir_ / name;
    std::ofstream(path) << text;
    return path.string();
  }
  SimulateResult Run(const std::string& csv_text, std::string& output,
                     std::optional<Instant> until = std::nullopt,
                     std::string_view config = testing::kBriefConfig) {
    SimulateOptions options;
    options.purchases_path = Write("p.csv", csv_text);
    options.until = until;
    std::ostringstream out;
    SimulateResult r = Simulate(testing::MustLoad(config), options, out);
    output = out.str();
    return r;
  }
};

constexpr const char* kCsvHeader =
    "order_id,buyer_id,product,quantity,amount,purchased_at,timezone\n";

TEST_F(SimulateTest, BriefAcceptanceExample) {
  LoadResult rules = LoadRulesFile(std::string(TP_TEST_DATA) + "/brief/touchpoint.yaml");
  ASSERT_TRUE(rules.ok());
  SimulateOptions options;
  options.purchases_path = std::string(TP_TEST_DATA) + "/brief/brief-purchases.csv";
  std::stringstream out;
  const SimulateResult r = Simulate(rules.rules, options, out);
  ASSERT_TRUE(r.ok()) << r.errors.front();
  EXPECT_EQ(r.purchases, 9u);
  std::ifstream expected_file(std::string(TP_TEST_DATA) + "/brief/brief-expected.jsonl");
  const std::vector<json> expected = ReadJsonLines(expected_file);
  const std::vector<json> actual = ReadJsonLines(out);
  ASSERT_EQ(actual.size(), expected.size());
  for (std::size_t i = 0; i < actual.size(); ++i) {
    EXPECT_EQ(Normalise(actual[i]), Normalise(expected[i])) << "line " << i + 1;
  }
  for (const json& j : actual)
    EXPECT_THAT(j["id"].get<std::string>(), ::testing::MatchesRegex("tp_[0-9a-f]{32}"));
}

TEST_F(SimulateTest, MalformedRowsAreReportedWithLineNumbersAndNothingRuns) {
  std::string out;
  const SimulateResult r = Run(std::string(kCsvHeader) +
                                   "o1,b,daily,1,10,2026-11-01T10:00:00+08:00,\n"
                                   "o2,b,daily,zero,10,2026-11-01T10:00:00+08:00,\n"
                                   "o3,b,daily,1,10,2026-11-01T10:00:00+08:00,Mars/Base\n"
                                   "o4,b,\"daily,1,10,2026-11-01T10:00:00+08:00,\n",
                               out);
  EXPECT_THAT(
      r.errors,
      ElementsAre(HasSubstr("p.csv:3: error: field 'quantity'"),
                  HasSubstr("p.csv:4: error: field 'timezone': unknown time zone 'Mars/Base'"),
                  HasSubstr("p.csv:5: error: unterminated quoted field")));
  EXPECT_THAT(out, IsEmpty());
}

TEST_F(SimulateTest, ConflictingDuplicateIsAnErrorIdenticalOneIsIgnored) {
  std::string out;
  SimulateResult r = Run(std::string(kCsvHeader) +
                             "o1,b,daily,1,10,2026-11-01T10:00:00+08:00,\n"
                             "o1,b,daily,1,10,2026-11-01T10:00:00+08:00,\n",
                         out);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.purchases, 1u);
  EXPECT_EQ(r.duplicates, 1u);
  EXPECT_EQ(r.lines, 6u);
  r = Run(std::string(kCsvHeader) +
              "o1,b,daily,1,10,2026-11-01T10:00:00+08:00,\n"
              "o2,b,daily,1,10,2026-11-01T10:00:00+08:00,\n"
              "o1,b,daily,2,10,2026-11-01T10:00:00+08:00,\n",
          out);
  EXPECT_THAT(
      r.errors,
      ElementsAre(
          "" + (dir_ / "p.csv").string() +
          ":4: error: field 'quantity': order_id 'o1' is also line 2, with another quantity"));
  EXPECT_THAT(out, IsEmpty());
}

TEST_F(SimulateTest, RowsOutOfOrderAreReplayedInPurchaseTimeOrder) {
  std::string sorted_out, shuffled_out;
  ASSERT_TRUE(Run(std::string(kCsvHeader) + "a,b,daily,1,10,2026-11-01T10:00:00+08:00,\n"
                                            "c,b,daily,1,10,2026-11-05T10:00:00+08:00,\n",
                  sorted_out)
                  .ok());
  ASSERT_TRUE(Run(std::string(kCsvHeader) + "c,b,daily,1,10,2026-11-05T10:00:00+08:00,\n"
                                            "a,b,daily,1,10,2026-11-01T10:00:00+08:00,\n",
                  shuffled_out)
                  .ok());
  EXPECT_EQ(sorted_out, shuffled_out);
  EXPECT_THAT(sorted_out,
              HasSubstr("\"order_id\":\"a\",\"cadence\":\"trust\",\"topic\":\"care-tips\""));
}

TEST_F(SimulateTest, UntilLeavesLaterTouchpointsPendingAndLaterPurchasesOut) {
  std::string out;
  const SimulateResult r = Run(std::string(kCsvHeader) +
                                   "a,b,daily,2,10,2026-11-01T10:00:00+08:00,\n"
                                   "z,c,daily,2,10,2026-12-24T10:00:00+08:00,\n",
                               out, testing::At("2026-11-05T00:00:00+08:00"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.purchases, 1u);
  std::istringstream in(out);
  std::vector<std::string> statuses;
  for (const json& j : ReadJsonLines(in))
    statuses.push_back(j["topic"].get<std::string>() + ":" + j["status"].get<std::string>() + ":" +
                       (j["fire_at"].is_null() ? "null" : "set"));
  EXPECT_THAT(statuses,
              ElementsAre("how-to-wear:fired:set", "comfort-check:fired:set",
                          "care-tips:pending:null", "trust-checkpoint:pending:null",
                          "style-ideas:pending:null", "repurchase-reminder:pending:null"));
}

TEST_F(SimulateTest, MissingFileAndEmptyFile) {
  SimulateOptions options;
  options.purchases_path = (dir_ / "none.csv").string();
  std::ostringstream out;
  EXPECT_THAT(Simulate(testing::MustLoad(testing::kBriefConfig), options, out).errors,
              ElementsAre(HasSubstr("none.csv: No such file or directory")));
  std::string o;
  EXPECT_THAT(Run("", o).errors, ElementsAre(HasSubstr("p.csv:1: error: the file is empty")));
  EXPECT_THAT(Run("order_id,buyer\n", o).errors,
              ElementsAre(HasSubstr("p.csv:1: error: unknown column 'buyer'")));
}

}  // namespace
}  // namespace tp
