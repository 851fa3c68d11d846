// The re-plan in steps (store/replan_rows.h, ReplanSome): the same outcome
// as in one go, in firing order, and resumed from the file after an
// interruption.
#include <SQLiteCpp/SQLiteCpp.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "harness.h"
#include "planner/replan.h"
#include "scheduler/scheduler.h"
#include "store/sqlite_store.h"
#include "temp_dir.h"

namespace tp {
namespace {

using testing::At;

// The brief's rules, and the same with the last trust step a day later and
// a new one-week step.
std::shared_ptr<const Rules> Before() { return testing::MustLoad(testing::kBriefConfig); }
std::shared_ptr<const Rules> After() {
  std::string yaml(testing::kBriefConfig);
  yaml.replace(yaml.find("{after: 21d, topic: style-ideas}"), 32,
               "{after: 22d, topic: style-ideas}\n      - {after: 14d, topic: two-weeks}");
  return testing::MustLoad(yaml);
}

// Every touchpoint of every buyer: id, state, due and next times.
std::string Snapshot(SqliteStore& store, int buyers) {
  std::string out;
  for (int b = 0; b < buyers; ++b) {
    auto report = store.GetBuyer("b" + std::to_string(b));
    if (!report.ok() || !report->has_value()) continue;
    for (const TouchpointRecord& t : (*report)->touchpoints) {
      out += t.id + " " + std::string(StateName(t.state)) + " " +
             FormatRfc3339(t.due_at, UtcZone()) + " " + FormatRfc3339(t.next_at, UtcZone()) + " " +
             t.tier + "\n";
    }
  }
  return out;
}

class ReplanStepsTest : public ::testing::Test {
 protected:
  static constexpr int kBuyers = 40;

  // A database at `name` with kBuyers buyers, each with a purchase or two
  // made over the last days, planned by Before() (which must be in force).
  std::unique_ptr<SqliteStore> Filled(const std::string& name) {
    auto store = SqliteStore::Open(dir_.path() + "/" + name, rules_);
    EXPECT_TRUE(store.ok()) << store.status().message();
    FakeClock clock(At("2026-11-01T10:00:00+08:00"));
    Scheduler scheduler(**store, clock, rules_);
    for (int b = 0; b < kBuyers; ++b) {
      const std::string buyer = "b" + std::to_string(b);
      // Two buyers at each instant: the sweep's place is between buyers.
      const int pair = b / 2;
      const Instant at =
          clock_.Now() - std::chrono::hours(24 * (pair % 9)) - std::chrono::hours(pair);
      EXPECT_TRUE(scheduler.Ingest({"o" + buyer, buyer, "daily", 2, 240, at, ""}).ok());
      if (b % 3 == 0) {
        EXPECT_TRUE(
            scheduler
                .Ingest({"p" + buyer, buyer, "yearly", 1, 900, at + std::chrono::hours(30), ""})
                .ok());
      }
    }
    EXPECT_TRUE((*store)->SetPlanning(PlanningFingerprint(*Before()), false).ok());
    return std::move(*store);
  }

  // Steps until done, each with `deadline` budget; the number of steps.
  int ReplanToEnd(SqliteStore& store, std::chrono::milliseconds budget) {
    const std::string fingerprint = PlanningFingerprint(*rules_);
    int steps = 0;
    for (; steps < 10'000; ++steps) {
      auto step = store.ReplanSome(ReplanPurchase, fingerprint,
                                   std::chrono::steady_clock::now() + budget, clock_.Now());
      EXPECT_TRUE(step.ok()) << step.status().message();
      if (!step.ok() || step->done) break;
    }
    return steps + 1;
  }

  // After(): what a reload does to the rules every store here reads.
  void Reload() { rules_.Swap(After()); }

  void InterruptAndResume(bool without_buyer);

