// What the PostgreSQL outbox holds, and in which order: a webhook claim
// holds the events its daemon attempts and as many new ones as it takes,
// no more; a record of dead letters locks their touchpoints in one order.
// (The rest of the outbox with several daemons: pg_outbox_test.cc.)
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <thread>
#include <vector>

#include "harness.h"
#include "pg/connection.h"
#include "pg_server.h"
#include "store/pg_outbox_fixture.h"
#include "store/pg_store.h"

namespace tp {
namespace {

using testing::PgOutboxTest;

// Not in order, a claim takes `max` events besides those its daemon is
// attempting, and claims those again for its session when its connection
// was replaced (so that no other daemon takes them over while in flight),
// without returning them. Before, `max` counted them: a worker asked for
// its free slots plus its attempts, and when older events became
// claimable (after a failover), its attempts fell out of the claim and
// as many others were claimed and not attempted, held from the other
// daemons for as long as it pumped no more (a circuit open).
TEST_F(PgOutboxTest, AClaimTakesMaxBesidesTheEventsAttemptedAndKeepsThoseClaimed) {
  auto a = MustOpen();
  const Instant now = Fire(*a, 3);
  const std::vector<OutboxItem> first = Due(*a, now, 2, false);
  ASSERT_EQ(first.size(), 2u);
  const std::vector<std::int64_t> attempting = {first[0].id, first[1].id};
  db_->EndSessions();  // its connection replaced while they are in flight
  auto again = Reconnected([&] { return a->DueDeliveries("stream", now, 2, false, attempting); });
  ASSERT_TRUE(again.ok()) << again.status().message();
  ASSERT_EQ(again->size(), 2u);
  for (const OutboxItem& item : *again) {
    EXPECT_EQ(std::count(attempting.begin(), attempting.end(), item.id), 0) << item.id;
  }
  // Four claimed, all by the new session: none left to another daemon.
  EXPECT_EQ(Count("SELECT COUNT(*) FROM deliveries WHERE claim_pid IS NOT NULL"), 4);
  EXPECT_EQ(Count("SELECT COUNT(DISTINCT (claim_pid, claim_start)) FROM deliveries WHERE claim_pid "
                  "IS NOT NULL"),
            1);
  EXPECT_EQ(a->TakenOver(), 0);
  auto b = MustOpen();
  EXPECT_EQ(Due(*b, now, 100, false).size(), 2u);
}

// A record of dead letters locks their touchpoints in one order (by id),
// whatever the order of its results: another daemon's record, or a replay,
// holding one of them waits for none it takes after. (In the results'
// order, two records of two sinks' letters of the same touchpoints
// deadlocked: a 503 and a probe of the database.)
TEST_F(PgOutboxTest, DeadLettersLockTheirTouchpointsInOneOrder) {
  auto a = MustOpen();
  const Instant now = Fire(*a, 3);
  std::vector<OutboxItem> due = Due(*a, now, 100, false);
  ASSERT_GE(due.size(), 2u);
  std::sort(due.begin(), due.end(), [](const OutboxItem& x, const OutboxItem& y) {
    return x.touchpoint > y.touchpoint;  // the later touchpoint first
  });
  std::vector<DeliveryResult> results;
  for (const OutboxItem& i : {due[0], due[1]}) results.push_back(Dead(i, now, "dead letter"));
  ASSERT_GT(results[0].touchpoint, results[1].touchpoint);
  const std::string later = std::to_string(results[0].touchpoint);
  const std::string earlier = std::to_string(results[1].touchpoint);
  auto held = pg::Connection::Open(db_->url(), "test");
  held->Exec("BEGIN");
  held->Exec("SELECT 1 FROM touchpoints WHERE id = " + earlier + " FOR NO KEY UPDATE");
  Status recorded = Status::Ok();
  std::thread record([&] { recorded = a->RecordDeliveries(results); });
  auto watch = pg::Connection::Open(db_->url(), "test");
  bool waiting = false;
  for (int i = 0; i < 2000 && !waiting; ++i) {
    waiting = watch
                  ->Exec(
                      "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                      "AND datname = current_database() AND application_name LIKE "
                      "'touchpointd%'")
                  .Int64(0, 0) > 0;
    if (!waiting) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_TRUE(waiting);
  // The record waits for the earlier touchpoint, holding not the later.
  held->Exec("SET LOCAL lock_timeout = '200ms'");
  try {
    held->Exec("SELECT 1 FROM touchpoints WHERE id = " + later + " FOR NO KEY UPDATE");
  } catch (const pg::Error& e) {
    ADD_FAILURE() << e.what();
  }
  held->Exec("ROLLBACK");
  record.join();
  EXPECT_TRUE(recorded.ok()) << recorded.message();
  EXPECT_EQ(Count("SELECT COUNT(*) FROM touchpoints WHERE state = 5"), 2);
}

}  // namespace
}  // namespace tp
