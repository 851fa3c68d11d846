// Retention (store/retention.h).
#include "store/store_test.h"

namespace tp {
namespace {}  // namespace
}  // namespace tp

namespace tp {
namespace {

TEST_F(SqliteStoreTest, RetentionPrunesOnlyFinishedTouchpointsWithNothingLeftToDeliver) {
  auto store = MustOpen();
  FakeClock clock(At("2026-11-01T10:00:00+08:00"));
  Scheduler scheduler(*store, clock, rules_);
  ASSERT_TRUE(scheduler.Ingest({"o1", "b1", "daily", 2, 240, clock.Now(), "", ""}).ok());
  ASSERT_TRUE(scheduler.Ingest({"o2", "b2", "daily", 2, 240, clock.Now(), "", ""}).ok());
  ASSERT_TRUE(scheduler.OptOut("b2").ok());  // six suppressed, due from day 1 to day 30
  clock.Set(At("2026-11-02T10:00:00+08:00"));
  ASSERT_EQ(scheduler.RunDue()->fired, 1u);  // how-to-wear: queued, never acked
  clock.Set(At("2026-11-04T10:00:00+08:00"));
  ASSERT_EQ(scheduler.RunDue()->fired, 1u);  // comfort-check: acked below
  auto leased = store->Lease("outbox", 10, std::chrono::seconds(30), clock.Now());
  ASSERT_EQ(leased->size(), 2u);
  for (const LeasedMessage& m : *leased) {
    if (nlohmann::json::parse(m.event)["data"]["topic"] == "comfort-check") {
      std::vector<std::string> receipts = {m.receipt};
      ASSERT_EQ(*store->Ack("outbox", receipts, clock.Now()), 1);
    }
  }
  const Instant cutoff = At("2026-11-20T00:00:00+08:00");

  // A bounded step: row ids 1 to 3 only (b1's how-to-wear, comfort-check,
  // care-tips): nothing, while b1's purchase has steps pending (a re-plan
  // must find its fired ones: conformance_interfaces_test.cc).
  auto step = store->PruneFinished(cutoff, 0, 3);
  ASSERT_TRUE(step.ok()) << step.status().message();
  EXPECT_EQ(step->deleted, 0);
  EXPECT_FALSE(step->done);
  EXPECT_EQ(step->next, 3);
  step = store->PruneFinished(cutoff, step->next, 1000);
  ASSERT_TRUE(step.ok());
  EXPECT_EQ(step->deleted, 4);  // b2's four suppressed due before the cutoff
  EXPECT_TRUE(step->done);

  // b1 opted out, nothing of its purchase pending: comfort-check and the
  // two suppressed due before the cutoff go; how-to-wear is queued.
  ASSERT_TRUE(scheduler.OptOut("b1").ok());
  step = store->PruneFinished(cutoff, 0, 1000);
  ASSERT_TRUE(step.ok());
  EXPECT_EQ(step->deleted, 3);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM touchpoints WHERE topic = 'how-to-wear'"), 1);

  // Once acked, the next pass (a later cutoff) takes it.
  for (const LeasedMessage& m : *leased) {
    if (nlohmann::json::parse(m.event)["data"]["topic"] == "how-to-wear") {
      std::vector<std::string> receipts = {m.receipt};
      ASSERT_EQ(*store->Ack("outbox", receipts, clock.Now()), 1);
    }
  }
  step = store->PruneFinished(cutoff + std::chrono::hours(1), 0, 1000);
  ASSERT_TRUE(step.ok());
  EXPECT_EQ(step->deleted, 1);
  store.reset();

  EXPECT_EQ(Count("SELECT COUNT(*) FROM touchpoints"), 12 - 8);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM touchpoints WHERE topic = 'comfort-check'"), 0);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM touchpoints WHERE topic = 'how-to-wear'"), 0);
  // The four suppressed due after the cutoff, two each.
  EXPECT_EQ(Count("SELECT COUNT(*) FROM touchpoints WHERE state = 3"), 4);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM touchpoint_history WHERE touchpoint NOT IN "
                  "(SELECT id FROM touchpoints)"),
            0);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM purchases"), 2);
}