  testing::TempDir dir_;
  RulesInForce rules_{Before()};
  FakeClock clock_{At("2026-11-10T10:00:00+08:00")};
};

TEST_F(ReplanStepsTest, StepByStepIsTheSameAsInOneGo) {
  auto a = Filled("a.db");
  auto b = Filled("b.db");
  Reload();
  for (SqliteStore* s : {a.get(), b.get()}) {
    ASSERT_TRUE(s->SetPlanning(PlanningFingerprint(*After()), true).ok());
  }
  EXPECT_EQ(ReplanToEnd(*a, std::chrono::hours(1)), 1);
  EXPECT_GT(ReplanToEnd(*b, std::chrono::milliseconds(0)), kBuyers / 2);  // a buyer a step
  const std::string snapshot = Snapshot(*a, kBuyers);
  EXPECT_THAT(snapshot, ::testing::HasSubstr("2026-11"));
  EXPECT_EQ(Snapshot(*b, kBuyers), snapshot);
  EXPECT_FALSE(a->Planning()->replanning);
  EXPECT_EQ(a->Planning()->fingerprint, PlanningFingerprint(*After()));
}

TEST_F(ReplanStepsTest, TheSweepGoesInFiringOrder) {
  auto store = Filled("a.db");
  auto first_due = store->NextWakeup();
  ASSERT_TRUE(first_due.ok() && first_due->has_value());
  Reload();
  ASSERT_TRUE(store->SetPlanning(PlanningFingerprint(*After()), true).ok());
  auto step = store->ReplanSome(ReplanPurchase, PlanningFingerprint(*rules_),
                                std::chrono::steady_clock::now(), clock_.Now());
  ASSERT_TRUE(step.ok());
  EXPECT_EQ(step->buyers, 1);
  EXPECT_FALSE(step->done);
  // It started with the touchpoint that fires first, and covers only that.
  EXPECT_EQ(step->covered, **first_due);
  Instant covered = step->covered;
  for (int i = 0; i < 5; ++i) {
    step = store->ReplanSome(ReplanPurchase, PlanningFingerprint(*rules_),
                             std::chrono::steady_clock::now(), clock_.Now());
    ASSERT_TRUE(step.ok());
    EXPECT_GE(step->covered, covered);
    covered = step->covered;
  }
}

// A step by other rules than those the re-plan under way is to (asked for
// before a reload recorded it) writes nothing and says so.
TEST_F(ReplanStepsTest, AStepByOtherRulesThanTheReplansWritesNothing) {
  auto store = Filled("a.db");
  const std::string before = PlanningFingerprint(*rules_);
  Reload();
  ASSERT_TRUE(store->SetPlanning(PlanningFingerprint(*rules_), true).ok());
  auto step =
      store->ReplanSome(ReplanPurchase, before, std::chrono::steady_clock::now(), clock_.Now());
  ASSERT_TRUE(step.ok());
  EXPECT_TRUE(step->superseded);
  EXPECT_TRUE(step->done);
  EXPECT_EQ(step->buyers, 0);
  EXPECT_TRUE(store->Planning()->replanning);
  step = store->ReplanSome(ReplanPurchase, PlanningFingerprint(*rules_),
                           std::chrono::steady_clock::now(), clock_.Now());
  ASSERT_TRUE(step.ok());
  EXPECT_FALSE(step->superseded);
  EXPECT_EQ(step->buyers, 1);
}

// A re-plan interrupted after a few steps (as a crash leaves it) and
// resumed from the file; `without_buyer`: its place as a build before
// schema 12 saved it, without a buyer.
void ReplanStepsTest::InterruptAndResume(bool without_buyer) {
  {
    auto reference = Filled("reference.db");
    Reload();
    ASSERT_TRUE(reference->SetPlanning(PlanningFingerprint(*After()), true).ok());
    ReplanToEnd(*reference, std::chrono::hours(1));
  }
  Instant covered;
  {
    rules_.Swap(Before());
    auto store = Filled("a.db");
    Reload();
    ASSERT_TRUE(store->SetPlanning(PlanningFingerprint(*After()), true).ok());
    for (int i = 0; i < 7; ++i) {
      auto step = store->ReplanSome(ReplanPurchase, PlanningFingerprint(*rules_),
                                    std::chrono::steady_clock::now(), clock_.Now());
      ASSERT_TRUE(step.ok());
      covered = step->covered;
    }
  }  // as a crash would leave it: the steps so far committed, the rest not done
  if (without_buyer) {
    SQLite::Database db(dir_.path() + "/a.db", SQLite::OPEN_READWRITE);
    ASSERT_EQ(db.exec("UPDATE planning SET buyer = NULL WHERE buyer IS NOT NULL"), 1);
  }
  auto store = SqliteStore::Open(dir_.path() + "/a.db", rules_);
  ASSERT_TRUE(store.ok());
  auto state = (*store)->Planning();
  ASSERT_TRUE(state.ok());
  EXPECT_TRUE(state->replanning);
  EXPECT_EQ(state->fingerprint, PlanningFingerprint(*After()));
  // It goes on from there, not from the start (the buyers it did before
  // are done again when their later touchpoints come: that changes nothing;
  // without a buyer, from the first touchpoint due at that instant).
  auto step = (*store)->ReplanSome(ReplanPurchase, PlanningFingerprint(*rules_),
                                   std::chrono::steady_clock::now(), clock_.Now());
  ASSERT_TRUE(step.ok());
  EXPECT_GE(step->covered, covered);
  ReplanToEnd(**store, std::chrono::milliseconds(0));
  auto reference = SqliteStore::Open(dir_.path() + "/reference.db", rules_);
  ASSERT_TRUE(reference.ok());
  EXPECT_EQ(Snapshot(**store, kBuyers), Snapshot(**reference, kBuyers));
}

TEST_F(ReplanStepsTest, AnInterruptedReplanResumesWhereTheFileSaysItWas) {
  InterruptAndResume(false);
}

TEST_F(ReplanStepsTest, AReplansPlaceSavedWithoutABuyerIsResumedFromItsInstant) {
  InterruptAndResume(true);
}

// Buyers whose one touchpoint each falls due at one instant, in a cadence
// far down the rules (its order larger than their row ids), re-planned one
// buyer a step: each is re-planned, whether the sweep's place stays in
// memory between steps or is read back from the file. (A place that
// compared the buyer with the cadence's order, and the other way round,
// passed the instant's later buyers over for good: they have no later
// touchpoint to be re-planned at.)
TEST_F(ReplanStepsTest, EachBuyerOfOneInstantIsReplannedOneAStep) {
  const auto rules = [](const std::string& topic) {
    std::string yaml =
        "version: 1\ntimezone: UTC\nproducts: {p: {supply_days: 30}, q: "
        "{supply_days: 30}}\ncadences:\n";
    for (int c = 0; c < 4; ++c) {
      yaml += "  - {name: c" + std::to_string(c) +
              ", products: [q], steps: [{after: 1d, topic: other}]}\n";
    }
    return testing::MustLoad(yaml + "  - {name: c4, products: [p], steps: [{after: 1d, topic: " +
                             topic + "}]}\nsinks: [{name: outbox, type: queue}]\n");
  };
  constexpr int kAtOnce = 6;
  for (const bool from_file : {false, true}) {
    SCOPED_TRACE(from_file ? "the place read back from the file" : "the place kept in memory");
    const std::string path = dir_.path() + (from_file ? "/file.db" : "/memory.db");
    rules_.Swap(rules("before"));
    auto store = SqliteStore::Open(path, rules_);
    ASSERT_TRUE(store.ok()) << store.status().message();
    {
      Scheduler scheduler(**store, clock_, rules_);
      for (int b = 0; b < kAtOnce; ++b) {
        const std::string buyer = "b" + std::to_string(b);
        ASSERT_TRUE(scheduler.Ingest({"o" + buyer, buyer, "p", 1, 10, clock_.Now(), ""}).ok());
      }
    }
    ASSERT_TRUE((*store)->SetPlanning(PlanningFingerprint(*rules_), false).ok());
    rules_.Swap(rules("after"));
    const std::string fingerprint = PlanningFingerprint(*rules_);
    ASSERT_TRUE((*store)->SetPlanning(fingerprint, true).ok());
    int steps = 0;
    std::int64_t replanned = 0;
    for (bool done = false; !done && steps < 100; ++steps) {
      if (from_file) {
        store->reset();
        store = SqliteStore::Open(path, rules_);
        ASSERT_TRUE(store.ok()) << store.status().message();
        ASSERT_TRUE((*store)->Planning().ok());
      }
      auto step = (*store)->ReplanSome(ReplanPurchase, fingerprint,
                                       std::chrono::steady_clock::now(), clock_.Now());
      ASSERT_TRUE(step.ok()) << step.status().message();
      done = step->done;
      EXPECT_LE(step->buyers, 1) << "step " << steps;
      replanned += step->buyers;
    }
    // (Read back from the file, the sweep no longer knows whom it did: a
    // buyer's new touchpoint, later in the order, has it re-planned again.)
    if (from_file) {
      EXPECT_GE(replanned, kAtOnce);
    } else {
      EXPECT_EQ(replanned, kAtOnce);
    }
    for (int b = 0; b < kAtOnce; ++b) {
      auto report = (*store)->GetBuyer("b" + std::to_string(b));
      ASSERT_TRUE(report.ok() && report->has_value()) << b;
      int pending = 0;
      for (const TouchpointRecord& t : (*report)->touchpoints) {
        if (t.state != TouchpointState::kPending) continue;
        ++pending;
        EXPECT_EQ(t.topic, "after") << "buyer b" << b;
      }
      EXPECT_EQ(pending, 1) << "buyer b" << b;
    }
  }
}

TEST_F(ReplanStepsTest, TheFingerprintFollowsWhatPlanningReads) {
  auto before = Before();
  EXPECT_EQ(PlanningFingerprint(*before), PlanningFingerprint(*Before()));
  EXPECT_NE(PlanningFingerprint(*before), PlanningFingerprint(*After()));
  std::string sinks_only(testing::kBriefConfig);
  sinks_only += "  - {name: other, type: queue}\n";
  EXPECT_EQ(PlanningFingerprint(*before), PlanningFingerprint(*testing::MustLoad(sinks_only)));
  std::string window(testing::kBriefConfig);
  window.replace(window.find("\"21:00\""), 7, "\"20:00\"");
  EXPECT_NE(PlanningFingerprint(*before), PlanningFingerprint(*testing::MustLoad(window)));
}

}  // namespace
}  // namespace tp
