// Re-plans in the PostgreSQL store, where daemons share one sweep: a step
// never waits for a buyer's turn while holding others, nor long for a lock
// held elsewhere, nor for another daemon's step; a daemon's reload starts
// the sweep again for every daemon stepping through it, and waits for the
// step under way.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "harness.h"
#include "planner/replan.h"
#include "scheduler/scheduler.h"
#include "store/pg_store.h"
#include "store/pg_store_fixture.h"
#include "store/values.h"

namespace tp {
namespace {

using testing::At;
using testing::kConfig;
using testing::MustLoad;
using testing::PgStoreTest;

// A re-plan step waits for the turns of its first rows' buyers only; those
// of later rows it takes only if they are free. Else a step holding the
// earlier buyers' turns would wait for a group that holds a later buyer
// and then asks for an earlier one: a deadlock. It ends before the busy
// buyer instead, holding nothing, and the next step goes on from there.
TEST_F(PgStoreTest, AReplanStepNeverWaitsForATurnWhileHoldingOthers) {
  auto store = MustOpen(), ingest = MustOpen();
  const Instant at = At("2026-12-04T10:00:00Z");
  Buy(*store, 64, at);  // 128 rows: the step's first read
  {
    FakeClock later(at + std::chrono::minutes(1));
    Scheduler scheduler(*store, later, rules_);
    ASSERT_TRUE(scheduler.Ingest({"oy", "y", "p", 1, 1, later.Now(), ""}).ok());
  }
  ASSERT_TRUE(store->SetPlanning(PlanningFingerprint(*rules_), true).ok());
  const std::vector<std::string> y = {"y"}, b0 = {"b0"};
  ASSERT_TRUE(ingest->Begin().ok());
  ASSERT_TRUE(ingest->TakeBuyersTurns(y).ok());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  auto step = store->ReplanSome(ReplanPurchase, PlanningFingerprint(*rules_), deadline, at);
  ASSERT_TRUE(step.ok()) << step.status().message();
  EXPECT_FALSE(step->done);
  EXPECT_EQ(step->buyers, 64);
  // The step holds nothing now: the group takes an earlier buyer's turn.
  ASSERT_TRUE(ingest->TakeBuyersTurns(b0).ok());
  ASSERT_TRUE(ingest->Commit().ok());
  step = store->ReplanSome(ReplanPurchase, PlanningFingerprint(*rules_), deadline, at);
  ASSERT_TRUE(step.ok()) << step.status().message();
  EXPECT_TRUE(step->done);
  EXPECT_EQ(step->buyers, 1);
}

// A step runs on the daemon's loop: a lock another session holds for
// longer than a moment (a buyer's turn an ingest group holds, a row a
// firing claim holds) ends it there, having written what it had, rather
// than waiting up to lock_timeout (5 s) and failing.
TEST_F(PgStoreTest, AReplanStepEndsAtALockHeldElsewhere) {
  RulesInForce later(MustLoad(std::string(kConfig).replace(std::string(kConfig).find("1h"), 2,
                                                           "3h")));  // the first step moves
  auto store = PgStore::Open(db_->url(), later);
  ASSERT_TRUE(store.ok()) << store.status().message();
  PgStore& replanning = **store;
  auto other = MustOpen();
  const Instant at = At("2026-12-04T10:00:00Z");
  Buy(*other, 64, at);
  ASSERT_TRUE(replanning.SetPlanning(PlanningFingerprint(*later), true).ok());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  const auto timed_step = [&] {
    const auto began = std::chrono::steady_clock::now();
    auto step = replanning.ReplanSome(ReplanPurchase, PlanningFingerprint(*later), deadline, at);
    EXPECT_LT(std::chrono::steady_clock::now() - began, std::chrono::seconds(2));
    return step;
  };

  // A group holds b0's turn, the first row's buyer.
  const std::vector<std::string> b0 = {"b0"};
  ASSERT_TRUE(other->Begin().ok());
  ASSERT_TRUE(other->TakeBuyersTurns(b0).ok());
  auto step = timed_step();
  ASSERT_TRUE(step.ok()) << step.status().message();
  EXPECT_TRUE(step->busy);
  EXPECT_FALSE(step->done);
  EXPECT_EQ(step->buyers, 0);
  ASSERT_TRUE(other->Commit().ok());

  // A firing claim holds the rows of b0..b4 (both steps due at 11:00).
  auto claimed = other->TakeDue(at + std::chrono::hours(1), 10);
  ASSERT_TRUE(claimed.ok()) << claimed.status().message();
  ASSERT_EQ(claimed->size(), 10u);
  step = timed_step();
  ASSERT_TRUE(step.ok()) << step.status().message();
  EXPECT_TRUE(step->busy);
  EXPECT_EQ(step->buyers, 0);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM touchpoints WHERE due_at = " +
                  std::to_string(sql::Ms(at + std::chrono::hours(3)))),
            0);  // nothing written
  ASSERT_TRUE(other
                  ->ApplyOutcomes(*claimed, std::vector<FiringOutcome>(
                                                10, {FiringOutcome::Kind::kFired, at, {}}))
                  .ok());
  do {
    step = timed_step();
    ASSERT_TRUE(step.ok()) << step.status().message();
  } while (!step->done);
  // The 59 first steps still pending moved.
  EXPECT_EQ(Count("SELECT COUNT(*) FROM touchpoints WHERE state = 0 AND due_at = " +
                  std::to_string(sql::Ms(at + std::chrono::hours(3)))),
            59);
}

