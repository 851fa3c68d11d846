// Retention on PostgreSQL (store/pg/reports.h): the same cases as the
// SQLite store's (retention_test.cc). Without an index on the queue's
// touchpoints, a touchpoint still queued is known from a read of the queue
// once a pass, a range of message ids a step.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "harness.h"
#include "pg/connection.h"
#include "pg_server.h"
#include "scheduler/scheduler.h"
#include "store/pg_store.h"

namespace tp {
namespace {

using testing::At;
using testing::PgServer;

class PgRetentionTest : public ::testing::Test {
 protected:
  PgRetentionTest()
      : rules_(testing::MustLoad(testing::kBriefConfig)), db_(PgServer::Shared().NewDatabase()) {}

  void SetUp() override {
    auto opened = PgStore::Open(db_->url(), rules_);
    ASSERT_TRUE(opened.ok()) << opened.status().message();
    store_ = std::move(*opened);
    scheduler_ = std::make_unique<Scheduler>(*store_, clock_, rules_);
  }

  void Buy(const std::string& buyer) {
    ASSERT_TRUE(
        scheduler_->Ingest({"o-" + buyer, buyer, "daily", 2, 240, clock_.Now(), "", ""}).ok());
  }
  // The first two steps fired (how-to-wear on day 1, comfort-check on day
  // 3) into the queue, and leased.
  void FireTheFirstTwoSteps() {
    clock_.Set(At("2026-11-02T10:00:00+08:00"));
    ASSERT_EQ(scheduler_->RunDue()->fired, 1u);
    clock_.Set(At("2026-11-04T10:00:00+08:00"));
    ASSERT_EQ(scheduler_->RunDue()->fired, 1u);
    auto leased = store_->Lease("outbox", 10, std::chrono::seconds(30), clock_.Now());
    ASSERT_TRUE(leased.ok()) << leased.status().message();
    ASSERT_EQ(leased->size(), 2u);
    leased_ = std::move(*leased);
  }
  void Ack(const std::string& topic) {
    for (const LeasedMessage& m : leased_) {
      if (nlohmann::json::parse(m.event)["data"]["topic"] == topic) {
        std::vector<std::string> receipts = {m.receipt};
        ASSERT_EQ(*store_->Ack("outbox", receipts, clock_.Now()), 1);
      }
    }
  }
  std::int64_t Count(const std::string& sql) {
    return pg::Connection::Open(db_->url(), "test")->Exec(sql).Int64(0, 0);
  }

  RulesInForce rules_;
  std::unique_ptr<PgServer::Database> db_;
  std::unique_ptr<PgStore> store_;
  FakeClock clock_{At("2026-11-01T10:00:00+08:00")};
  std::unique_ptr<Scheduler> scheduler_;
  std::vector<LeasedMessage> leased_;
};

TEST_F(PgRetentionTest, PrunesOnlyFinishedTouchpointsWithNothingLeftToDeliver) {
  Buy("b1");
  Buy("b2");
  ASSERT_TRUE(scheduler_->OptOut("b2").ok());  // six suppressed, due from day 1 to day 30
  FireTheFirstTwoSteps();
  Ack("comfort-check");  // how-to-wear stays queued
  const Instant cutoff = At("2026-11-20T00:00:00+08:00");

  // A bounded step: row ids 1 to 3 only (b1's how-to-wear, comfort-check,
  // care-tips): nothing, while b1's purchase has steps pending (a re-plan
  // must find its fired ones: conformance_interfaces_test.cc).
  auto step = store_->PruneFinished(cutoff, 0, 3);
  ASSERT_TRUE(step.ok()) << step.status().message();
  EXPECT_EQ(step->deleted, 0);
  EXPECT_FALSE(step->done);
  EXPECT_EQ(step->next, 3);
  step = store_->PruneFinished(cutoff, step->next, 1000);
  ASSERT_TRUE(step.ok());
  EXPECT_EQ(step->deleted, 4);  // b2's four suppressed due before the cutoff
  EXPECT_TRUE(step->done);

  // b1 opted out, nothing of its purchase pending: comfort-check and the
  // two suppressed due before the cutoff go; how-to-wear is queued.
  ASSERT_TRUE(scheduler_->OptOut("b1").ok());
  step = store_->PruneFinished(cutoff, 0, 1000);
  ASSERT_TRUE(step.ok());
  EXPECT_EQ(step->deleted, 3);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM touchpoints WHERE topic = 'how-to-wear'"), 1);

  // Once acked, the next pass takes it.
  Ack("how-to-wear");
  step = store_->PruneFinished(cutoff + std::chrono::hours(1), 0, 1000);
  ASSERT_TRUE(step.ok());
  EXPECT_EQ(step->deleted, 1);

  EXPECT_EQ(Count("SELECT COUNT(*) FROM touchpoints"), 12 - 8);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM touchpoints WHERE topic IN ('comfort-check', "
                  "'how-to-wear')"),
            0);
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
TEST_F(PgRetentionTest, ALongQueueIsReadInStepsBeforeAnythingIsPruned) {
  Buy("b1");
  FireTheFirstTwoSteps();
  // 250,000 messages of a long-gone touchpoint, after those two.
  Count(
      "WITH m AS (INSERT INTO queue_messages (queue, touchpoint, visible_at, enqueued_at) "
      "SELECT 'outbox', 999999, 0, 0 FROM generate_series(1, 250000) RETURNING 1) "
      "SELECT COUNT(*) FROM m");
  Ack("comfort-check");
  ASSERT_TRUE(scheduler_->OptOut("b1").ok());  // the four others suppressed
  const Instant cutoff = At("2026-11-20T00:00:00+08:00");
  // 250,002 ids, read 100,000 a step: two steps read, the third reads the
  // rest and prunes.
  for (int i = 0; i < 2; ++i) {
    auto step = store_->PruneFinished(cutoff, 0, 1000);
    ASSERT_TRUE(step.ok()) << step.status().message();
    EXPECT_EQ(step->deleted, 0);
    EXPECT_EQ(step->next, 0);
    EXPECT_FALSE(step->done);
  }
  auto step = store_->PruneFinished(cutoff, 0, 1000);
  ASSERT_TRUE(step.ok());
  // comfort-check and the two suppressed due before the cutoff;
  // how-to-wear is still queued.
  EXPECT_EQ(step->deleted, 3);
  EXPECT_TRUE(step->done);
}

// Ids given and gone (pruned rows, acked messages, a sequence's numbers
// cached by a server process that ended) cost a pass nothing: a step takes
// the next rows there are, and the queue is read a number of messages at a
// time, not a range of ids.
TEST_F(PgRetentionTest, APassCostsTheRowsThereAreNotTheIdsEverGiven) {
  Buy("b1");
  Count("SELECT setval('touchpoints_id_seq', 50000000)");
  Count(
      "WITH m AS (INSERT INTO queue_messages (id, queue, touchpoint, visible_at, enqueued_at) "
      "VALUES (50000000, 'outbox', 999999, 0, 0) RETURNING 1) SELECT COUNT(*) FROM m");
  Buy("b2");
  ASSERT_TRUE(scheduler_->OptOut("b2").ok());
  const Instant cutoff = At("2026-11-20T00:00:00+08:00");
  auto step = store_->PruneFinished(cutoff, 0, 1000);
  ASSERT_TRUE(step.ok()) << step.status().message();
  EXPECT_TRUE(step->done);          // one step: 12 rows, 1 message
  EXPECT_EQ(step->deleted, 4);      // b2's suppressed due before the cutoff
  EXPECT_GT(step->next, 50000000);  // b2's last row
}

}  // namespace
}  // namespace tp
