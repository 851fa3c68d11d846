#include "planner/planner.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/ids.h"
#include "harness.h"

namespace tp {
namespace {

using testing::At;
using testing::Fmt;

class PlannerTest : public ::testing::Test {
 protected:
  std::shared_ptr<const Rules> rules_ = testing::MustLoad(testing::kBriefConfig);
  const Zone* shanghai_ = FindZone("Asia/Shanghai");

  Plan PlanFor(const std::vector<PastPurchase>& history, const std::string& order,
               const std::string& product, std::int64_t quantity, double amount,
               std::string_view at, const Zone* zone = nullptr) {
    Purchase p{order, "buyer", product, quantity, amount, At(at), ""};
    return PlanPurchase(*rules_, history, p, rules_->ProductIndex(product),
                        zone != nullptr ? zone : shanghai_);
  }
  PastPurchase Past(std::string_view at, const std::string& product, double amount) {
    return PastPurchase{At(at), rules_->ProductIndex(product), amount, 1, rules_->timezone};
  }
  std::vector<std::string> Topics(const Plan& plan) {
    std::vector<std::string> out;
    for (const auto& t : plan.touchpoints) {
      out.push_back(rules_->cadences[static_cast<std::size_t>(t.cadence)]
                        .steps[static_cast<std::size_t>(t.step)]
                        .topic);
    }
    return out;
  }
  const PlannedTouchpoint& Get(const Plan& plan, const std::string& topic) {
    for (const auto& t : plan.touchpoints) {
      if (rules_->cadences[static_cast<std::size_t>(t.cadence)]
              .steps[static_cast<std::size_t>(t.step)]
              .topic == topic) {
        return t;
      }
    }
    ADD_FAILURE() << "no " << topic;
    return plan.touchpoints.front();
  }
  std::string TierName(const Plan& plan) {
    return rules_->tiers[static_cast<std::size_t>(plan.tier)].name;
  }
};

TEST_F(PlannerTest, FirstDailyPurchasePlansTrustAndRepurchase) {
  const Plan plan = PlanFor({}, "o1", "daily", 2, 240, "2026-11-01T15:30:00+08:00");
  EXPECT_EQ(TierName(plan), "novice");
  EXPECT_FALSE(plan.switched);
  EXPECT_THAT(Topics(plan),
              ::testing::ElementsAre("how-to-wear", "comfort-check", "care-tips", "style-ideas",
                                     "trust-checkpoint", "repurchase-reminder"));
  EXPECT_EQ(Fmt(Get(plan, "how-to-wear").due_at, "Asia/Shanghai"), "2026-11-02T15:30:00+08:00");
  EXPECT_EQ(Fmt(Get(plan, "style-ideas").due_at, "Asia/Shanghai"), "2026-11-22T15:30:00+08:00");
  EXPECT_EQ(Fmt(Get(plan, "trust-checkpoint").due_at, "Asia/Shanghai"),
            "2026-11-11T15:30:00+08:00");
  // runout: 2 boxes x 15 days.
  EXPECT_EQ(Fmt(Get(plan, "repurchase-reminder").due_at, "Asia/Shanghai"),
            "2026-12-01T15:30:00+08:00");
  for (const auto& t : plan.touchpoints) EXPECT_EQ(t.state, TouchpointState::kPending);
}

TEST_F(PlannerTest, RunoutScalesWithQuantity) {
  EXPECT_EQ(
      Fmt(Get(PlanFor({}, "o", "daily", 1, 1, "2026-11-01T10:00:00+08:00"), "repurchase-reminder")
              .due_at,
          "Asia/Shanghai"),
      "2026-11-16T10:00:00+08:00");
  EXPECT_EQ(
      Fmt(Get(PlanFor({}, "o", "daily", 6, 1, "2026-11-01T10:00:00+08:00"), "repurchase-reminder")
              .due_at,
          "Asia/Shanghai"),
      "2027-01-30T10:00:00+08:00");
}

// Ingest bounds quantity x supply_days at 36,500 days, but a reload can
// raise supply_days under a purchase already taken: its re-planned runout
// stops at the bound instead of leaving the range of dates.
TEST_F(PlannerTest, ARunoutPastTheBoundIsPlannedAtIt) {
  auto rules = testing::MustLoad(R"(version: 1
products: {daily: {supply_days: 36500}}
sinks: [{name: q, type: queue}]
cadences:
  - name: r
    steps: [{anchor: runout, after: 0d, topic: runout}]
)");
  Purchase p{"o", "b", "daily", 1000000, 10, At("2026-11-01T10:00:00Z"), ""};
  const Plan plan = PlanPurchase(*rules, {}, p, 0, UtcZone());
  ASSERT_EQ(plan.touchpoints.size(), 1u);
  EXPECT_EQ(Fmt(plan.touchpoints[0].due_at, "UTC"), "2126-10-08T10:00:00Z");
}

TEST_F(PlannerTest, NegativeOffsetFromRunout) {
  auto rules = testing::MustLoad(R"(version: 1
products: {daily: {supply_days: 15}}
sinks: [{name: q, type: queue}]
cadences:
  - name: r
    steps:
      - {anchor: runout, after: -3d, topic: reorder-soon}
      - {anchor: runout, after: -12h, topic: last-call}
)");
  Purchase p{"o", "b", "daily", 2, 10, At("2026-11-01T10:00:00+08:00"), ""};
  const Plan plan = PlanPurchase(*rules, {}, p, 0, shanghai_);
  ASSERT_EQ(plan.touchpoints.size(), 2u);
  EXPECT_EQ(Fmt(plan.touchpoints[0].due_at, "Asia/Shanghai"), "2026-11-28T10:00:00+08:00");
  EXPECT_EQ(Fmt(plan.touchpoints[1].due_at, "Asia/Shanghai"), "2026-11-30T22:00:00+08:00");

  // One box lasting 15 days with -20d lands before the purchase: skipped at birth.
  auto early = testing::MustLoad(R"(version: 1
products: {daily: {supply_days: 15}}
sinks: [{name: q, type: queue}]
cadences:
  - name: r
    steps: [{anchor: runout, after: -20d, topic: too-early}]
)");
  Purchase one{"o", "b", "daily", 1, 10, At("2026-11-01T10:00:00+08:00"), ""};
  const Plan skipped = PlanPurchase(*early, {}, one, 0, shanghai_);
  ASSERT_EQ(skipped.touchpoints.size(), 1u);
  EXPECT_EQ(skipped.touchpoints[0].state, TouchpointState::kSkipped);
  EXPECT_EQ(skipped.touchpoints[0].reason, "due before the purchase was made");
}

TEST_F(PlannerTest, TierProgressesToExpertByCountAndSpend) {
  std::vector<PastPurchase> history;
  const char* times[] = {"2026-01-01T10:00:00+08:00", "2026-02-01T10:00:00+08:00",
                         "2026-03-01T10:00:00+08:00", "2026-04-01T10:00:00+08:00"};
  std::vector<std::string> tiers;
  for (const char* t : times) {
    const Plan plan = PlanFor(history, "o", "daily", 2, 500, t);
    tiers.push_back(TierName(plan));
    history.push_back(Past(t, "daily", 500));
  }
  EXPECT_THAT(tiers, ::testing::ElementsAre("novice", "newbie", "newbie", "expert"));
}

TEST_F(PlannerTest, ExpertNeedsBothCountAndSpend) {
  std::vector<PastPurchase> cheap = {Past("2026-01-01T10:00:00+08:00", "daily", 10),
                                     Past("2026-02-01T10:00:00+08:00", "daily", 10),
                                     Past("2026-03-01T10:00:00+08:00", "daily", 10),
                                     Past("2026-04-01T10:00:00+08:00", "daily", 10)};
  // Five purchases but only 1,040 spent: still newbie.
  EXPECT_EQ(TierName(PlanFor(cheap, "o", "daily", 1, 1000, "2026-05-01T10:00:00+08:00")), "newbie");
  // Spend reaches 1,500 exactly with this purchase: expert.
  EXPECT_EQ(TierName(PlanFor(cheap, "o", "daily", 1, 1460, "2026-05-01T10:00:00+08:00")), "expert");
  // Big spend on the second purchase is not enough: count is 2.
  EXPECT_EQ(TierName(PlanFor({Past("2026-01-01T10:00:00+08:00", "daily", 5000)}, "o", "daily", 1,
                             5000, "2026-02-01T10:00:00+08:00")),
            "newbie");
}

TEST_F(PlannerTest, StepTierFilter) {
  EXPECT_THAT(Topics(PlanFor({Past("2026-01-01T10:00:00+08:00", "daily", 1)}, "o", "yearly", 1, 1,
                             "2026-02-01T10:00:00+08:00"))[0],
              "colour-match");
}

TEST_F(PlannerTest, SwitchFromDailyToYearly) {
  const Plan plan = PlanFor({Past("2026-11-12T11:00:00+08:00", "daily", 120)}, "o", "yearly", 1,
                            900, "2026-11-20T10:00:00+08:00");
  EXPECT_TRUE(plan.switched);
  EXPECT_EQ(Fmt(Get(plan, "yearly-care").due_at, "Asia/Shanghai"), "2026-12-20T10:00:00+08:00");
  EXPECT_EQ(Fmt(Get(plan, "trust-review").due_at, "Asia/Shanghai"), "2027-02-18T10:00:00+08:00");
  EXPECT_FALSE(Get(plan, "trust-review").cancel_on_repurchase);
}

TEST_F(PlannerTest, NoSwitchFromYearlyToYearlyOrOnAFirstPurchase) {
  const Plan again = PlanFor({Past("2026-01-01T10:00:00+08:00", "yearly", 900)}, "o", "yearly", 1,
                             900, "2026-11-20T10:00:00+08:00");
  EXPECT_FALSE(again.switched);
  EXPECT_THAT(Topics(again), ::testing::Not(::testing::Contains("yearly-care")));
  EXPECT_FALSE(PlanFor({}, "o", "yearly", 1, 900, "2026-11-20T10:00:00+08:00").switched);
  // yearly -> daily is not in from/to either.
  EXPECT_FALSE(PlanFor({Past("2026-01-01T10:00:00+08:00", "yearly", 900)}, "o", "daily", 1, 1,
                       "2026-11-20T10:00:00+08:00")
                   .switched);
}

TEST_F(PlannerTest, SwitchComparesWithThePreviousPurchaseByTimeNotArrival) {
  // History (sorted): daily in January, yearly in March. A late order for a
  // yearly made in February comes after the daily one: a switch.
  std::vector<PastPurchase> history = {Past("2026-01-01T10:00:00+08:00", "daily", 1),
                                       Past("2026-03-01T10:00:00+08:00", "yearly", 1)};
  EXPECT_TRUE(PlanFor(history, "late", "yearly", 1, 1, "2026-02-01T10:00:00+08:00").switched);
  // Its tier counts only what came before it: 2 purchases -> newbie.
  EXPECT_EQ(TierName(PlanFor(history, "late", "yearly", 1, 1, "2026-02-01T10:00:00+08:00")),
            "newbie");
}

TEST_F(PlannerTest, LateOrderIsBornCancelledWhereANewerPurchaseWouldHaveCancelledIt) {
  // The newer purchase is on 2026-02-10 10:00; this late one from 2026-02-01.
  std::vector<PastPurchase> history = {Past("2026-02-10T10:00:00+08:00", "daily", 1)};
  const Plan plan = PlanFor(history, "late", "daily", 2, 1, "2026-02-01T10:00:00+08:00");
  EXPECT_EQ(Get(plan, "comfort-check").state, TouchpointState::kPending);       // due 02-04
  EXPECT_EQ(Get(plan, "care-tips").state, TouchpointState::kPending);           // due 02-08
  EXPECT_EQ(Get(plan, "trust-checkpoint").state, TouchpointState::kCancelled);  // due 02-11
  EXPECT_EQ(Get(plan, "style-ideas").state, TouchpointState::kCancelled);
  EXPECT_EQ(Get(plan, "repurchase-reminder").state, TouchpointState::kCancelled);
  EXPECT_EQ(Get(plan, "style-ideas").reason, "repurchased: a newer purchase was already recorded");
}

// The trust cadence stops on a reply (stop_on): a reply at or after the
// purchase, already recorded when it is planned (a late order), cancels
// its steps at birth: none was sent before the reply, none goes after it.
TEST_F(PlannerTest, AnAnswerAfterThePurchaseCancelsItsCadencesStepsDueFromThenAtBirth) {
  std::string yaml(testing::kBriefConfig);
  const std::string at =
      "    cancel_on_repurchase: true\n    steps:\n      - {after: 1d,  topic: how";
  yaml.replace(yaml.find(at), at.size(),
               "    cancel_on_repurchase: true\n    stop_on: [replied, clicked]\n    steps:\n"
               "      - {after: 1d,  topic: how");
  rules_ = testing::MustLoad(yaml);
  const int replied = rules_->EngagementTypeIndex("replied");
  const int clicked = rules_->EngagementTypeIndex("clicked");
  const int read = rules_->EngagementTypeIndex("read");
  EXPECT_EQ(StopTypes(*rules_), (std::vector<std::string>{"replied", "clicked"}));
  const Purchase p{"o", "buyer", "daily", 2, 1, At("2026-02-01T10:00:00+08:00"), ""};
  const std::vector<BuyerEvent> events = {
      {At("2026-02-01T09:00:00+08:00"), replied},  // before the purchase: not its answer
      {At("2026-02-06T10:00:00+08:00"), read},     // stops nothing
      {At("2026-02-09T12:00:00+08:00"), clicked},  // later than the reply below
      {At("2026-02-05T12:00:00+08:00"), replied},
  };
  const Plan plan = PlanPurchase(*rules_, {}, p, 0, shanghai_, events);
  // Every step, those due before the answer too: none went out before it.
  EXPECT_EQ(Get(plan, "how-to-wear").state, TouchpointState::kCancelled);  // due 02-02
  EXPECT_EQ(Get(plan, "comfort-check").state, TouchpointState::kCancelled);
  EXPECT_EQ(Get(plan, "care-tips").state, TouchpointState::kCancelled);
  EXPECT_EQ(Get(plan, "care-tips").reason, "buyer replied at 2026-02-05T04:00:00Z");
  EXPECT_EQ(Get(plan, "style-ideas").state, TouchpointState::kCancelled);
  // Another cadence, which no answer stops.
  EXPECT_EQ(Get(plan, "trust-checkpoint").state, TouchpointState::kPending);
  // Without the events, as before.
  EXPECT_EQ(Get(PlanPurchase(*rules_, {}, p, 0, shanghai_), "style-ideas").state,
            TouchpointState::kPending);
}

TEST_F(PlannerTest, NextAtIsDueMovedIntoTheSendWindow) {
  const Plan plan = PlanFor({}, "o", "daily", 1, 1, "2026-11-01T22:40:00+08:00");
  EXPECT_EQ(Fmt(Get(plan, "how-to-wear").due_at, "Asia/Shanghai"), "2026-11-02T22:40:00+08:00");
  EXPECT_EQ(Fmt(Get(plan, "how-to-wear").next_at, "Asia/Shanghai"), "2026-11-03T09:00:00+08:00");
}

TEST_F(PlannerTest, DstSpringForwardInBerlin) {
  const Zone* berlin = FindZone("Europe/Berlin");
  const Plan plan = PlanFor({}, "o", "daily", 2, 1, "2026-03-27T08:00:00+01:00", berlin);
  EXPECT_EQ(Fmt(Get(plan, "how-to-wear").due_at, "Europe/Berlin"), "2026-03-28T08:00:00+01:00");
  EXPECT_EQ(Fmt(Get(plan, "comfort-check").due_at, "Europe/Berlin"), "2026-03-30T08:00:00+02:00");
  EXPECT_EQ(Fmt(Get(plan, "comfort-check").next_at, "Europe/Berlin"), "2026-03-30T09:00:00+02:00");
}

TEST_F(PlannerTest, DstFallBackInNewYork) {
  const Zone* ny = FindZone("America/New_York");
  const Plan plan = PlanFor({}, "o", "daily", 1, 1, "2026-10-29T10:00:00-04:00", ny);
  EXPECT_EQ(Fmt(Get(plan, "comfort-check").due_at, "America/New_York"),
            "2026-11-01T10:00:00-05:00");
  EXPECT_EQ(Fmt(Get(plan, "care-tips").due_at, "America/New_York"), "2026-11-05T10:00:00-05:00");
}

TEST_F(PlannerTest, IdsAreStableAndDistinct) {
  const Plan a = PlanFor({}, "o1", "daily", 2, 1, "2026-11-01T10:00:00+08:00");
  const Plan b = PlanFor({Past("2025-01-01T10:00:00+08:00", "daily", 1)}, "o1", "daily", 2, 1,
                         "2026-11-01T10:00:00+08:00");
  EXPECT_EQ(a.touchpoints[0].id, TouchpointId("o1", "trust", "how-to-wear"));
  EXPECT_THAT(a.touchpoints[0].id, ::testing::MatchesRegex("tp_[0-9a-f]{32}"));
  // Re-planning the same order (even with another history) gives the same ids.
  EXPECT_EQ(a.touchpoints[2].id, b.touchpoints[2].id);
  std::set<std::string> ids;
  for (const auto& t : a.touchpoints) ids.insert(t.id);
  EXPECT_EQ(ids.size(), a.touchpoints.size());
  EXPECT_NE(TouchpointId("o1", "trust", "x"), TouchpointId("o2", "trust", "x"));
  EXPECT_NE(TouchpointId("a", "bc", "d"), TouchpointId("ab", "c", "d"));
}

}  // namespace
}  // namespace tp