// A buyer held for longer (a large group) keeps a step from its first
// read: the next steps' first reads are halved until they end before that
// buyer (and doubled after one that goes through), and the sweep goes on
// up to it.
TEST_F(PgStoreTest, AReplanStepsFirstReadShrinksPastAHeldBuyer) {
  auto store = MustOpen(), ingest = MustOpen();
  const Instant at = At("2026-12-04T10:00:00Z");
  Buy(*store, 64, at);
  ASSERT_TRUE(store->SetPlanning(PlanningFingerprint(*rules_), true).ok());
  const std::vector<std::string> b5 = {"b5"};  // the 11th and 12th rows
  ASSERT_TRUE(ingest->Begin().ok());
  ASSERT_TRUE(ingest->TakeBuyersTurns(b5).ok());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  std::vector<std::int64_t> buyers;
  for (int i = 0; i < 10; ++i) {
    auto step = store->ReplanSome(ReplanPurchase, PlanningFingerprint(*rules_), deadline, at);
    ASSERT_TRUE(step.ok()) << step.status().message();
    EXPECT_TRUE(step->busy);
    buyers.push_back(step->buyers);
  }
  // 128, 64, 32 and 16 rows reach b5; 8 do not (b0..b3); then 16, 8 and 4
  // rows from b4 do, 2 do not (b4); then 4 from b5 do.
  EXPECT_THAT(buyers, ::testing::ElementsAre(0, 0, 0, 0, 4, 0, 0, 0, 1, 0));
  ASSERT_TRUE(ingest->Commit().ok());
  auto step = store->ReplanSome(ReplanPurchase, PlanningFingerprint(*rules_), deadline, at);
  ASSERT_TRUE(step.ok()) << step.status().message();
  EXPECT_FALSE(step->busy);
  EXPECT_TRUE(step->done);
  EXPECT_EQ(step->buyers, 59);
}

