// `simulate` end to end on config/touchpoint.playbook.yaml, the brand's
// playbook in full, with tests/data/playbook/purchases.csv: tiers by
// recency, spend, preference and attributes (the CSV's `attributes`
// column), a step per tier with its own channel, and WeCom's monthly cap,
// which holds WeCom messages back and lets the advisor's and email through.
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "config/loader.h"
#include "simulate/simulate.h"

namespace tp {
namespace {

using nlohmann::json;

class PlaybookSimulateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    LoadResult rules = LoadRulesFile(TP_PLAYBOOK_CONFIG);
    ASSERT_TRUE(rules.ok()) << rules.errors.front().ToString();
    SimulateOptions options;
    options.purchases_path = std::string(TP_TEST_DATA) + "/playbook/purchases.csv";
    options.until = ParseRfc3339("2027-01-31T00:00:00+08:00");
    std::stringstream out;
    const SimulateResult r = Simulate(rules.rules, options, out);
    ASSERT_TRUE(r.ok()) << r.errors.front();
    ASSERT_EQ(r.purchases, 13u);
    std::string line;
    while (std::getline(out, line)) {
      json j = json::parse(line);
      const std::string key =
          j["order_id"].get<std::string>() + " " + j["topic"].get<std::string>();
      touchpoints_[key] = std::move(j);
    }
  }
  // The tier order `order` was planned at (from any of its touchpoints).
  std::string TierOf(const std::string& order) const {
    for (const auto& [key, j] : touchpoints_) {
      if (j["order_id"] == order) return j["tier"];
    }
    return "(no touchpoint)";
  }
  bool Has(const std::string& order, const std::string& topic) const {
    return touchpoints_.contains(order + " " + topic);
  }
  std::string FireAt(const std::string& order, const std::string& topic) const {
    auto it = touchpoints_.find(order + " " + topic);
    if (it == touchpoints_.end()) return "(none)";
    return it->second["fire_at"].is_string() ? it->second["fire_at"].get<std::string>() : "null";
  }

  std::map<std::string, json> touchpoints_;
};

TEST_F(PlaybookSimulateTest, TiersByRecencySpendPreferenceAndAttributes) {
  EXPECT_EQ(TierOf("n-1"), "novice");
  EXPECT_EQ(TierOf("m-1"), "novice-natural");  // {"style": "natural"} at checkout
  EXPECT_EQ(TierOf("l-1"), "novice");
  EXPECT_EQ(TierOf("l-2"), "newbie");  // back within 180 days
  EXPECT_EQ(TierOf("l-3"), "expert");  // 3 purchases and 900 spent in 180 days
  // Three purchases in 2024: an expert then, a novice again in 2026.
  EXPECT_EQ(TierOf("o-3"), "expert");
  EXPECT_EQ(TierOf("o-4"), "novice");
  EXPECT_EQ(TierOf("y-2"), "expert-yearly");  // bought yearly lenses
}

TEST_F(PlaybookSimulateTest, EachTierGetsItsOwnSteps) {
  EXPECT_TRUE(Has("n-1", "how-to-wear"));  // novices: the advisor, on day 1
  EXPECT_TRUE(Has("m-1", "how-to-wear"));
  EXPECT_FALSE(Has("l-2", "how-to-wear"));
  EXPECT_TRUE(Has("l-2", "colour-match"));
  EXPECT_TRUE(Has("l-3", "whats-new"));
  EXPECT_FALSE(Has("l-3", "comfort-check"));
  EXPECT_TRUE(Has("l-3", "reorder-usual"));  // experts: a week before runout
  EXPECT_FALSE(Has("l-3", "repurchase-reminder"));
  EXPECT_EQ(FireAt("l-3", "reorder-usual"), "2026-08-24T11:00:00+09:00");  // Tokyo
  EXPECT_EQ(FireAt("y-2", "yearly-first-days"), "2026-09-23T10:00:00+08:00");
  EXPECT_EQ(FireAt("y-2", "trust-review"), "2026-12-19T10:00:00+08:00");  // day 90
}

TEST_F(PlaybookSimulateTest, WeComsMonthlyCapHoldsWeComBackAndNothingElse) {
  // Zoe's October on WeCom: comfort-check 10-04 and care-tips 10-08 of her
  // first order, colour-match 10-16 and comfort-check 10-18 of her second:
  // four, WeCom's monthly limit. Care-tips, due 10-22, waits for November.
  EXPECT_EQ(FireAt("z-1", "comfort-check"), "2026-10-04T10:00:00+08:00");
  EXPECT_EQ(FireAt("z-2", "comfort-check"), "2026-10-18T10:00:00+08:00");
  EXPECT_EQ(touchpoints_.at("z-2 care-tips")["due_at"], "2026-10-22T10:00:00+08:00");
  EXPECT_EQ(FireAt("z-2", "care-tips"), "2026-11-01T10:00:00+08:00");
  // The advisor's queue is not WeCom: the day-10 checkpoint goes on time.
  EXPECT_EQ(FireAt("z-2", "trust-checkpoint"), "2026-10-25T10:00:00+08:00");
}

}  // namespace
}  // namespace tp
