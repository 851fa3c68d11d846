// The re-planning policy of a reload (planner/replan.h), step by step.
#include "planner/replan.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/ids.h"
#include "harness.h"

namespace tp {
namespace {

using testing::At;

constexpr std::string_view kReplanBase = R"(version: 1
timezone: UTC
misfire_grace: 1h
products:
  daily: {supply_days: 15}
  yearly: {supply_days: 365}
sinks:
  - {name: outbox, type: queue}
cadences:
  - name: trust
    trigger: purchase
    products: [daily]
    cancel_on_repurchase: true
    steps:
)";

class ReplanTest : public ::testing::Test {
 protected:
  std::shared_ptr<const Rules> Load(std::string_view steps) {
    return testing::MustLoad(std::string(kReplanBase) + std::string(steps));
  }

  // The purchase's touchpoints as the old rules planned them, all pending.
  std::vector<ExistingTouchpoint> Existing(const Rules& rules) {
    const Plan plan = PlanPurchase(rules, {}, purchase_, 0, UtcZone());
    std::vector<ExistingTouchpoint> out;
    for (const PlannedTouchpoint& t : plan.touchpoints) {
      out.push_back(
          {t.id, "trust", TouchpointState::kPending, t.due_at, t.next_at, 100 + out.size()});
    }
    return out;
  }

  PurchaseReplan Replan(const Rules& rules, const std::vector<ExistingTouchpoint>& existing,
                        std::span<const PastPurchase> others = {}, int product = 0) {
    return ReplanPurchase(rules, others, purchase_, product, UtcZone(), existing, now_);
  }

  static const ReplanChange* Find(const PurchaseReplan& r, const std::string& id) {
    for (const ReplanChange& c : r.changes) {
      if (c.touchpoint.id == id) return &c;
    }
    return nullptr;
  }