// Another daemon's step under way: this daemon's step does not wait for
// it; it says how far the steps committed before it went, for firing.
TEST_F(PgStoreTest, AReplanStepDoesNotWaitForAnotherDaemonsStep) {
  auto store = MustOpen();
  Buy(*store, 4, At("2026-12-04T10:00:00Z"));
  ASSERT_TRUE(store->SetPlanning(PlanningFingerprint(*rules_), true).ok());
  auto conn = pg::Connection::Open(db_->url(), "test");
  conn->Exec(
      "UPDATE planning SET next_at = " + std::to_string(sql::Ms(At("2026-12-04T10:30:00Z"))) +
      ", due_at = 0, cadence_order = 0, step_order = 0, touchpoint = 0");
  conn->Exec("BEGIN");
  conn->Exec("SELECT pg_advisory_xact_lock(7305861230004)");  // a step under way
  auto step = store->ReplanSome(ReplanPurchase, PlanningFingerprint(*rules_),
                                std::chrono::steady_clock::now() + std::chrono::seconds(30),
                                At("2026-12-04T10:00:00Z"));
  ASSERT_TRUE(step.ok()) << step.status().message();
  EXPECT_TRUE(step->busy);
  EXPECT_EQ(step->buyers, 0);
  EXPECT_EQ(step->covered, At("2026-12-04T10:30:00Z"));
  conn->Exec("COMMIT");
  step = store->ReplanSome(ReplanPurchase, PlanningFingerprint(*rules_),
                           std::chrono::steady_clock::now() + std::chrono::seconds(30),
                           At("2026-12-04T10:00:00Z"));
  ASSERT_TRUE(step.ok()) << step.status().message();
  EXPECT_TRUE(step->done);
}

// A sweep's place saved before schema 9 (no buyer, and a place in the
// older order, here past b0's and b1's first rows and b2's first and
// second): the sweep goes through that instant's rows again, from the
// first, so it passes over no buyer.
TEST_F(PgStoreTest, AReplansPlaceSavedBeforeSchema9GoesThroughItsInstantAgain) {
  auto store = MustOpen();
  const Instant at = At("2026-12-04T10:00:00Z");
  Buy(*store, 4, at);
  ASSERT_TRUE(store->SetPlanning(PlanningFingerprint(*rules_), true).ok());
  auto conn = pg::Connection::Open(db_->url(), "test");
  const std::string due = std::to_string(sql::Ms(at + std::chrono::hours(1)));
  conn->Exec("UPDATE planning SET next_at = " + due + ", due_at = " + due +
             ", buyer = NULL, (cadence_order, step_order, touchpoint) = (SELECT t.cadence_order, "
             "t.step_order, t.id FROM touchpoints t JOIN buyers b ON b.id = t.buyer WHERE "
             "b.buyer_id = 'b2' AND t.step = 'second')");
  auto step = store->ReplanSome(ReplanPurchase, PlanningFingerprint(*rules_),
                                std::chrono::steady_clock::now() + std::chrono::seconds(30), at);
  ASSERT_TRUE(step.ok()) << step.status().message();
  EXPECT_TRUE(step->done);
  EXPECT_EQ(step->buyers, 4);
}

// The fixture's rules with a third step.
std::string WithAThirdStep() {
  return std::string(kConfig) + "      - {after: 1h, topic: third}\n";
}

// A step asked for by the rules before a reload, run after the reload
// recorded a re-plan to its rules (the step was on its way to the server,
// or its daemon is not yet reloaded): it writes nothing and says the
// re-plan it was for is superseded. Stepping through the new sweep by the
// old rules would leave the buyers it passed on them.
TEST_F(PgStoreTest, AReplanStepByOtherRulesThanTheRecordedOnesWritesNothing) {
  RulesInForce reloaded(MustLoad(WithAThirdStep()));
  auto store = MustOpen();  // by the old rules
  Buy(*store, 4, At("2026-12-04T10:00:00Z"));
  ASSERT_TRUE(store->SetPlanning(PlanningFingerprint(*rules_), true).ok());
  auto b = PgStore::Open(db_->url(), reloaded);
  ASSERT_TRUE(b.ok()) << b.status().message();
  ASSERT_TRUE((*b)->SetPlanning(PlanningFingerprint(*reloaded), true).ok());  // a reload
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  auto step = store->ReplanSome(ReplanPurchase, PlanningFingerprint(*rules_), deadline,
                                At("2026-12-04T10:00:00Z"));
  ASSERT_TRUE(step.ok()) << step.status().message();
  EXPECT_TRUE(step->superseded);
  EXPECT_TRUE(step->done);
  EXPECT_EQ(step->buyers, 0);
  // Where the reload left the sweep: at the start.
  EXPECT_EQ(Count("SELECT COUNT(*) FROM planning WHERE replanning AND next_at < 0"), 1);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM touchpoints WHERE state = 0"), 8);
  // The step by the reloaded rules goes through: every buyer gets a third.
  step = (*b)->ReplanSome(ReplanPurchase, PlanningFingerprint(*reloaded), deadline,
                          At("2026-12-04T10:00:00Z"));
  ASSERT_TRUE(step.ok()) << step.status().message();
  EXPECT_TRUE(step->done);
  EXPECT_EQ(step->buyers, 4);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM touchpoints WHERE state = 0"), 12);
}

