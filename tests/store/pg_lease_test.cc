// Leases on PostgreSQL take their queue's turn (store/pg/deliveries.cc):
// on any daemon, a lease of a queue waits while another lease of it is
// under way, so the two never pass over each other's rows; a lease of
// another queue does not wait.
#include <gtest/gtest.h>

#include <chrono>
#include <future>

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

}  // namespace
}  // namespace tp
