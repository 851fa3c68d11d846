// The counts /metrics reports from PostgreSQL: exact up to a bound, and
// past it PostgreSQL's estimates, said to be so (store/pg/gauges.h).
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <thread>

#include "harness.h"
#include "pg/connection.h"
#include "scheduler/scheduler.h"
#include "store/pg_reader.h"
#include "store/pg_store_fixture.h"
#include "store/reader_await.h"

namespace tp {
namespace {

using testing::At;

class PgGaugesTest : public testing::PgStoreTest {
 protected:
  // Ten buyers, twenty touchpoints: ten fired into q, ten pending (the day
  // cap moved the second steps to the next day); then statistics, as
  // autovacuum would take them.
  void SetUp() override {
    auto store = MustOpen();
    const Instant at = At("2026-12-04T10:00:00Z");
    Buy(*store, 10, at);
    FakeClock clock(at + std::chrono::hours(2));
    Scheduler scheduler(*store, clock, rules_);
    auto ran = scheduler.RunDue();
    ASSERT_TRUE(ran.ok()) << ran.status().message();
    ASSERT_EQ(ran->fired, 10u);
    pg::Connection::Open(db_->url(), "analyze")->Exec("ANALYZE");
  }

  StoreGauges Read(std::int64_t exact_up_to) {
    auto reader = PgReader::Open(db_->url(), exact_up_to);
    EXPECT_TRUE(reader.ok()) << reader.status().message();
    std::promise<StatusOr<StoreGauges>> counted;
    (*reader)->Count({"q"}, {}, [&](StatusOr<StoreGauges> g) { counted.set_value(std::move(g)); });
    auto g = counted.get_future().get();
    EXPECT_TRUE(g.ok()) << g.status().message();
    return g.ok() ? *g : StoreGauges{};
  }
};

// A count of the days that runs long (here, waiting for a lock the test
// holds) gives up when the daemon stops: cancelled at once, not at the
// lock's timeout; and the days asked after fail at once while the other
// counts still run.
TEST_F(PgGaugesTest, AStopCancelsACountOfTheDaysUnderWay) {
  auto reader = PgReader::Open(db_->url());
  ASSERT_TRUE(reader.ok()) << reader.status().message();
  auto holder = pg::Connection::Open(db_->url(), "holder");
  holder->Exec("BEGIN");
  holder->Exec("LOCK TABLE touchpoints IN ACCESS EXCLUSIVE MODE");
  std::promise<StatusOr<PendingDays>> counted;
  const Instant at = At("2026-12-04T00:00:00Z");
  (*reader)->PendingByDay({at, at + std::chrono::hours(24)},
                          [&](StatusOr<PendingDays> d) { counted.set_value(std::move(d)); });
  auto watcher = pg::Connection::Open(db_->url(), "watcher");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (watcher
             ->Exec("SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                    "'touchpointd-days' AND wait_event_type = 'Lock' AND datname = "
                    "current_database()")
             .Int64(0, 0) == 0) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the count never waited";
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  (*reader)->Stop();
  auto answered = counted.get_future();
  // The lock's timeout (5 s) ends the count anyway: then the message below.
  ASSERT_EQ(answered.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  auto days = answered.get();
  holder->Exec("ROLLBACK");
  ASSERT_FALSE(days.ok());
  // Cancelled by the stop ("due to user request"), not by lock_timeout.
  EXPECT_NE(days.status().message().find("user request"), std::string::npos)
      << days.status().message();

  auto refused = testing::Await<PendingDays>([&](auto done) {
    (*reader)->PendingByDay({at, at + std::chrono::hours(24)}, std::move(done));
  });
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("stopping"), std::string::npos)
      << refused.status().message();
  auto g =
      testing::Await<StoreGauges>([&](auto done) { (*reader)->Count({"q"}, {}, std::move(done)); });
  ASSERT_TRUE(g.ok()) << g.status().message();
  EXPECT_EQ(g->pending, 10);
}

TEST_F(PgGaugesTest, CountsUpToTheBoundAreExact) {
  for (const std::int64_t bound : {10, 1'000'000}) {
    const StoreGauges g = Read(bound);
    EXPECT_FALSE(g.estimated) << bound;
    EXPECT_EQ(g.pending, 10) << bound;
    ASSERT_EQ(g.queue_messages.size(), 1u);
    EXPECT_EQ(g.queue_messages[0].second, 10) << bound;
  }
}

// Past the bound each count is the planner's estimate, which after an
// ANALYZE of these small tables is the count; it is never below the bound
// and one, since that many rows were read.
TEST_F(PgGaugesTest, CountsPastTheBoundAreEstimatesAndSaySo) {
  const StoreGauges g = Read(4);
  EXPECT_TRUE(g.estimated);
  EXPECT_EQ(g.pending, 10);
  ASSERT_EQ(g.queue_messages.size(), 1u);
  EXPECT_EQ(g.queue_messages[0].first, "q");
  EXPECT_EQ(g.queue_messages[0].second, 10);

  // A bound just below a count: an estimate, at least the bound and one.
  const StoreGauges tight = Read(9);
  EXPECT_TRUE(tight.estimated);
  EXPECT_GE(tight.pending, 10);
}

}  // namespace
}  // namespace tp