  Purchase purchase_{"o1", "lin", "daily", 1, 20, At("2026-11-01T10:00:00Z"), ""};
  Instant now_ = At("2026-11-05T10:00:00Z");  // day 4 of the journey
};

TEST_F(ReplanTest, FinalTouchpointsAreNeverTouched) {
  auto before = Load("      - {after: 1d, topic: a}\n      - {after: 7d, topic: b}\n");
  auto existing = Existing(*before);
  existing[0].state = TouchpointState::kFired;
  // `a` moves to day 5 (still ahead): it fired, so it stays fired.
  auto after = Load("      - {after: 5d, topic: a}\n      - {after: 7d, topic: b}\n");
  const PurchaseReplan r = Replan(*after, existing);
  EXPECT_EQ(Find(r, existing[0].id), nullptr);
  ASSERT_NE(Find(r, existing[1].id), nullptr);
  EXPECT_EQ(Find(r, existing[1].id)->kind, ReplanChange::Kind::kUpdate);
  EXPECT_EQ(Find(r, existing[1].id)->handle, existing[1].handle);
}

TEST_F(ReplanTest, AnUnchangedDueTimeKeepsItsDeferral) {
  auto rules = Load("      - {after: 7d, topic: b}\n");
  auto existing = Existing(*rules);
  existing[0].next_at = existing[0].due_at + std::chrono::hours(20);  // deferred by the cap
  const PurchaseReplan r = Replan(*rules, existing);
  ASSERT_EQ(r.changes.size(), 1u);
  EXPECT_EQ(r.changes[0].kind, ReplanChange::Kind::kUpdate);
  EXPECT_EQ(r.changes[0].touchpoint.next_at, existing[0].next_at);
}

TEST_F(ReplanTest, AStepMovedIntoThePastFiresAtOnceInsteadOfBeingSkipped) {
  auto before = Load("      - {after: 7d, topic: b}\n");
  auto after = Load("      - {after: 2d, topic: b}\n");  // two days ago now
  const PurchaseReplan r = Replan(*after, Existing(*before));
  ASSERT_EQ(r.changes.size(), 1u);
  EXPECT_EQ(r.changes[0].touchpoint.due_at, At("2026-11-03T10:00:00Z"));
  EXPECT_EQ(r.changes[0].previous_due_at, At("2026-11-08T10:00:00Z"));
  EXPECT_EQ(r.changes[0].touchpoint.next_at, now_);
}

TEST_F(ReplanTest, NewStepsArePlannedOnlyWhileStillWithinReach) {
  auto before = Load("      - {after: 7d, topic: b}\n");
  auto after = Load(
      "      - {after: 1d, topic: long-missed}\n"
      "      - {after: 4d, topic: just-now}\n"  // due at now: within misfire_grace
      "      - {after: 7d, topic: b}\n"
      "      - {after: 10d, topic: ahead}\n");
  const PurchaseReplan r = Replan(*after, Existing(*before));
  EXPECT_EQ(Find(r, TouchpointId("o1", "trust", "long-missed")), nullptr);
  ASSERT_NE(Find(r, TouchpointId("o1", "trust", "just-now")), nullptr);
  EXPECT_EQ(Find(r, TouchpointId("o1", "trust", "just-now"))->kind, ReplanChange::Kind::kAdd);
  EXPECT_EQ(Find(r, TouchpointId("o1", "trust", "just-now"))->handle, 0u);
  ASSERT_NE(Find(r, TouchpointId("o1", "trust", "ahead")), nullptr);
  EXPECT_EQ(Find(r, TouchpointId("o1", "trust", "ahead"))->kind, ReplanChange::Kind::kAdd);
  EXPECT_EQ(Find(r, TouchpointId("o1", "trust", "b"))->kind, ReplanChange::Kind::kUpdate);
}

// A fired step renamed (its topic serving as its id) is not sent again
// under its new id; it stands for one new step only, so a second new step
// at the same time is planned.
TEST_F(ReplanTest, AFiredStepRenamedIsNotAddedAgain) {
  auto before = Load("      - {after: 4d, topic: comfort-check}\n      - {after: 7d, topic: b}\n");
  auto existing = Existing(*before);
  existing[0].state = TouchpointState::kFired;  // due at now: within misfire_grace
  auto after = Load(
      "      - {after: 4d, topic: comfort-checks}\n"
      "      - {after: 7d, topic: b}\n"
      "      - {after: 4d, id: same-time, topic: x}\n");
  PurchaseReplan r = Replan(*after, existing);
  EXPECT_EQ(Find(r, TouchpointId("o1", "trust", "comfort-checks")), nullptr);
  ASSERT_NE(Find(r, TouchpointId("o1", "trust", "same-time")), nullptr);
  EXPECT_EQ(Find(r, TouchpointId("o1", "trust", "same-time"))->kind, ReplanChange::Kind::kAdd);
  EXPECT_EQ(Find(r, existing[0].id), nullptr);  // fired: never touched
  EXPECT_EQ(Find(r, existing[1].id)->kind, ReplanChange::Kind::kUpdate);

  // Dead (a sink gave up; another may have delivered it): as fired.
  existing[0].state = TouchpointState::kDead;
  r = Replan(*after, existing);
  EXPECT_EQ(Find(r, TouchpointId("o1", "trust", "comfort-checks")), nullptr);

  // Not fired (cancelled by an earlier reload, say): the new step is planned.
  existing[0].state = TouchpointState::kCancelled;
  r = Replan(*after, existing);
  ASSERT_NE(Find(r, TouchpointId("o1", "trust", "comfort-checks")), nullptr);
  EXPECT_EQ(Find(r, TouchpointId("o1", "trust", "comfort-checks"))->kind, ReplanChange::Kind::kAdd);
}

// A fired step whose id is kept while it moves: the other new step at its
// old time is still planned (the buyer's message at that time is still in
// the plan, under its own id).
TEST_F(ReplanTest, ANewStepAtAFiredStepsTimeIsPlannedWhileThatStepStays) {
  auto before = Load("      - {after: 4d, topic: a}\n      - {after: 7d, topic: b}\n");
  auto existing = Existing(*before);
  existing[0].state = TouchpointState::kFired;
  auto after = Load(
      "      - {after: 4d, topic: a}\n      - {after: 4d, topic: also}\n"
      "      - {after: 7d, topic: b}\n");
  const PurchaseReplan r = Replan(*after, existing);
  ASSERT_NE(Find(r, TouchpointId("o1", "trust", "also")), nullptr);
  EXPECT_EQ(Find(r, TouchpointId("o1", "trust", "also"))->kind, ReplanChange::Kind::kAdd);
}

TEST_F(ReplanTest, RemovedStepsAndProductsAreCancelledBecauseRulesChanged) {
  auto before = Load("      - {after: 7d, topic: b}\n      - {after: 9d, topic: c}\n");
  auto existing = Existing(*before);
  auto after = Load("      - {after: 7d, topic: b}\n");
  PurchaseReplan r = Replan(*after, existing);
  ASSERT_NE(Find(r, existing[1].id), nullptr);
  EXPECT_EQ(Find(r, existing[1].id)->kind, ReplanChange::Kind::kCancel);
  EXPECT_EQ(Find(r, existing[1].id)->reason, "rules changed");
  EXPECT_EQ(Find(r, existing[1].id)->cadence, "trust");
  EXPECT_EQ(Find(r, existing[1].id)->handle, existing[1].handle);

  r = Replan(*after, existing, {}, -1);  // the product is gone from the rules
  ASSERT_EQ(r.changes.size(), 2u);
  for (const ReplanChange& c : r.changes) {
    EXPECT_EQ(c.kind, ReplanChange::Kind::kCancel);
    EXPECT_EQ(c.reason, "rules changed: product 'daily' is no longer in the rules");
  }
}

TEST_F(ReplanTest, AStepTheNewRulesCancelAtBirthIsCancelled) {
  // A later purchase exists: under cancel_on_repurchase, steps due after it
  // would have been cancelled by it.
  auto rules = Load("      - {after: 7d, topic: b}\n");
  const std::vector<PastPurchase> later = {{At("2026-11-04T10:00:00Z"), 0, 20}};
  const PurchaseReplan r = Replan(*rules, Existing(*rules), later);
  ASSERT_EQ(r.changes.size(), 1u);
  EXPECT_EQ(r.changes[0].kind, ReplanChange::Kind::kCancel);
  EXPECT_THAT(r.changes[0].reason, ::testing::StartsWith("rules changed: "));
}

// The buyer replied on day 2, which stops the cadence: a step the new
// rules add to it (day 5, still ahead) would have been cancelled by the
// reply, so it is not planned; without the reply, it is.
TEST_F(ReplanTest, AStepAddedToACadenceTheBuyersAnswerStoppedIsNotPlanned) {
  const auto stopped = [&](std::string_view steps) {
    std::string yaml = std::string(kReplanBase) + std::string(steps);
    const std::string at = "    cancel_on_repurchase: true\n";
    yaml.replace(yaml.find(at), at.size(), at + "    stop_on: [replied]\n");
    return testing::MustLoad(yaml);
  };
  auto before = stopped("      - {after: 1d, topic: a}\n      - {after: 7d, topic: b}\n");
  auto existing = Existing(*before);
  existing[0].state = TouchpointState::kFired;
  existing[1].state = TouchpointState::kCancelled;  // by the reply
  auto after = stopped(
      "      - {after: 1d, topic: a}\n      - {after: 5d, topic: m}\n"
      "      - {after: 7d, topic: b}\n");
  const std::string added = TouchpointId("o1", "trust", "m");
  const std::vector<BuyerEvent> replied = {
      {At("2026-11-03T08:00:00Z"), after->EngagementTypeIndex("replied")}};
  const PurchaseReplan r =
      ReplanPurchase(*after, {}, purchase_, 0, UtcZone(), existing, now_, replied);
  EXPECT_EQ(Find(r, added), nullptr);
  const PurchaseReplan unanswered = Replan(*after, existing);
  ASSERT_NE(Find(unanswered, added), nullptr);
  EXPECT_EQ(Find(unanswered, added)->kind, ReplanChange::Kind::kAdd);
}

TEST_F(ReplanTest, SamePlanningIgnoresSinksLoggingAndAuth) {
  auto a = Load("      - {after: 7d, topic: b}\n");
  auto b = testing::MustLoad("log: {level: debug}\n" + std::string(kReplanBase) +
                             "      - {after: 7d, topic: b}\n");
  EXPECT_TRUE(SamePlanning(*a, *b));
  EXPECT_FALSE(SamePlanning(*a, *Load("      - {after: 8d, topic: b}\n")));
  EXPECT_FALSE(SamePlanning(*a, *Load("      - {after: 7d, topic: c}\n")));
}

// A reload that changes a tier's conditions re-plans: the purchase's tier
// is decided again, its old tier's pending steps cancelled and the new
// one's still ahead added. Caps and a step's sinks are read as touchpoints
// come due: changing them re-plans nothing.
TEST_F(ReplanTest, ATierConditionChangeReplansAndCapsOrSinksDoNot) {
  constexpr std::string_view kSteps = R"(      - {after: 7d, topic: beginner, tiers: [novice]}
      - {after: 7d, topic: regular, tiers: [regular]}
)";
  auto tiers = [&](std::string_view regular) {
    return testing::MustLoad(
        std::string(kReplanBase)
            .replace(std::string(kReplanBase).find("cadences:"), 0,
                     "tiers:\n  - " + std::string(regular) + "\n  - {name: novice}\n") +
        std::string(kSteps));
  };
  // Two purchases in 30 days: a regular under `within: 30d`, not under 3d.
  const std::vector<PastPurchase> earlier = {{At("2026-10-20T10:00:00Z"), 0, 20}};
  auto before = tiers("{name: regular, min_purchases: 2, within: 30d}");
  const Plan plan = PlanPurchase(*before, earlier, purchase_, 0, UtcZone());
  ASSERT_EQ(before->tiers[static_cast<std::size_t>(plan.tier)].name, "regular");
  std::vector<ExistingTouchpoint> existing;
  for (const PlannedTouchpoint& t : plan.touchpoints) {
    existing.push_back({t.id, "trust", TouchpointState::kPending, t.due_at, t.next_at, 7});
  }
  ASSERT_EQ(existing.size(), 1u);

