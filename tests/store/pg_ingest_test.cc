// The PostgreSQL store's ingest groups on several daemons at once: groups
// sharing buyers, and one order id sent as two buyers' purchases to two
// daemons. The rest of several daemons on one database: pg_store_test.cc.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "harness.h"
#include "scheduler/scheduler.h"
#include "store/pg_store.h"
#include "store/pg_store_fixture.h"

namespace tp {
namespace {

using testing::At;
using testing::PgStoreTest;

// A request of a group, as the ingest writer runs it: in a savepoint,
// its purchases prepared together first (held, and written as one
// statement) if `prepare`, or each written by its call.
Status RecordInGroup(PgStore& store, Scheduler& scheduler, const Clock& clock,
                     const std::string& order, const std::string& buyer, bool prepare = false,
                     IngestOutcome* outcome = nullptr) {
  if (!store.Savepoint().ok()) return Status::Error("savepoint");
  const Purchase purchase{order, buyer, "p", 1, 1, clock.Now(), ""};
  if (prepare) {
    if (Status s = scheduler.PrepareIngest(std::span(&purchase, 1)); !s.ok()) return s;
  }
  auto out = scheduler.Ingest(purchase);
  if (!out.ok()) return out.status();
  if (outcome != nullptr) *outcome = *out;
  return store.Release();
}

// Two daemons' groups writing two buyers in opposite orders, a request
// each (as the batcher runs them): taking each request's buyer as it came
// would deadlock, and PostgreSQL would end one group after a second. With
// the turns of all the group's buyers held from its start, the second
// group waits for the first, then both commit.
TEST_F(PgStoreTest, GroupsSharingBuyersWaitForEachOtherRatherThanDeadlock) {
  auto a = MustOpen(), b = MustOpen();
  FakeClock clock(At("2026-12-04T10:00:00Z"));
  Scheduler on_a(*a, clock, rules_), on_b(*b, clock, rules_);
  const auto request = [&clock](PgStore& store, Scheduler& scheduler, const std::string& order,
                                const std::string& buyer) {
    return RecordInGroup(store, scheduler, clock, order, buyer);
  };
  const std::vector<std::string> x_y = {"x", "y"}, y_x = {"y", "x"};
  ASSERT_TRUE(a->Begin().ok());
  ASSERT_TRUE(a->TakeBuyersTurns(x_y).ok());
  ASSERT_TRUE(request(*a, on_a, "a1", "x").ok());
  std::atomic<bool> b_done{false};
  Status b_status = Status::Ok();
  std::thread other([&] {
    b_status = b->Begin();
    if (b_status.ok()) b_status = b->TakeBuyersTurns(y_x);
    if (b_status.ok()) b_status = request(*b, on_b, "b1", "y");
    if (b_status.ok()) b_status = request(*b, on_b, "b2", "x");
    if (b_status.ok()) b_status = b->Commit();
    b_done = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_FALSE(b_done);  // waiting for a's group
  const Status second = request(*a, on_a, "a2", "y");
  EXPECT_TRUE(second.ok()) << second.message();
  const Status committed = a->Commit();
  EXPECT_TRUE(committed.ok()) << committed.message();
  other.join();
  EXPECT_TRUE(b_status.ok()) << b_status.message();
  EXPECT_EQ(Count("SELECT COUNT(*) FROM purchases"), 4);
}

// A group of more buyers than a transaction takes turns of one by one
// (10,000 new buyers in one call to the store; the daemon's groups hold
// 1,000 at most) takes every buyer's turn in one lock: a lock each would
// fill the server's shared lock table (about 20,000 entries on the test
// server), and then every session's locks fail. Other groups wait for it,
// and it for them; a group of a few buyers takes their own turns and a
// share of that lock, so such groups go on side by side.
TEST_F(PgStoreTest, AGroupOfManyBuyersTakesOneLockForAllTheirTurns) {
  auto a = MustOpen(), b = MustOpen();
  const auto advisory_locks = [&](const std::string& mode) {
    return Count(
        "SELECT COUNT(*) FROM pg_locks l JOIN pg_stat_activity s ON s.pid = l.pid WHERE "
        "l.locktype = 'advisory' AND s.datname = current_database() AND l.mode = '" +
        mode + "'");
  };
  std::vector<std::string> many;
  for (int i = 0; i < 40000; ++i) many.push_back("bulk-" + std::to_string(i));
  ASSERT_TRUE(a->Begin().ok());
  const Status taken = a->TakeBuyersTurns(many);
  ASSERT_TRUE(taken.ok()) << taken.message();
  EXPECT_EQ(advisory_locks("ExclusiveLock"), 1);

  std::atomic<bool> b_done{false};
  Status b_status = Status::Ok();
  std::thread other([&] {
    b_status = b->Begin();
    const std::vector<std::string> one = {"someone-else"};
    if (b_status.ok()) b_status = b->TakeBuyersTurns(one);
    b_done = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_FALSE(b_done);  // waiting for a's group
  ASSERT_TRUE(a->Commit().ok());
  other.join();
  ASSERT_TRUE(b_status.ok()) << b_status.message();
  EXPECT_EQ(advisory_locks("ShareLock"), 1);
  EXPECT_EQ(advisory_locks("ExclusiveLock"), 1);  // someone-else's own
  // Side by side with b's group: as many buyers as are taken one by one.
  std::vector<std::string> most(many.begin(), many.begin() + 1000);
  ASSERT_TRUE(a->Begin().ok());
  ASSERT_TRUE(a->TakeBuyersTurns(most).ok());
  EXPECT_EQ(advisory_locks("ShareLock"), 2);
  EXPECT_EQ(advisory_locks("ExclusiveLock"), 1001);
  // One more buyer in the same group: every turn at once, which waits for
  // b's group.
  std::atomic<bool> a_done{false};
  std::thread more([&] {
    const std::vector<std::string> another = {"bulk-1000"};
    EXPECT_TRUE(a->TakeBuyersTurns(another).ok());
    a_done = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_FALSE(a_done);
  ASSERT_TRUE(b->Commit().ok());
  more.join();
  ASSERT_TRUE(a->Commit().ok());
}

// Every buyer's turn taken inside a request's savepoint goes when that
// savepoint is rolled back: the group's next request takes its buyer's own
// turn again, instead of running with none.
TEST_F(PgStoreTest, EveryTurnTakenInARequestRolledBackIsTakenAgain) {
  auto a = MustOpen();
  FakeClock clock(At("2026-12-04T10:00:00Z"));
  Scheduler scheduler(*a, clock, rules_);
  const auto advisory_locks = [&] {
    return Count(
        "SELECT COUNT(*) FROM pg_locks l JOIN pg_stat_activity s ON s.pid = l.pid WHERE "
        "l.locktype = 'advisory' AND s.datname = current_database()");
  };
  std::vector<Purchase> many;
  for (int i = 0; i < 1001; ++i) {
    const std::string n = std::to_string(i);
    many.push_back({"o" + n, "bulk-" + n, "p", 1, 1, clock.Now(), ""});
  }
  ASSERT_TRUE(a->Begin().ok());
  ASSERT_TRUE(a->Savepoint().ok());
  ASSERT_TRUE(scheduler.PrepareIngest(many).ok());
  EXPECT_EQ(advisory_locks(), 1);  // every turn, in one lock
  ASSERT_TRUE(a->RollbackTo().ok());
  EXPECT_EQ(advisory_locks(), 0);
  ASSERT_TRUE(RecordInGroup(*a, scheduler, clock, "x1", "x").ok());
  EXPECT_EQ(advisory_locks(), 2);  // x's turn and a share of every turn
  ASSERT_TRUE(a->Commit().ok());
}

// One order id sent as two buyers' purchases to two daemons at once: each
// group reads no such order (the other's is not committed), and the second
// to write it fails on the unique key. That group fails as Unavailable (the
// ingest writer answers 503 with Retry-After), not as an error (a 500), and
// tried again it refuses the purchase as another buyer's order, as one
// daemon refuses it at once.
TEST_F(PgStoreTest, OneOrderIdForTwoBuyersOnTwoDaemonsAtOnceIsTriedAgain) {
  auto a = MustOpen(), b = MustOpen();
  FakeClock clock(At("2026-12-04T10:00:00Z"));
  Scheduler on_a(*a, clock, rules_), on_b(*b, clock, rules_);
  for (const bool prepare : {true, false}) {
    SCOPED_TRACE(prepare ? "prepared together" : "written by each call");
    const std::string order = prepare ? "o-held" : "o-each";
    const std::string x = order + "-x", y = order + "-y";
    ASSERT_TRUE(a->Begin().ok());
    ASSERT_TRUE(a->TakeBuyersTurns(std::vector<std::string>{x}).ok());
    ASSERT_TRUE(RecordInGroup(*a, on_a, clock, order, x, prepare).ok());
    // What was held is written before the next statement: not committed.
    ASSERT_TRUE(a->Savepoint().ok());
    std::atomic<bool> b_done{false};
    Status b_status = Status::Ok();
    std::thread other([&] {
      b_status = b->Begin();
      if (b_status.ok()) b_status = b->TakeBuyersTurns(std::vector<std::string>{y});
      if (b_status.ok()) b_status = RecordInGroup(*b, on_b, clock, order, y, prepare);
      if (b_status.ok()) b_status = b->Commit();
      if (!b_status.ok()) (void)b->Rollback();
      b_done = true;
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    EXPECT_FALSE(b_done);  // its insert waits for a's uncommitted key
    ASSERT_TRUE(a->Release().ok());
    ASSERT_TRUE(a->Commit().ok());
    other.join();
    EXPECT_TRUE(b_status.unavailable()) << b_status.message();
    EXPECT_THAT(b_status.message(), ::testing::HasSubstr("recorded by another daemon meanwhile"));

    ASSERT_TRUE(b->Begin().ok());
    ASSERT_TRUE(b->TakeBuyersTurns(std::vector<std::string>{y}).ok());
    IngestOutcome again;
    ASSERT_TRUE(RecordInGroup(*b, on_b, clock, order, y, prepare, &again).ok());
    ASSERT_TRUE(b->Commit().ok());
    EXPECT_EQ(again.kind, IngestOutcome::Kind::kConflict);
    EXPECT_EQ(again.conflict_field, "buyer_id");
    EXPECT_EQ(Count("SELECT COUNT(*) FROM purchases WHERE order_id = '" + order + "'"), 1);
  }
}

}  // namespace
}  // namespace tp
