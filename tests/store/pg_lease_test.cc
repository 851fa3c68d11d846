// Leases on PostgreSQL take their queue's turn (store/pg/queues.cc):
// on any daemon, a lease of a queue waits while another lease of it is
// under way, so the two never pass over each other's rows; a lease of
// another queue does not wait, nor does one of a queue with nothing to
// hand out.
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <initializer_list>
#include <memory>
#include <thread>

#include "harness.h"
#include "pg/connection.h"
#include "pg_server.h"
#include "scheduler/scheduler.h"
#include "store/pg/queues.h"
#include "store/pg_reader.h"
#include "store/pg_store.h"
#include "store/values.h"

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

// Buyers' purchases fired, a message each in q and r, on a database of
// its own; the clock at the fire time; leases of q through a PgReader.
class PgLeaseTest : public ::testing::Test {
 protected:
  PgLeaseTest() : rules_(testing::MustLoad(kTwoQueues)), db_(PgServer::Shared().NewDatabase()) {}

  void Fire(std::initializer_list<const char*> buyers) {
    auto store = PgStore::Open(db_->url(), rules_);
    ASSERT_TRUE(store.ok()) << store.status().message();
    store_ = std::move(*store);
    const Instant at = At("2026-12-04T10:00:00Z");
    clock_.Set(at);
    Scheduler scheduler(*store_, clock_, rules_);
    for (const char* buyer : buyers) {
      auto out = scheduler.Ingest({std::string("o-") + buyer, buyer, "p", 1, 1, at, ""});
      ASSERT_TRUE(out.ok()) << out.status().message();
    }
    clock_.Set(at + std::chrono::hours(2));
    auto ran = scheduler.RunDue();
    ASSERT_TRUE(ran.ok()) << ran.status().message();
    ASSERT_EQ(ran->fired, buyers.size());
    auto reader = PgReader::Open(db_->url());
    ASSERT_TRUE(reader.ok()) << reader.status().message();
    reader_ = std::move(*reader);
  }
  std::future<StatusOr<std::vector<LeasedRow>>> Lease(const char* queue = "q",
                                                      Millis visibility = Millis(60'000),
                                                      int max = 10) {
    auto leased = std::make_shared<std::promise<StatusOr<std::vector<LeasedRow>>>>();
    auto future = leased->get_future();
    reader_->Lease(
        queue, max, visibility, clock_.Now(),
        [leased](StatusOr<std::vector<LeasedRow>> r) { leased->set_value(std::move(r)); });
    return future;
  }
  StatusOr<int> Ack(const char* queue, std::vector<std::string> receipts) {
    std::promise<StatusOr<int>> acked;
    auto future = acked.get_future();
    reader_->Ack(queue, std::move(receipts), clock_.Now(),
                 [&acked](StatusOr<int> r) { acked.set_value(std::move(r)); });
    return future.get();
  }
  // Until when a message is hidden, on the clock's scale (ms).
  std::int64_t VisibleAt(std::int64_t message) {
    auto c = pg::Connection::Open(db_->url(), "test");
    return c
        ->Run(pg::Statement("SELECT visible_at FROM queue_messages WHERE id = $1"),
              pg::Params().Add(message))
        .Int64(0, 0);
  }

  RulesInForce rules_;
  std::unique_ptr<PgServer::Database> db_;
  FakeClock clock_{Instant{}};
  std::unique_ptr<PgStore> store_;
  std::unique_ptr<PgReader> reader_;
};

TEST_F(PgLeaseTest, LeasesOfOneQueueTakeTurnsAndOtherQueuesDoNotWait) {
  Fire({"b0", "b1"});

  // Another daemon's lease of q, its transaction still open.
  auto other = pg::Connection::Open(db_->url(), "other-daemon");
  pg::Transaction open(*other);
  ASSERT_EQ(pgstore::LeaseOn(*other, "q", 1, Millis(60'000), clock_.Now()).size(), 1u);

  auto waiting = Lease();
  EXPECT_EQ(waiting.wait_for(std::chrono::milliseconds(300)), std::future_status::timeout)
      << "a lease of q while another was under way did not wait for its turn";
  // r's turn is its own.
  auto of_r = store_->TakeLease("r", 10, Millis(60'000), clock_.Now());
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
TEST_F(PgLeaseTest, ALeaseOfAQueueWithNothingVisibleDoesNotWaitForItsTurn) {
  Fire({"b0"});
  auto first = Lease().get();
  ASSERT_TRUE(first.ok()) << first.status().message();
  ASSERT_EQ(first->size(), 1u);  // q's one message, leased for a minute

  // Another daemon's lease of q, finding nothing, its transaction (and the
  // turn) still open: for longer than lock_timeout (5 s) if need be.
  auto other = pg::Connection::Open(db_->url(), "other-daemon");
  pg::Transaction open(*other);
  ASSERT_EQ(pgstore::LeaseOn(*other, "q", 1, Millis(60'000), clock_.Now()).size(), 0u);
  auto idle = Lease();
  ASSERT_EQ(idle.wait_for(std::chrono::seconds(2)), std::future_status::ready)
      << "a lease of a queue with nothing visible waited for the queue's turn";
  auto none = idle.get();
  ASSERT_TRUE(none.ok()) << none.status().message();
  EXPECT_TRUE(none->empty());

  // Once its visibility ends the message is visible again, and a lease
  // waits for the turn.
  clock_.Set(clock_.Now() + std::chrono::minutes(2));
  auto again = Lease();
  EXPECT_EQ(again.wait_for(std::chrono::milliseconds(300)), std::future_status::timeout);
  open.Commit();
  ASSERT_EQ(again.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  auto rows = again.get();
  ASSERT_TRUE(rows.ok()) << rows.status().message();
  EXPECT_EQ(rows->size(), 1u);
  EXPECT_EQ((*rows)[0].message.deliveries, 2);
}

// A lease that waited (for its queue's turn, which another daemon's lease
// held; or behind that lease on the queues' thread) hides its messages for
// its whole visibility from when it took them, not from when it was asked
// for: were it less, they would be handed out again while its consumer
// still had them.
TEST_F(PgLeaseTest, ALeaseThatWaitedHidesItsMessagesForTheirWholeVisibility) {
  Fire({"b0", "b1"});
  auto other = pg::Connection::Open(db_->url(), "other-daemon");
  pg::Transaction open(*other);
  ASSERT_EQ(pgstore::LeaseOn(*other, "q", 1, Millis(60'000), clock_.Now()).size(), 1u);

  const std::int64_t asked = sql::Ms(clock_.Now());
  constexpr Millis kVisibility(1'000);
  auto of_q = Lease("q", kVisibility);  // waits for q's turn
  auto of_r = Lease("r", kVisibility);  // waits for the thread
  constexpr Millis kWait(1'500);
  std::this_thread::sleep_for(kWait);
  open.Commit();
  for (auto* leased : {&of_q, &of_r}) {
    ASSERT_EQ(leased->wait_for(std::chrono::seconds(5)), std::future_status::ready);
    auto rows = leased->get();
    ASSERT_TRUE(rows.ok()) << rows.status().message();
    ASSERT_FALSE(rows->empty());
    for (const LeasedRow& row : *rows) {
      // (Less a little: the second was asked for a moment after the first,
      // and a loaded machine may take a while between the two clocks'
      // readings.)
      EXPECT_GE(VisibleAt(row.id), asked + kWait.count() - 250 + kVisibility.count())
          << "message " << row.id;
    }
  }
}

// One ack takes receipts of several leases at once; each counts once, and
// only while its lease is the message's latest and it names the queue.
TEST_F(PgLeaseTest, AnAckTakesReceiptsOfManyLeasesEachOnce) {
  Fire({"b0", "b1", "b2"});
  auto first = Lease("q", Millis(1'000), 3).get();
  ASSERT_TRUE(first.ok()) << first.status().message();
  ASSERT_EQ(first->size(), 3u);
  // Visible again, and handed out in two leases: the first receipts are
  // stale.
  clock_.Set(clock_.Now() + std::chrono::seconds(2));
  auto one = Lease("q", Millis(60'000), 1).get();
  auto two = Lease("q", Millis(60'000), 2).get();
  ASSERT_TRUE(one.ok() && two.ok());
  ASSERT_EQ(one->size(), 1u);
  ASSERT_EQ(two->size(), 2u);
  ASSERT_EQ((*first)[0].id, (*one)[0].id);
  const std::string stale = (*first)[0].message.receipt;
  const std::string of_one = (*one)[0].message.receipt, of_two = (*two)[1].message.receipt;
  const std::string wrong_part = std::to_string((*two)[0].id) + ".0123456789abcdef01234567";

  auto under_r = Ack("r", {of_one, of_two});
  ASSERT_TRUE(under_r.ok()) << under_r.status().message();
  EXPECT_EQ(*under_r, 0);
  auto acked = Ack("q", {stale, of_one, of_two, of_one, wrong_part, "7.x"});
  ASSERT_TRUE(acked.ok()) << acked.status().message();
  EXPECT_EQ(*acked, 2);
  auto left = store_->QueueDepth("q");
  ASSERT_TRUE(left.ok());
  EXPECT_EQ(*left, 1);  // (*two)[0], whose receipt was not sent
}

// An ack writes its touchpoints' history lines, and leaves sequential
// scans as they were for the rest of its transaction and after: on where
// they were on (the store's session), off where its session has them off
// (the queues' connection), on where a session set them on over its
// options.
TEST_F(PgLeaseTest, AnAckLeavesSequentialScansAsTheyWere) {
  Fire({"b0", "b1", "b2"});
  // The session's options, and a SET of its own over them (RESET would go
  // back to the options).
  const std::pair<const char*, const char*> sessions[] = {
      {"", ""},
      {"-c enable_seqscan=off", ""},
      {"-c enable_seqscan=off", "SET enable_seqscan = on"}};
  for (const auto& [settings, set] : sessions) {
    auto c = pg::Connection::Open(db_->url(), "test", settings);
    if (*set != '\0') c->Exec(set);
    const std::string before(c->Exec("SHOW enable_seqscan").Text(0, 0));
    pg::Transaction txn(*c);
    std::vector<LeasedRow> rows = pgstore::LeaseOn(*c, "q", 1, Millis(60'000), clock_.Now());
    ASSERT_EQ(rows.size(), 1u) << settings << set;
    const std::vector<std::string> receipts{rows[0].message.receipt};
    EXPECT_EQ(pgstore::AckOn(*c, "q", receipts, clock_.Now()), 1) << settings << set;
    EXPECT_EQ(c->Exec("SHOW enable_seqscan").Text(0, 0), before) << settings << set;
    EXPECT_EQ(c->Exec("SELECT COUNT(*) FROM touchpoint_history WHERE touchpoint = " +
                      std::to_string(rows[0].touchpoint) + " AND reason = 'acked on q'")
                  .Int64(0, 0),
              1)
        << settings << set;
    txn.Commit();
    EXPECT_EQ(c->Exec("SHOW enable_seqscan").Text(0, 0), before) << settings << set;
  }
}

}  // namespace
}  // namespace tp
