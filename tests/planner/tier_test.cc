// Tier conditions (planner/tier.h): recency (`within`), preference
// (`bought`) and the purchase's `attributes`, evaluated at each purchase on
// the buyer's history including it; all of a tier's conditions must hold,
// and the first tier that matches wins.
#include "planner/tier.h"

#include <gtest/gtest.h>

#include "harness.h"
#include "planner/planner.h"

namespace tp {
namespace {

using testing::At;

constexpr std::string_view kTierConfig = R"(version: 1
timezone: Asia/Shanghai
products: {daily: {supply_days: 15}, yearly: {supply_days: 365}}
sinks: [{name: q, type: queue}]
tiers:
  - {name: regular, min_purchases: 3, within: 180d}
  - {name: big-spender, min_spend: 1000, within: 30d}
  - {name: yearly-lately, bought: [yearly], within: 365d}
  - {name: natural-on-wecom, attributes: {style: [natural, nude], channel: wecom}}
  - {name: yearly-ever, bought: [yearly]}
  - {name: sized-vip, attributes: {size: [14, 15], vip: true}}
  - {name: novice}
cadences:
  - name: c
    steps: [{after: 1d, topic: t}]
)";

class TierTest : public ::testing::Test {
 protected:
  std::shared_ptr<const Rules> rules_ = testing::MustLoad(kTierConfig);
  const Zone* shanghai_ = FindZone("Asia/Shanghai");
  std::vector<PastPurchase> history_;