  auto after = tiers("{name: regular, min_purchases: 2, within: 3d}");
  EXPECT_FALSE(SamePlanning(*before, *after));
  const PurchaseReplan r = Replan(*after, existing, earlier);
  EXPECT_EQ(after->tiers[static_cast<std::size_t>(r.tier)].name, "novice");
  ASSERT_EQ(r.changes.size(), 2u);
  EXPECT_EQ(r.changes[0].kind, ReplanChange::Kind::kAdd);  // beginner, day 7: ahead
  EXPECT_EQ(r.changes[1].kind, ReplanChange::Kind::kCancel);
  EXPECT_EQ(r.changes[1].handle, 7u);
  EXPECT_FALSE(SamePlanning(*before, *tiers("{name: regular, bought: [yearly]}")));
  EXPECT_FALSE(SamePlanning(*before, *tiers("{name: regular, attributes: {a: b}}")));
  // Sets: their order is no change.
  EXPECT_TRUE(SamePlanning(*tiers("{name: regular, bought: [daily, yearly], attributes: {a: [x, "
                                  "y], b: z}}"),
                           *tiers("{name: regular, bought: [yearly, daily], attributes: {b: z, a: "
                                  "[y, x]}}")));

  auto capped =
      testing::MustLoad("frequency_cap: [{max: 1, per: month, sinks: [outbox]}]\n" +
                        std::string(kReplanBase)
                            .replace(std::string(kReplanBase).find("cadences:"), 0,
                                     "tiers:\n  - {name: regular, min_purchases: 2, within: "
                                     "30d}\n  - {name: novice}\n") +
                        std::string(kSteps));
  EXPECT_TRUE(SamePlanning(*before, *capped));
}

}  // namespace
}  // namespace tp
