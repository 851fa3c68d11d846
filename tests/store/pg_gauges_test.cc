// The counts /metrics reports from PostgreSQL: exact up to a bound, and
// past it PostgreSQL's estimates, said to be so (store/pg/gauges.h).
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <string>

#include "harness.h"
#include "pg/connection.h"
#include "pg_server.h"
#include "scheduler/scheduler.h"
#include "store/pg_reader.h"
#include "store/pg_store.h"

namespace tp {
namespace {

using testing::At;
using testing::PgServer;

constexpr std::string_view kGaugesConfig = R"(version: 1
timezone: UTC
products: {p: {supply_days: 30}}
sinks: [{name: q, type: queue}]
cadences:
  - name: c
    steps:
      - {after: 1h, topic: first}
      - {after: 2h, topic: second}
)";

class PgGaugesTest : public ::testing::Test {
 protected:
  PgGaugesTest() : rules_(testing::MustLoad(kGaugesConfig)), db_(PgServer::Shared().NewDatabase()) {}

  // Ten purchases (twenty touchpoints); the first steps (ten) fired into q.
  void Fill() {
    auto store = PgStore::Open(db_->url(), rules_);
    ASSERT_TRUE(store.ok()) << store.status().message();
    const Instant at = At("2026-12-04T10:00:00Z");
    FakeClock clock(at);
    Scheduler scheduler(**store, clock, rules_);
    for (int i = 0; i < 10; ++i) {
      const std::string buyer = "b" + std::to_string(i);
      auto out = scheduler.Ingest({"o-" + buyer, buyer, "p", 1, 1, at, ""});
      ASSERT_TRUE(out.ok()) << out.status().message();
    }
    clock.Set(at + std::chrono::minutes(90));
    auto ran = scheduler.RunDue();
    ASSERT_TRUE(ran.ok()) << ran.status().message();
    ASSERT_EQ(ran->fired, 10u);
    // Statistics as autovacuum would take them.
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

  RulesInForce rules_;
  std::unique_ptr<PgServer::Database> db_;
};

TEST_F(PgGaugesTest, CountsUpToTheBoundAreExact) {
  Fill();
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
  Fill();
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
