// The PostgreSQL store where several daemons share one database: migrations
// at once, claims that no two daemons share (touchpoints or buyers), caps
// held across daemons, a claim left by a daemon that died, and a lost
// connection.
#include "store/pg_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "harness.h"
#include "pg_server.h"
#include "scheduler/scheduler.h"

namespace tp {
namespace {

using testing::At;
using testing::PgServer;

constexpr std::string_view kConfig = R"(version: 1
timezone: UTC
frequency_cap: {max: 1, per: day}
products: {p: {supply_days: 30}}
sinks: [{name: q, type: queue}]
cadences:
  - name: c
    steps:
      - {after: 1h, topic: first}
      - {after: 1h, topic: second}
)";

class PgStoreTest : public ::testing::Test {
 protected:
  PgStoreTest() : rules_(testing::MustLoad(kConfig)), db_(PgServer::Shared().NewDatabase()) {}

  std::unique_ptr<PgStore> MustOpen() {
    auto store = PgStore::Open(db_->url(), rules_);
    EXPECT_TRUE(store.ok()) << store.status().message();
    return store.ok() ? std::move(*store) : nullptr;
  }
  std::int64_t Count(const std::string& sql) {
    auto conn = pg::Connection::Open(db_->url(), "test");
    return conn->Exec(sql).Int64(0, 0);
  }
  // Buyers b0..b(n-1), each with one purchase whose two steps are due an
  // hour after `at`.
  void Buy(PgStore& store, int n, Instant at) {
    FakeClock clock(at);
    Scheduler scheduler(store, clock, rules_);
    for (int i = 0; i < n; ++i) {
      auto out =
          scheduler.Ingest({"o" + std::to_string(i), "b" + std::to_string(i), "p", 1, 1, at, ""});
      ASSERT_TRUE(out.ok()) << out.status().message();
      ASSERT_EQ(out->planned, 2);
    }
  }

  RulesInForce rules_;
  std::unique_ptr<PgServer::Database> db_;
};

TEST_F(PgStoreTest, DaemonsStartingTogetherMigrateOnce) {
  std::vector<std::thread> threads;
  std::atomic<int> opened{0};
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back([&] {
      auto store = PgStore::Open(db_->url(), rules_);
      EXPECT_TRUE(store.ok()) << store.status().message();
      if (store.ok() && (*store)->SchemaVersion().value() == 1) ++opened;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(opened, 6);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM schema_version"), 1);
}

TEST_F(PgStoreTest, ANewerSchemaIsRefused) {
  MustOpen();
  auto conn = pg::Connection::Open(db_->url(), "test");
  conn->Exec("UPDATE schema_version SET version = 99");
  auto store = PgStore::Open(db_->url(), rules_);
  ASSERT_FALSE(store.ok());
  EXPECT_THAT(store.status().message(), ::testing::HasSubstr("newer than this build"));
}

TEST_F(PgStoreTest, TwoDaemonsNeverClaimTheSameTouchpointOrBuyer) {
  auto a = MustOpen();
  auto b = MustOpen();
  const Instant at = At("2026-12-04T10:00:00Z");
  Buy(*a, 20, at);
  const Instant due = at + std::chrono::hours(2);
  // A claims 5 rows: its buyers' other rows are passed over by B too.
  auto a_due = a->TakeDue(due, 5);
  ASSERT_TRUE(a_due.ok()) << a_due.status().message();
  ASSERT_EQ(a_due->size(), 5u);
  auto b_due = b->TakeDue(due, 100);
  ASSERT_TRUE(b_due.ok()) << b_due.status().message();
  std::set<std::uint64_t> rows;
  std::set<std::string> a_buyers, b_buyers;
  for (const auto& d : *a_due) {
    rows.insert(d.handle);
    a_buyers.insert(std::string(d.view.buyer_id));
  }
  for (const auto& d : *b_due) {
    EXPECT_TRUE(rows.insert(d.handle).second) << "row " << d.handle << " claimed twice";
    b_buyers.insert(std::string(d.view.buyer_id));
  }
  for (const auto& buyer : b_buyers) EXPECT_EQ(a_buyers.count(buyer), 0u) << buyer;
  // 40 rows of 20 buyers, all due at once: A holds the first steps of 5
  // buyers, so B takes both rows of each of the other 15.
  EXPECT_EQ(a_buyers.size(), 5u);
  EXPECT_EQ(b_due->size(), 30u);

  std::vector<FiringOutcome> fired_a(a_due->size(), {FiringOutcome::Kind::kFired, due, {}});
  std::vector<FiringOutcome> fired_b(b_due->size(), {FiringOutcome::Kind::kFired, due, {}});
  ASSERT_TRUE(a->ApplyOutcomes(*a_due, fired_a).ok());
  ASSERT_TRUE(b->ApplyOutcomes(*b_due, fired_b).ok());
  // A's buyers' second steps, free again.
  auto rest = b->TakeDue(due, 100);
  ASSERT_TRUE(rest.ok());
  ASSERT_EQ(rest->size(), 5u);
  ASSERT_TRUE(
      b->ApplyOutcomes(*rest, std::vector<FiringOutcome>(5, {FiringOutcome::Kind::kFired, due, {}}))
          .ok());
  EXPECT_EQ(Count("SELECT COUNT(*) FROM touchpoints WHERE state = 1"), 40);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM queue_messages"), 40);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM (SELECT touchpoint FROM touchpoint_history WHERE state = 1 "
                  "GROUP BY touchpoint HAVING COUNT(*) > 1) x"),
            0);
}

TEST_F(PgStoreTest, ACapHoldsWhileTwoDaemonsFireAtOnce) {
  auto a = MustOpen();
  auto b = MustOpen();
  const Instant at = At("2026-12-04T10:00:00Z");
  Buy(*a, 30, at);
  FakeClock clock(at + std::chrono::hours(2));
  Scheduler on_a(*a, clock, rules_);
  Scheduler on_b(*b, clock, rules_);
  // Both fire at once, again and again, until neither has anything due.
  std::atomic<std::size_t> fired{0};
  auto fire = [&fired, &clock](Scheduler& s) {
    for (int i = 0; i < 20; ++i) {
      auto ran = s.RunDue(1);
      ASSERT_TRUE(ran.ok()) << ran.status().message();
      fired += ran->fired;
    }
    (void)clock;
  };
  std::thread ta([&] { fire(on_a); });
  std::thread tb([&] { fire(on_b); });
  ta.join();
  tb.join();
  // One a day per buyer: each buyer's first fired, its second deferred.
  EXPECT_EQ(fired, 30u);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM touchpoints WHERE state = 1"), 30);
  EXPECT_EQ(Count("SELECT COUNT(DISTINCT buyer) FROM touchpoints WHERE state = 1"), 30);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM touchpoints WHERE state = 0 AND next_at > " +
                  std::to_string(clock.Now().time_since_epoch().count())),
            30);
}

