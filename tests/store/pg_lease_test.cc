// Leases on PostgreSQL take their queue's turn (store/pg/deliveries.cc):
// on any daemon, a lease of a queue waits while another lease of it is
// under way, so the two never pass over each other's rows; a lease of
// another queue does not wait, nor does one of a queue with nothing to
// hand out.
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <memory>

#include "harness.h"
#include "pg/connection.h"
#include "pg_server.h"
#include "scheduler/scheduler.h"
#include "store/pg/deliveries.h"
#include "store/pg_reader.h"
#include "store/pg_store.h"

namespace tp {
namespace {

using testing::At;
using testing::PgServer;

constexpr std::string_view kTwoQueues = R"(version: 1
timezone: UTC
products: {p: {supply_days: 30}}
sinks: [{name: q, type: queue}, {name: r, type: queue}]
cadences:
  - name: c
    steps:
      - {after: 1h, topic: first}
)";

TEST(PgLeaseTest, LeasesOfOneQueueTakeTurnsAndOtherQueuesDoNotWait) {
  RulesInForce rules(testing::MustLoad(kTwoQueues));
  auto db = PgServer::Shared().NewDatabase();
  auto store = PgStore::Open(db->url(), rules);
  ASSERT_TRUE(store.ok()) << store.status().message();
  const Instant at = At("2026-12-04T10:00:00Z");
  FakeClock clock(at);
  Scheduler scheduler(**store, clock, rules);
  for (const char* buyer : {"b0", "b1"}) {
    auto out = scheduler.Ingest({std::string("o-") + buyer, buyer, "p", 1, 1, at, ""});
    ASSERT_TRUE(out.ok()) << out.status().message();
  }
  clock.Set(at + std::chrono::hours(2));
  auto ran = scheduler.RunDue();
  ASSERT_TRUE(ran.ok()) << ran.status().message();
  ASSERT_EQ(ran->fired, 2u);  // a message each in q and r

  // Another daemon's lease of q, its transaction still open.
  auto other = pg::Connection::Open(db->url(), "other-daemon");
  pg::Transaction open(*other);
  ASSERT_EQ(pgstore::LeaseOn(*other, "q", 1, Millis(60'000), clock.Now()).size(), 1u);

  auto reader = PgReader::Open(db->url());
  ASSERT_TRUE(reader.ok()) << reader.status().message();
  std::promise<StatusOr<std::vector<LeasedRow>>> leased;
  (*reader)->Lease(
      "q", 10, Millis(60'000), clock.Now(),
      [&leased](StatusOr<std::vector<LeasedRow>> r) { leased.set_value(std::move(r)); });
  auto waiting = leased.get_future();
  EXPECT_EQ(waiting.wait_for(std::chrono::milliseconds(300)), std::future_status::timeout)
      << "a lease of q while another was under way did not wait for its turn";
  // r's turn is its own.
  auto of_r = (*store)->TakeLease("r", 10, Millis(60'000), clock.Now());
  ASSERT_TRUE(of_r.ok()) << of_r.status().message();
  EXPECT_EQ(of_r->size(), 2u);

  open.Commit();
  ASSERT_EQ(waiting.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  auto rows = waiting.get();
  ASSERT_TRUE(rows.ok()) << rows.status().message();
  EXPECT_EQ(rows->size(), 1u);  // the one the other daemon did not lease
}

// An idle consumer's poll takes no turn: it finds nothing visible first,
// and answers at once while another lease of the queue is under way.
TEST(PgLeaseTest, ALeaseOfAQueueWithNothingVisibleDoesNotWaitForItsTurn) {
  RulesInForce rules(testing::MustLoad(kTwoQueues));
  auto db = PgServer::Shared().NewDatabase();
  auto store = PgStore::Open(db->url(), rules);
  ASSERT_TRUE(store.ok()) << store.status().message();
  const Instant at = At("2026-12-04T10:00:00Z");
  FakeClock clock(at);
  Scheduler scheduler(**store, clock, rules);
  auto out = scheduler.Ingest({"o-b0", "b0", "p", 1, 1, at, ""});
  ASSERT_TRUE(out.ok()) << out.status().message();
  clock.Set(at + std::chrono::hours(2));
  auto ran = scheduler.RunDue();
  ASSERT_TRUE(ran.ok()) << ran.status().message();
  ASSERT_EQ(ran->fired, 1u);

  auto reader = PgReader::Open(db->url());
  ASSERT_TRUE(reader.ok()) << reader.status().message();
  const auto lease = [&] {
    auto leased = std::make_shared<std::promise<StatusOr<std::vector<LeasedRow>>>>();
    auto future = leased->get_future();
    (*reader)->Lease(
        "q", 10, Millis(60'000), clock.Now(),
        [leased](StatusOr<std::vector<LeasedRow>> r) { leased->set_value(std::move(r)); });
    return future;
  };
  auto first = lease().get();
  ASSERT_TRUE(first.ok()) << first.status().message();
  ASSERT_EQ(first->size(), 1u);  // q's one message, leased for a minute

  // Another daemon's lease of q, finding nothing, its transaction (and the
  // turn) still open: for longer than lock_timeout (5 s) if need be.
  auto other = pg::Connection::Open(db->url(), "other-daemon");
  pg::Transaction open(*other);
  ASSERT_EQ(pgstore::LeaseOn(*other, "q", 1, Millis(60'000), clock.Now()).size(), 0u);
  auto idle = lease();
  ASSERT_EQ(idle.wait_for(std::chrono::seconds(2)), std::future_status::ready)
      << "a lease of a queue with nothing visible waited for the queue's turn";
  auto none = idle.get();
  ASSERT_TRUE(none.ok()) << none.status().message();
  EXPECT_TRUE(none->empty());

  // Once its visibility ends the message is visible again, and a lease
  // waits for the turn.
  clock.Set(clock.Now() + std::chrono::minutes(2));
  auto again = lease();
  EXPECT_EQ(again.wait_for(std::chrono::milliseconds(300)), std::future_status::timeout);
  open.Commit();
  ASSERT_EQ(again.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  auto rows = again.get();
  ASSERT_TRUE(rows.ok()) << rows.status().message();
  EXPECT_EQ(rows->size(), 1u);
  EXPECT_EQ((*rows)[0].message.deliveries, 2);
}

}  // namespace
}  // namespace tp
