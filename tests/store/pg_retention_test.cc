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

TEST(PgRetentionTest, PrunesOnlyFinishedTouchpointsWithNothingLeftToDeliver) {
  RulesInForce rules(testing::MustLoad(testing::kBriefConfig));
  auto db = PgServer::Shared().NewDatabase();
  auto count = [&](const std::string& sql) {
    return pg::Connection::Open(db->url(), "test")->Exec(sql).Int64(0, 0);
  };
  auto opened = PgStore::Open(db->url(), rules);
  ASSERT_TRUE(opened.ok()) << opened.status().message();
  PgStore& store = **opened;
  FakeClock clock(At("2026-11-01T10:00:00+08:00"));
  Scheduler scheduler(store, clock, rules);
  ASSERT_TRUE(scheduler.Ingest({"o1", "b1", "daily", 2, 240, clock.Now(), "", ""}).ok());
  ASSERT_TRUE(scheduler.Ingest({"o2", "b2", "daily", 2, 240, clock.Now(), "", ""}).ok());
  ASSERT_TRUE(scheduler.OptOut("b2").ok());  // six suppressed, due from day 1 to day 30
  clock.Set(At("2026-11-02T10:00:00+08:00"));
  ASSERT_EQ(scheduler.RunDue()->fired, 1u);  // how-to-wear: queued, never acked
  clock.Set(At("2026-11-04T10:00:00+08:00"));
  ASSERT_EQ(scheduler.RunDue()->fired, 1u);  // comfort-check: acked below
  auto leased = store.Lease("outbox", 10, std::chrono::seconds(30), clock.Now());
  ASSERT_TRUE(leased.ok()) << leased.status().message();
  ASSERT_EQ(leased->size(), 2u);
  auto ack = [&](const std::string& topic) {
    for (const LeasedMessage& m : *leased) {
      if (nlohmann::json::parse(m.event)["data"]["topic"] == topic) {
        std::vector<std::string> receipts = {m.receipt};
        ASSERT_EQ(*store.Ack("outbox", receipts, clock.Now()), 1);
      }
    }
  };
  ack("comfort-check");
  const Instant cutoff = At("2026-11-20T00:00:00+08:00");

  // A bounded step: row ids 1 to 3 only (b1's how-to-wear, comfort-check,
  // care-tips).
  auto step = store.PruneFinished(cutoff, 0, 3);
  ASSERT_TRUE(step.ok()) << step.status().message();
  EXPECT_EQ(step->deleted, 1);
  EXPECT_FALSE(step->done);
  EXPECT_EQ(step->next, 3);
  step = store.PruneFinished(cutoff, step->next, 1000);
  ASSERT_TRUE(step.ok());
  EXPECT_EQ(step->deleted, 4);  // b2's four suppressed due before the cutoff
  EXPECT_TRUE(step->done);
  EXPECT_EQ(count("SELECT COUNT(*) FROM touchpoints WHERE topic = 'how-to-wear'"), 1);  // queued

  // Once acked, the next pass takes it.
  ack("how-to-wear");
  step = store.PruneFinished(cutoff + std::chrono::hours(1), 0, 1000);
  ASSERT_TRUE(step.ok());
  EXPECT_EQ(step->deleted, 1);

  EXPECT_EQ(count("SELECT COUNT(*) FROM touchpoints"), 12 - 6);
  EXPECT_EQ(count("SELECT COUNT(*) FROM touchpoints WHERE topic IN ('comfort-check', "
                  "'how-to-wear')"),
            0);
  EXPECT_EQ(count("SELECT COUNT(*) FROM touchpoints WHERE state = 0"), 4);  // b1's, untouched
  EXPECT_EQ(count("SELECT COUNT(*) FROM touchpoint_history WHERE touchpoint NOT IN "
                  "(SELECT id FROM touchpoints)"),
            0);
  EXPECT_EQ(count("SELECT COUNT(*) FROM purchases"), 2);
}

// A queue with more messages than one step reads: the steps read it a
// range of ids at a time, pruning nothing until the whole of it is read,
// so that no step holds the daemon's loop long.
TEST(PgRetentionTest, ALongQueueIsReadInStepsBeforeAnythingIsPruned) {
  RulesInForce rules(testing::MustLoad(testing::kBriefConfig));
  auto db = PgServer::Shared().NewDatabase();
  auto opened = PgStore::Open(db->url(), rules);
  ASSERT_TRUE(opened.ok()) << opened.status().message();
  PgStore& store = **opened;
  FakeClock clock(At("2026-11-01T10:00:00+08:00"));
  Scheduler scheduler(store, clock, rules);
  ASSERT_TRUE(scheduler.Ingest({"o1", "b1", "daily", 2, 240, clock.Now(), "", ""}).ok());
  clock.Set(At("2026-11-02T10:00:00+08:00"));
  ASSERT_EQ(scheduler.RunDue()->fired, 1u);  // how-to-wear, queued at row id 1
  clock.Set(At("2026-11-04T10:00:00+08:00"));
  ASSERT_EQ(scheduler.RunDue()->fired, 1u);  // comfort-check, queued: acked below
  auto leased = store.Lease("outbox", 10, std::chrono::seconds(30), clock.Now());
  ASSERT_TRUE(leased.ok());
  ASSERT_EQ(leased->size(), 2u);
  // 250,000 messages of a long-gone touchpoint, after those two.
  pg::Connection::Open(db->url(), "test")
      ->Exec(
          "INSERT INTO queue_messages (queue, touchpoint, visible_at, enqueued_at) "
          "SELECT 'outbox', 999999, 0, 0 FROM generate_series(1, 250000)");
  for (const LeasedMessage& m : *leased) {
    if (nlohmann::json::parse(m.event)["data"]["topic"] == "comfort-check") {
      std::vector<std::string> receipts = {m.receipt};
      ASSERT_EQ(*store.Ack("outbox", receipts, clock.Now()), 1);
    }
  }
  const Instant cutoff = At("2026-11-20T00:00:00+08:00");
  // 250,002 ids, read 100,000 a step: two steps read, the third reads the
  // rest and prunes.
  for (int i = 0; i < 2; ++i) {
    auto step = store.PruneFinished(cutoff, 0, 1000);
    ASSERT_TRUE(step.ok()) << step.status().message();
    EXPECT_EQ(step->deleted, 0);
    EXPECT_EQ(step->next, 0);
    EXPECT_FALSE(step->done);
  }
  auto step = store.PruneFinished(cutoff, 0, 1000);
  ASSERT_TRUE(step.ok());
  EXPECT_EQ(step->deleted, 1);  // comfort-check; how-to-wear is still queued
  EXPECT_TRUE(step->done);
}

}  // namespace
}  // namespace tp