TEST_F(PgStoreTest, TheClaimOfADaemonThatDiedIsTakenAtOnce) {
  auto a = MustOpen();
  auto b = MustOpen();
  const Instant at = At("2026-12-04T10:00:00Z");
  Buy(*a, 3, at);
  const Instant due = at + std::chrono::hours(2);
  auto claimed = a->TakeDue(due, 100);
  ASSERT_TRUE(claimed.ok());
  ASSERT_EQ(claimed->size(), 6u);
  EXPECT_TRUE(b->TakeDue(due, 100)->empty());
  a.reset();  // its connection closes, as when the process dies
  auto taken = b->TakeDue(due, 100);
  ASSERT_TRUE(taken.ok());
  EXPECT_EQ(taken->size(), 6u);
}

TEST_F(PgStoreTest, ALostConnectionIsUnavailableThenReopened) {
  auto store = MustOpen();
  const Instant at = At("2026-12-04T10:00:00Z");
  Buy(*store, 2, at);
  const Instant due = at + std::chrono::hours(2);
  auto claimed = store->TakeDue(due, 100);
  ASSERT_TRUE(claimed.ok());
  // An administrator (or a failover) ends every session of the database.
  PgServer::Shared().Admin(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '" + db_->name() +
      "' AND application_name = 'touchpointd'");
  std::vector<FiringOutcome> fired(claimed->size(), {FiringOutcome::Kind::kFired, due, {}});
  Status s = store->ApplyOutcomes(*claimed, fired);
  EXPECT_TRUE(s.unavailable()) << s.message();
  // Nothing was fired; the next pass reconnects and fires them.
  auto again = store->TakeDue(due, 100);
  ASSERT_TRUE(again.ok()) << again.status().message();
  ASSERT_EQ(again->size(), 4u);
  ASSERT_TRUE(store->ApplyOutcomes(*again, fired).ok());
  EXPECT_EQ(Count("SELECT COUNT(*) FROM touchpoints WHERE state = 1"), 4);
}

TEST_F(PgStoreTest, AGroupLosingItsConnectionFailsUntilRolledBack) {
  auto store = MustOpen();
  FakeClock clock(At("2026-12-04T10:00:00Z"));
  Scheduler scheduler(*store, clock, rules_);
  ASSERT_TRUE(store->Begin().ok());
  ASSERT_TRUE(scheduler.Ingest({"o1", "b1", "p", 1, 1, clock.Now(), ""}).ok());
  PgServer::Shared().Admin(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '" + db_->name() +
      "' AND application_name = 'touchpointd'");
  // What the group wrote is gone: no call may run outside it.
  auto lost = scheduler.Ingest({"o2", "b2", "p", 1, 1, clock.Now(), ""});
  EXPECT_FALSE(lost.ok());
  EXPECT_TRUE(lost.status().unavailable());
  EXPECT_TRUE(store->Commit().unavailable());
  EXPECT_TRUE(store->Rollback().ok());
  ASSERT_TRUE(scheduler.Ingest({"o3", "b3", "p", 1, 1, clock.Now(), ""}).ok());
  EXPECT_EQ(Count("SELECT COUNT(*) FROM purchases"), 1);
}

}  // namespace
}  // namespace tp