// A daemon not yet reloaded writes a purchase by the old rules for a buyer
// the shared sweep has re-planned; its reload then starts the sweep again.
// The daemon that had re-planned the buyer, stepping on, must not pass it
// over as done: it re-plans it by the new rules like every other buyer.
TEST_F(PgStoreTest, AReloadStartsTheSweepAgainForEveryDaemonSteppingThroughIt) {
  RulesInForce reloaded(MustLoad(WithAThirdStep()));
  const std::string fingerprint = PlanningFingerprint(*reloaded);
  auto stale = MustOpen();  // by the old rules until its reload
  auto b = PgStore::Open(db_->url(), reloaded);
  ASSERT_TRUE(b.ok()) << b.status().message();
  PgStore& sweeping = **b;
  const Instant at = At("2026-12-04T10:00:00Z");
  Buy(*stale, 64, at);  // 128 rows: the first read (128) passes every buyer
  ASSERT_TRUE(sweeping.SetPlanning(fingerprint, true).ok());
  const auto past = std::chrono::steady_clock::now();  // one read a step
  auto step = sweeping.ReplanSome(ReplanPurchase, fingerprint, past, at);
  ASSERT_TRUE(step.ok()) << step.status().message();
  ASSERT_FALSE(step->done);
  EXPECT_EQ(step->buyers, 64);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM touchpoints WHERE state = 0"), 192);
  {
    FakeClock later(at + std::chrono::minutes(1));
    Scheduler by_old_rules(*stale, later, rules_);
    auto out = by_old_rules.Ingest({"again", "b0", "p", 1, 1, later.Now(), ""});
    ASSERT_TRUE(out.ok()) << out.status().message();
    EXPECT_EQ(out->planned, 2);
  }
  ASSERT_TRUE(stale->SetPlanning(fingerprint, true).ok());  // its reload
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  do {
    step = sweeping.ReplanSome(ReplanPurchase, fingerprint, deadline, at);
    ASSERT_TRUE(step.ok()) << step.status().message();
  } while (!step->done);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM touchpoints t JOIN purchases p ON p.id = t.purchase "
                  "WHERE p.order_id = 'again' AND t.state = 0"),
            3);
}

// A reload's record waits for the step under way (which holds the sweep's
// turn until it commits): else that step's commit would write its place
// over the restart's, and the restart would be lost.
TEST_F(PgStoreTest, AReloadWaitsForTheReplanStepUnderWay) {
  auto store = MustOpen();
  auto step_under_way = pg::Connection::Open(db_->url(), "test");
  step_under_way->Exec("BEGIN");
  step_under_way->Exec("SELECT pg_advisory_xact_lock(7305861230004)");
  auto watch = pg::Connection::Open(db_->url(), "test");
  std::atomic<bool> recorded{false};
  std::thread reload([&] {
    EXPECT_TRUE(store->SetPlanning(PlanningFingerprint(*rules_), true).ok());
    recorded = true;
  });
  // Waiting for the lock (at most 500 ms, then the record fails).
  bool waiting = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!waiting && !recorded && std::chrono::steady_clock::now() < deadline) {
    waiting = watch
                  ->Exec(
                      "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'advisory' "
                      "AND datname = current_database() AND application_name LIKE "
                      "'touchpointd%'")
                  .Int64(0, 0) > 0;
    if (!waiting) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_TRUE(waiting);
  EXPECT_FALSE(recorded);
  step_under_way->Exec("COMMIT");
  reload.join();
  EXPECT_TRUE(recorded);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM planning WHERE replanning"), 1);
}