// A queue with more messages than one step reads: the steps read it a
// range of ids at a time, pruning nothing until the whole of it is read,
// so that no step holds the daemon's loop long.
TEST_F(SqliteStoreTest, RetentionReadsALongQueueInStepsBeforePruning) {
  auto store = MustOpen();
  FakeClock clock(At("2026-11-01T10:00:00+08:00"));
  Scheduler scheduler(*store, clock, rules_);
  ASSERT_TRUE(scheduler.Ingest({"o1", "b1", "daily", 2, 240, clock.Now(), "", ""}).ok());
  clock.Set(At("2026-11-02T10:00:00+08:00"));
  ASSERT_EQ(scheduler.RunDue()->fired, 1u);  // how-to-wear, queued at message id 1
  // 250,000 messages of a long-gone touchpoint, after it.
  EditByHand(
      "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 250000) "
      "INSERT INTO queue_messages (queue, touchpoint, visible_at, enqueued_at) "
      "SELECT 'outbox', 999999, 0, 0 FROM n");
  ASSERT_TRUE(scheduler.OptOut("b1").ok());  // the five others suppressed
  const Instant cutoff = At("2026-11-20T00:00:00+08:00");
  // 250,001 ids, read 100,000 a step: two steps read, the third reads the
  // rest and prunes.
  for (int i = 0; i < 2; ++i) {
    auto step = store->PruneFinished(cutoff, 0, 1000);
    ASSERT_TRUE(step.ok()) << step.status().message();
    EXPECT_EQ(step->deleted, 0);
    EXPECT_EQ(step->next, 0);
    EXPECT_FALSE(step->done);
  }
  auto step = store->PruneFinished(cutoff, 0, 1000);
  ASSERT_TRUE(step.ok());
  EXPECT_EQ(step->deleted, 3);  // the suppressed due before the cutoff; how-to-wear is queued
  EXPECT_TRUE(step->done);
}

// Ids given and gone (pruned rows, acked messages) cost a pass nothing: a
// step takes the next rows there are, and the queue is read a number of
// messages at a time, not a range of ids.
TEST_F(SqliteStoreTest, ARetentionPassCostsTheRowsThereAreNotTheIdsEverGiven) {
  auto store = MustOpen();
  FakeClock clock(At("2026-11-01T10:00:00+08:00"));
  Scheduler scheduler(*store, clock, rules_);
  ASSERT_TRUE(scheduler.Ingest({"o1", "b1", "daily", 2, 240, clock.Now(), "", ""}).ok());
  // b1's last row again at id 50,000,000, so that b2's come after it; and
  // a message of a long-gone touchpoint there.
  EditByHand(
      "CREATE TEMP TABLE far AS SELECT * FROM touchpoints WHERE id = 6; "
      "UPDATE far SET id = 50000000; "
      "INSERT INTO touchpoints SELECT * FROM far; "
      "INSERT INTO queue_messages (id, queue, touchpoint, visible_at, enqueued_at) "
      "VALUES (50000000, 'outbox', 999999, 0, 0)");
  ASSERT_TRUE(scheduler.Ingest({"o2", "b2", "daily", 2, 240, clock.Now(), "", ""}).ok());
  ASSERT_TRUE(scheduler.OptOut("b2").ok());
  const Instant cutoff = At("2026-11-20T00:00:00+08:00");
  auto step = store->PruneFinished(cutoff, 0, 1000);
  ASSERT_TRUE(step.ok()) << step.status().message();
  EXPECT_TRUE(step->done);          // one step: 13 rows, 1 message
  EXPECT_EQ(step->deleted, 4);      // b2's suppressed due before the cutoff
  EXPECT_GT(step->next, 50000000);  // b2's last row
}

}  // namespace
}  // namespace tp