  void Past(std::string_view at, const std::string& product, double amount = 100) {
    history_.push_back(PastPurchase{At(at), rules_->ProductIndex(product), amount, 1, shanghai_});
  }
  std::string TierOf(std::string_view at, const std::string& product, double amount = 100,
                     const std::string& attributes = "") {
    Purchase p{"o", "b", product, 1, amount, At(at), "", attributes};
    // TierOf takes the purchases before this one; the planner finds them.
    std::span<const PastPurchase> before(history_);
    while (!before.empty() && before.back().purchased_at > p.purchased_at) {
      before = before.first(before.size() - 1);
    }
    const int tier = tp::TierOf(*rules_, before, p, rules_->ProductIndex(product), shanghai_);
    // The planner gives the same tier.
    EXPECT_EQ(PlanPurchase(*rules_, history_, p, rules_->ProductIndex(product), shanghai_).tier,
              tier);
    return rules_->tiers[static_cast<std::size_t>(tier)].name;
  }
};

TEST_F(TierTest, WithinCountsFromJustAfterTheBoundaryInCalendarDays) {
  // 180 calendar days before 2026-11-01T10:00 in Shanghai is 05-05T10:00:
  // a purchase exactly then is outside (the window is open at its start).
  Past("2026-05-05T10:00:00+08:00", "daily");
  Past("2026-09-01T10:00:00+08:00", "daily");
  EXPECT_EQ(TierOf("2026-11-01T10:00:00+08:00", "daily"), "novice");
  history_.front().purchased_at = At("2026-05-05T10:00:00.001+08:00");
  EXPECT_EQ(TierOf("2026-11-01T10:00:00+08:00", "daily"), "regular");
}

TEST_F(TierTest, WithinIsCalendarDaysInTheBuyersZoneAcrossDst) {
  // In Berlin, 180 days before 2026-11-01T10:00+01:00 (winter time) is
  // 2026-05-05T10:00+02:00 (summer time): an hour more than 180 x 24 hours.
  const Zone* berlin = FindZone("Europe/Berlin");
  history_ = {{At("2026-05-05T10:00:00+02:00"), 0, 100, 1, berlin},
              {At("2026-09-01T10:00:00+02:00"), 0, 100, 1, berlin}};
  Purchase p{"o", "b", "daily", 1, 100, At("2026-11-01T10:00:00+01:00"), "Europe/Berlin"};
  EXPECT_EQ(rules_->tiers[tp::TierOf(*rules_, history_, p, 0, berlin)].name, "novice");
  history_.front().purchased_at = At("2026-05-05T10:00:01+02:00");
  EXPECT_EQ(rules_->tiers[tp::TierOf(*rules_, history_, p, 0, berlin)].name, "regular");
}

TEST_F(TierTest, MinSpendWithinLeavesOlderSpendOut) {
  Past("2026-04-01T10:00:00+08:00", "daily", 5000);  // 214 days before
  Past("2026-10-20T10:00:00+08:00", "daily", 400);
  EXPECT_EQ(TierOf("2026-11-01T10:00:00+08:00", "daily", 500), "novice");
  EXPECT_EQ(TierOf("2026-11-01T10:00:00+08:00", "daily", 600), "big-spender");
}

TEST_F(TierTest, BoughtCountsThePurchaseItselfAndHonoursWithin) {
  EXPECT_EQ(TierOf("2026-11-01T10:00:00+08:00", "yearly"), "yearly-lately");
  Past("2025-10-31T10:00:00+08:00", "yearly");  // 366 days before
  EXPECT_EQ(TierOf("2026-11-01T10:00:00+08:00", "daily"), "yearly-ever");
  Past("2026-01-10T10:00:00+08:00", "daily");
  EXPECT_EQ(TierOf("2026-11-01T10:00:00+08:00", "daily"), "yearly-ever");
  Past("2026-03-10T10:00:00+08:00", "yearly");
  EXPECT_EQ(TierOf("2026-11-01T10:00:00+08:00", "daily"), "yearly-lately");
}

TEST_F(TierTest, AttributesMatchOneOfTheListedStringsForEveryKey) {
  const std::string at = "2026-11-01T10:00:00+08:00";
  EXPECT_EQ(TierOf(at, "daily", 100, R"({"channel":"wecom","style":"natural"})"),
            "natural-on-wecom");
  EXPECT_EQ(TierOf(at, "daily", 100, R"({"channel":"wecom","style":"nude","x":[1]})"),
            "natural-on-wecom");
  // A value not listed, a key missing, an array or a number not listed, none.
  EXPECT_EQ(TierOf(at, "daily", 100, R"({"channel":"wecom","style":"glam"})"), "novice");
  EXPECT_EQ(TierOf(at, "daily", 100, R"({"style":"natural"})"), "novice");
  EXPECT_EQ(TierOf(at, "daily", 100, R"({"channel":"wecom","style":["natural"]})"), "novice");
  EXPECT_EQ(TierOf(at, "daily", 100, R"({"channel":1,"style":"natural"})"), "novice");
  EXPECT_EQ(TierOf(at, "daily", 100, ""), "novice");
  // Numbers and booleans by their JSON text, as YAML reads `vip: true`.
  EXPECT_EQ(TierOf(at, "daily", 100, R"({"size":14,"vip":true})"), "sized-vip");
  EXPECT_EQ(TierOf(at, "daily", 100, R"({"size":"14","vip":"true"})"), "sized-vip");
  EXPECT_EQ(TierOf(at, "daily", 100, R"({"size":14.5,"vip":true})"), "novice");
}

TEST_F(TierTest, AllConditionsMustHoldAndTheFirstMatchWins) {
  // Three purchases in 180 days and 1,200 spent in 30: both the first and
  // the second tier hold; the first wins.
  Past("2026-10-10T10:00:00+08:00", "daily", 600);
  Past("2026-10-20T10:00:00+08:00", "daily", 500);
  EXPECT_EQ(TierOf("2026-11-01T10:00:00+08:00", "daily", 100), "regular");
  // A later purchase in the history (an order that arrived late) is not
  // counted at an earlier one.
  history_ = {{At("2026-12-01T10:00:00+08:00"), 0, 5000, 1, shanghai_}};
  EXPECT_EQ(TierOf("2026-11-01T10:00:00+08:00", "daily", 100), "novice");
}

TEST_F(TierTest, AConfigWithoutTheNewConditionsCountsAllTime) {
  auto rules = testing::MustLoad(testing::kBriefConfig);
  // The brief's tiers: expert from 4 purchases and 1,500 spent, all time.
  std::vector<PastPurchase> history;
  for (int year = 2020; year < 2023; ++year) {
    history.push_back({At(std::to_string(year) + "-01-01T10:00:00+08:00"), 0, 500, 1, shanghai_});
  }
  Purchase p{"o", "b", "daily", 1, 10, At("2026-11-01T10:00:00+08:00"), ""};
  EXPECT_EQ(rules->tiers[tp::TierOf(*rules, history, p, 0, shanghai_)].name, "expert");
}

}  // namespace
}  // namespace tp