// A daemon on rules other than the recorded ones says so; once none has
// for the time given, one call (of several daemons') starts the sweep to
// the recorded rules again, without waiting for a step under way; a
// record of rules forgets what was said.
TEST_F(PgStoreTest, TheSweepStartsAgainOnceNoDaemonOnOtherRulesIsLeft) {
  auto current = MustOpen(), stale = MustOpen();
  ASSERT_TRUE(current->SetPlanning("new", false).ok());
  ASSERT_TRUE(current->NotePlanningByOtherRules("new").ok());  // the recorded ones: nothing
  auto state = current->Planning();
  ASSERT_TRUE(state.ok()) << state.status().message();
  EXPECT_FALSE(state->other_rules_seen.has_value());

  ASSERT_TRUE(stale->NotePlanningByOtherRules("old").ok());
  state = current->Planning();
  ASSERT_TRUE(state.ok() && state->other_rules_seen.has_value());
  EXPECT_GE(state->other_rules_seen->count(), 0);
  EXPECT_LT(state->other_rules_seen->count(), 5000);
  auto started = current->ReplanOnceOtherRulesGone("new", std::chrono::seconds(5));
  ASSERT_TRUE(started.ok()) << started.status().message();
  EXPECT_FALSE(*started);  // said a moment ago
  started = stale->ReplanOnceOtherRulesGone("old", Millis(0));
  ASSERT_TRUE(started.ok());
  EXPECT_FALSE(*started);  // not the recorded rules

  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  {
    // A step under way: no wait, no start.
    auto step = pg::Connection::Open(db_->url(), "test");
    step->Exec("BEGIN");
    step->Exec("SELECT pg_advisory_xact_lock(7305861230004)");
    const auto began = std::chrono::steady_clock::now();
    started = current->ReplanOnceOtherRulesGone("new", Millis(10));
    EXPECT_LT(std::chrono::steady_clock::now() - began, std::chrono::seconds(1));
    ASSERT_TRUE(started.ok()) << started.status().message();
    EXPECT_FALSE(*started);
    step->Exec("COMMIT");
  }
  auto other = MustOpen();
  started = current->ReplanOnceOtherRulesGone("new", Millis(10));
  ASSERT_TRUE(started.ok()) << started.status().message();
  EXPECT_TRUE(*started);
  started = other->ReplanOnceOtherRulesGone("new", Millis(10));
  ASSERT_TRUE(started.ok());
  EXPECT_FALSE(*started);  // once
  state = current->Planning();
  ASSERT_TRUE(state.ok());
  EXPECT_TRUE(state->replanning);
  EXPECT_EQ(state->fingerprint, "new");
  EXPECT_FALSE(state->other_rules_seen.has_value());

  ASSERT_TRUE(stale->NotePlanningByOtherRules("old").ok());
  ASSERT_TRUE(stale->SetPlanning("old", true).ok());  // a record of rules
  state = current->Planning();
  ASSERT_TRUE(state.ok());
  EXPECT_FALSE(state->other_rules_seen.has_value());
}

// A re-plan that changes a purchase's tier while a firing claim holds one
// of its rows (it fires with the old tier) waits for that claim: the step
// ends busy, and the next one pins the old tier on the row the claim fired.
// Before, the step went through, and the row, committed after the pin,
// showed the new tier.
TEST_F(PgStoreTest, ARowFiringWhileItsPurchasesTierChangesKeepsTheTierItFiredWith) {
  rules_.Swap(MustLoad(testing::kBriefConfig));
  auto store = MustOpen();
  const Instant at = At("2026-11-01T10:00:00+08:00");
  {
    FakeClock clock(at);
    Scheduler scheduler(*store, clock, rules_);
    ASSERT_TRUE(scheduler.Ingest({"o1", "b1", "daily", 2, 240, at, ""}).ok());
  }
  ASSERT_EQ(Count("SELECT COUNT(*) FROM purchases WHERE tier = 'novice'"), 1);
  // A step the tier does not change (how-to-wear, novices' own, would be
  // cancelled, and its cancel would wait for a claim of it anyway).
  const std::int64_t row = Count("SELECT id FROM touchpoints WHERE topic = 'comfort-check'");
  auto claim = pg::Connection::Open(db_->url(), "test");
  claim->Exec("BEGIN");
  claim->Exec("SELECT id FROM touchpoints WHERE id = " + std::to_string(row) +
              " FOR NO KEY UPDATE");

  std::string yaml(testing::kBriefConfig);
  const std::string newbie = "{name: newbie, min_purchases: 2}";
  yaml.replace(yaml.find(newbie), newbie.size(), "{name: newbie, min_purchases: 1}");
  RulesInForce reloaded(MustLoad(yaml));
  auto replanning = PgStore::Open(db_->url(), reloaded);
  ASSERT_TRUE(replanning.ok()) << replanning.status().message();
  const std::string fp = PlanningFingerprint(*reloaded);
  ASSERT_TRUE((*replanning)->SetPlanning(fp, true).ok());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  const Instant now = at + std::chrono::hours(1);
  auto step = (*replanning)->ReplanSome(ReplanPurchase, fp, deadline, now);
  ASSERT_TRUE(step.ok()) << step.status().message();
  EXPECT_TRUE(step->busy);
  EXPECT_EQ(step->buyers, 0);

  // The claim fires the row, with the tier it read.
  claim->Exec("UPDATE touchpoints SET state = 1, fire_at = " + std::to_string(sql::Ms(now)) +
              " WHERE id = " + std::to_string(row));
  claim->Exec("COMMIT");
  step = (*replanning)->ReplanSome(ReplanPurchase, fp, deadline, now);
  ASSERT_TRUE(step.ok()) << step.status().message();
  EXPECT_TRUE(step->done);
  EXPECT_EQ(step->buyers, 1);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM purchases WHERE tier = 'newbie'"), 1);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM touchpoints t JOIN purchases p ON p.id = t.purchase "
                  "WHERE t.id = " +
                  std::to_string(row) + " AND COALESCE(t.tier, p.tier) = 'novice'"),
            1);
}

// A note of other rules holds the planning row until it commits, without
// the re-plan's lock: a step saving its place waits for it rather than
// failing at the step's 50 ms lock wait (a commit to a synchronous standby
// can take longer).
TEST_F(PgStoreTest, AStepSavingItsPlaceWaitsForANoteOfOtherRules) {
  auto store = MustOpen();
  const Instant at = At("2026-12-04T10:00:00Z");
  Buy(*store, 4, at);
  const std::string fp = PlanningFingerprint(*rules_);
  ASSERT_TRUE(store->SetPlanning(fp, true).ok());
  auto note = pg::Connection::Open(db_->url(), "test");
  note->Exec("BEGIN");
  note->Exec("UPDATE planning SET other_rules_at = 0 WHERE id = 1");
  StatusOr<ReplanStep> step = Status::Error("not run");
  std::thread replan([&] {
    step = store->ReplanSome(ReplanPurchase, fp,
                             std::chrono::steady_clock::now() + std::chrono::seconds(30), at);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  note->Exec("COMMIT");
  replan.join();
  ASSERT_TRUE(step.ok()) << step.status().message();
  EXPECT_TRUE(step->done);
  EXPECT_EQ(step->buyers, 4);
}

}  // namespace
}  // namespace tp
