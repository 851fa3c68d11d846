// The PostgreSQL store where several daemons share one database: claims
// that no two daemons share (touchpoints or buyers), a buyer's touchpoints
// in order, caps held across daemons, and a claim left by a daemon that
// died. Migrations: pg_schema_test.cc; ingest groups: pg_ingest_test.cc;
// lost connections: pg_reconnect_test.cc; re-plans: pg_replan_test.cc.
#include "store/pg_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "harness.h"
#include "pg_server.h"
#include "scheduler/scheduler.h"
#include "store/pg_store_fixture.h"
#include "store/values.h"

namespace tp {
namespace {

using testing::At;
using testing::kConfig;
using testing::PgServer;
using testing::PgStoreTest;

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
  // 40 rows of 20 buyers, all due at once, by buyer: A holds b0's and
  // b1's two rows and b2's first, so B takes both rows of each of the
  // other 17.
  EXPECT_EQ(a_buyers.size(), 3u);
  EXPECT_EQ(b_due->size(), 34u);

  std::vector<FiringOutcome> fired_a(a_due->size(), {FiringOutcome::Kind::kFired, due, {}});
  std::vector<FiringOutcome> fired_b(b_due->size(), {FiringOutcome::Kind::kFired, due, {}});
  ASSERT_TRUE(a->ApplyOutcomes(*a_due, fired_a).ok());
  ASSERT_TRUE(b->ApplyOutcomes(*b_due, fired_b).ok());
  // b2's second step, free again.
  auto rest = b->TakeDue(due, 100);
  ASSERT_TRUE(rest.ok());
  ASSERT_EQ(rest->size(), 1u);
  ASSERT_TRUE(
      b->ApplyOutcomes(*rest, std::vector<FiringOutcome>(1, {FiringOutcome::Kind::kFired, due, {}}))
          .ok());
  EXPECT_EQ(Count("SELECT COUNT(*) FROM touchpoints WHERE state = 1"), 40);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM queue_messages"), 40);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM (SELECT touchpoint FROM touchpoint_history WHERE state = 1 "
                  "GROUP BY touchpoint HAVING COUNT(*) > 1) x"),
            0);
}

// Without caps, nothing decided for a touchpoint depends on its buyer's
// others: a claim locks only its rows, and the other daemon takes the rest,
// the same buyers' included, but for the rows that would fire before an
// earlier row of their buyer the first daemon holds: they wait for it, as
// one daemon fires a buyer's touchpoints in order.
TEST_F(PgStoreTest, WithoutCapsOnlyTheRowsAreClaimedAndABuyersRowsStayInOrder) {
  DropTheCap();
  auto a = MustOpen();
  auto b = MustOpen();
  const Instant at = At("2026-12-04T10:00:00Z");
  Buy(*a, 20, at);
  const Instant due = at + std::chrono::hours(2);
  // Both steps of b0 and b1 and the first of b2 (the rows due at one
  // instant by buyer).
  auto a_due = a->TakeDue(due, 5);
  ASSERT_TRUE(a_due.ok()) << a_due.status().message();
  ASSERT_EQ(a_due->size(), 5u);
  std::set<std::string> a_buyers;
  for (const auto& d : *a_due) a_buyers.insert(std::string(d.view.buyer_id));
  auto b_due = b->TakeDue(due, 100);
  ASSERT_TRUE(b_due.ok()) << b_due.status().message();
  std::set<std::uint64_t> rows;
  for (const auto& d : *a_due) rows.insert(d.handle);
  for (const auto& d : *b_due) {
    EXPECT_TRUE(rows.insert(d.handle).second) << "row " << d.handle << " claimed twice";
    EXPECT_EQ(a_buyers.count(std::string(d.view.buyer_id)), 0u) << d.view.buyer_id;
    // Each row with its own buyer and purchase (read after the rows).
    EXPECT_EQ(
        Count("SELECT COUNT(*) FROM touchpoints t JOIN buyers b ON b.id = t.buyer "
              "JOIN purchases p ON p.id = t.purchase WHERE t.id = " +
              std::to_string(d.handle) + " AND b.buyer_id = '" + std::string(d.view.buyer_id) +
              "' AND t.step = '" + std::string(d.view.step) + "' AND p.zone = 'UTC'"),
        1)
        << d.handle;
    ASSERT_NE(d.view.zone, nullptr);
    EXPECT_EQ(d.view.ready_at, d.view.next_at);
    EXPECT_TRUE(d.view.due_at == at + std::chrono::hours(1) || d.view.due_at == due);
  }
  // b3..b19's two rows each; b2's second row waits for A, and is counted.
  EXPECT_EQ(rows.size(), 39u);
  EXPECT_EQ(b->HeldForOrder(), 1);
  EXPECT_EQ(a->HeldForOrder(), 0);
  const auto fire = [&](PgStore& store, const std::vector<DueTouchpoint>& taken) {
    ASSERT_TRUE(store
                    .ApplyOutcomes(taken, std::vector<FiringOutcome>(
                                              taken.size(), {FiringOutcome::Kind::kFired, due, {}}))
                    .ok());
  };
  fire(*b, *b_due);
  // Still while A holds b2's first row: B does not take its second.
  auto waiting = b->TakeDue(due, 100);
  ASSERT_TRUE(waiting.ok()) << waiting.status().message();
  EXPECT_TRUE(waiting->empty());
  EXPECT_EQ(b->HeldForOrder(), 2);  // each claim counts its own
  fire(*a, *a_due);
  auto rest = b->TakeDue(due, 100);
  ASSERT_TRUE(rest.ok()) << rest.status().message();
  ASSERT_EQ(rest->size(), 1u);
  EXPECT_EQ((*rest)[0].view.buyer_id, "b2");
  EXPECT_EQ((*rest)[0].view.step, "second");
  fire(*b, *rest);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM touchpoints WHERE state = 1"), 40);
}

// However many of a buyer's earlier rows are held elsewhere, the claim's
// rows wait from the first of them: here A holds the buyer's first and
// third rows, and the claim's second row waits as well as its fourth.
TEST_F(PgStoreTest, ABuyersRowsWaitFromTheFirstOfItsEarlierRowsHeldElsewhere) {
  DropTheCap();
  auto a = MustOpen();
  const Instant at = At("2026-12-04T10:00:00Z");
  FakeClock clock(at);
  Scheduler scheduler(*a, clock, rules_);
  // Two purchases 10 minutes apart, each with its two steps due an hour
  // after it.
  for (int i = 0; i < 2; ++i) {
    const Instant bought = at + std::chrono::minutes(10 * i);
    auto out = scheduler.Ingest({"o" + std::to_string(i), "b0", "p", 1, 1, bought, ""});
    ASSERT_TRUE(out.ok()) << out.status().message();
  }
  ASSERT_EQ(Count("SELECT COUNT(*) FROM touchpoints WHERE state = 0"), 4);
  auto conn = pg::Connection::Open(db_->url(), "test");
  conn->Exec("BEGIN");
  conn->Exec(
      "SELECT id FROM touchpoints WHERE id IN (SELECT id FROM touchpoints ORDER BY next_at, id "
      "LIMIT 1) OR id IN (SELECT id FROM touchpoints ORDER BY next_at, id OFFSET 2 LIMIT 1) "
      "FOR NO KEY UPDATE");
  const Instant due = at + std::chrono::hours(3);
  auto taken = a->TakeDue(due, 100);
  ASSERT_TRUE(taken.ok()) << taken.status().message();
  EXPECT_TRUE(taken->empty()) << (*taken)[0].view.step;
  EXPECT_EQ(a->HeldForOrder(), 2);
  conn->Exec("ROLLBACK");
  auto rest = a->TakeDue(due, 100);
  ASSERT_TRUE(rest.ok()) << rest.status().message();
  std::vector<std::string> got;
  for (const auto& d : *rest) got.push_back(std::string(d.view.step));
  EXPECT_THAT(got, ::testing::ElementsAre("first", "second", "first", "second"));
}

// With caps, a claim locks the buyers of its rows too, so the other daemons
// pass over a buyer's rows while one decides them; but two claims can reach
// a buyer's two rows at the same instant, the later one with the buyer (here
// a test's transaction holds the earlier row as the other claim would,
// before it reached the buyer). The later row waits all the same.
TEST_F(PgStoreTest, WithCapsABuyersLaterRowWaitsForAnEarlierOneHeldElsewhere) {
  auto a = MustOpen();
  const Instant at = At("2026-12-04T10:00:00Z");
  Buy(*a, 2, at);
  const Instant due = at + std::chrono::hours(2);
  auto conn = pg::Connection::Open(db_->url(), "test");
  conn->Exec("BEGIN");
  conn->Exec(
      "SELECT t.id FROM touchpoints t JOIN buyers b ON b.id = t.buyer WHERE b.buyer_id = 'b0' "
      "AND t.step = 'first' FOR NO KEY UPDATE OF t");
  auto taken = a->TakeDue(due, 100);
  ASSERT_TRUE(taken.ok()) << taken.status().message();
  std::vector<std::string> got;
  for (const auto& d : *taken)
    got.push_back(std::string(d.view.buyer_id) + "/" + std::string(d.view.step));
  EXPECT_THAT(got, ::testing::ElementsAre("b1/first", "b1/second"));
  EXPECT_EQ(a->HeldForOrder(), 1);  // b0's second
  ASSERT_TRUE(a->ApplyOutcomes(*taken, std::vector<FiringOutcome>(
                                           taken->size(), {FiringOutcome::Kind::kFired, due, {}}))
                  .ok());
  conn->Exec("ROLLBACK");
  auto rest = a->TakeDue(due, 100);
  ASSERT_TRUE(rest.ok()) << rest.status().message();
  got.clear();
  for (const auto& d : *rest)
    got.push_back(std::string(d.view.buyer_id) + "/" + std::string(d.view.step));
  EXPECT_THAT(got, ::testing::ElementsAre("b0/first", "b0/second"));
}

// A buyer's row fired by another daemon at a later time than this pass's
// (that daemon's pass began after this one's, or its clock is ahead): the
// buyer's next row waits until the pass's time reaches it, so that the two
// are fired at times in their order, the order a queue hands them out in.
TEST_F(PgStoreTest, ABuyersRowWaitsForOneFiredLaterThanThePass) {
  DropTheCap();
  auto a = MustOpen();
  auto b = MustOpen();
  const Instant at = At("2026-12-04T10:00:00Z");
  Buy(*a, 2, at);
  const Instant due = at + std::chrono::hours(2);
  // b0's first row, fired 5 ms after B's pass time; b1's, fired an hour
  // after it (a clock an hour ahead: wrong, not waited for), by a daemon
  // that claimed just that row (the test's statement, as a claim of one
  // row would be b0's second).
  auto first = a->TakeDue(due, 1);
  ASSERT_TRUE(first.ok()) << first.status().message();
  ASSERT_EQ(first->size(), 1u);
  EXPECT_EQ((*first)[0].view.buyer_id, "b0");
  EXPECT_EQ((*first)[0].view.step, "first");
  const Instant later = due + std::chrono::milliseconds(5);
  ASSERT_TRUE(a->ApplyOutcomes(
                   *first, std::vector<FiringOutcome>(1, {FiringOutcome::Kind::kFired, later, {}}))
                  .ok());
  auto conn = pg::Connection::Open(db_->url(), "test");
  conn->Exec("UPDATE touchpoints t SET state = 1, fire_at = " +
             std::to_string(sql::Ms(due + std::chrono::hours(1))) +
             " FROM buyers b WHERE b.id = t.buyer AND b.buyer_id = 'b1' AND t.step = 'first'");
  auto early = b->TakeDue(due, 100);
  ASSERT_TRUE(early.ok()) << early.status().message();
  ASSERT_EQ(early->size(), 1u);
  EXPECT_EQ((*early)[0].view.buyer_id, "b1");
  EXPECT_EQ((*early)[0].view.step, "second");
  EXPECT_EQ(b->HeldForOrder(), 1);  // b0's second
  ASSERT_TRUE(b->ApplyOutcomes(
                   *early, std::vector<FiringOutcome>(1, {FiringOutcome::Kind::kFired, due, {}}))
                  .ok());
  auto then = b->TakeDue(later, 100);
  ASSERT_TRUE(then.ok()) << then.status().message();
  ASSERT_EQ(then->size(), 1u);
  EXPECT_EQ((*then)[0].view.buyer_id, "b0");
  EXPECT_EQ((*then)[0].view.step, "second");
}

// Without caps, through a backlog (claims that come back full), a claim
// starts just past the claim frontier, the row where the last full claim
// of any daemon ended, past the rows other daemons' passes hold (rows that
// share the frontier row's due time included); a row left behind it
// (here, by a daemon whose pass ended without deciding) is taken when the
// rows from the frontier on run short, or by the claim from the head each
// daemon makes at least once a second.
TEST_F(PgStoreTest, WithoutCapsAClaimStartsAtTheFrontierAndLeavesNothingBehind) {
  DropTheCap();
  auto b = MustOpen();
  // Each buyer buys at its own minute; its two rows are due an hour later.
  const auto buy = [&](const std::string& buyer, Instant when) {
    FakeClock clock(when);
    Scheduler scheduler(*b, clock, rules_);
    auto out = scheduler.Ingest({"o-" + buyer, buyer, "p", 1, 1, when, ""});
    ASSERT_TRUE(out.ok()) << out.status().message();
    ASSERT_EQ(out->planned, 2);
  };
  const auto fire = [&](PgStore& store, const std::vector<DueTouchpoint>& rows, Instant at) {
    ASSERT_TRUE(store
                    .ApplyOutcomes(rows, std::vector<FiringOutcome>(
                                             rows.size(), {FiringOutcome::Kind::kFired, at, {}}))
                    .ok());
  };
  const Instant at = At("2026-12-04T10:00:00Z");
  for (int i = 0; i < 20; ++i) buy("b" + std::to_string(i), at + std::chrono::minutes(i));
  const auto due_of = [&](int i) { return at + std::chrono::hours(1) + std::chrono::minutes(i); };
  const Instant now = at + std::chrono::hours(3);

  // B's first claim reads from the head: one of b0's rows, all it asked.
  auto first = b->TakeDue(now, 1);
  ASSERT_TRUE(first.ok()) << first.status().message();
  ASSERT_EQ(first->size(), 1u);
  EXPECT_EQ((*first)[0].view.due_at, due_of(0));
  fire(*b, *first, now);
  {
    // A's first claim reads from the head too: b0's other row, b1's two and
    // b2's first, moving the frontier to that row. Its pass ends with its
    // session, deciding none of them.
    auto a = MustOpen();
    auto held = a->TakeDue(now, 4);
    ASSERT_TRUE(held.ok()) << held.status().message();
    ASSERT_EQ(held->size(), 4u);
    EXPECT_EQ((*held)[3].view.due_at, due_of(2));
    EXPECT_EQ((*held)[3].view.step, "first");
  }
  AwaitUnlocked(39);
  // B's next claim, within the second, starts past the frontier: at b2's
  // second row, which has the same due time as the frontier's row. The
  // rows up to it are left behind while there are more past it than it
  // takes; so is b2's second row, which waits for its first.
  auto from = b->TakeDue(now, 3);
  ASSERT_TRUE(from.ok()) << from.status().message();
  ASSERT_EQ(from->size(), 2u);
  EXPECT_EQ((*from)[0].view.due_at, due_of(3));
  EXPECT_EQ((*from)[1].view.due_at, due_of(3));
  fire(*b, *from, now);
  // So does a claim after the clock stepped back (here by an hour), at
  // once: the second it waits for would last the hour. (Not decided: the
  // next claim rolls it back.)
  auto stepped = b->TakeDue(now - std::chrono::hours(1), 4);
  ASSERT_TRUE(stepped.ok()) << stepped.status().message();
  ASSERT_EQ(stepped->size(), 4u);
  EXPECT_EQ((*stepped)[0].view.due_at, due_of(0));
  // A second later B reads from the head again, and takes them first,
  // though there are more past the frontier than it takes.
  const Instant second = now + std::chrono::seconds(1);
  auto behind = b->TakeDue(second, 4);
  ASSERT_TRUE(behind.ok()) << behind.status().message();
  ASSERT_EQ(behind->size(), 4u);
  EXPECT_EQ((*behind)[0].view.due_at, due_of(0));
  EXPECT_EQ((*behind)[1].view.due_at, due_of(1));
  EXPECT_EQ((*behind)[2].view.due_at, due_of(1));
  EXPECT_EQ((*behind)[3].view.due_at, due_of(2));
  EXPECT_EQ((*behind)[3].view.step, "first");
  fire(*b, *behind, second);
  auto rest = b->TakeDue(second, 100);
  ASSERT_TRUE(rest.ok()) << rest.status().message();
  ASSERT_EQ(rest->size(), 33u);  // 40 rows, 7 fired
  EXPECT_EQ((*rest)[0].view.due_at, due_of(2));
  EXPECT_EQ((*rest)[0].view.step, "second");
  for (std::size_t k = 1; k < rest->size(); ++k) {
    EXPECT_LE((*rest)[k - 1].view.next_at, (*rest)[k].view.next_at) << "out of order at " << k;
  }
  fire(*b, *rest, second);

  // Rows behind the frontier are also taken, first, when those from it run
  // short, before the second is up.
  buy("late0", now);
  buy("late1", now + std::chrono::minutes(1));
  const Instant later = now + std::chrono::hours(3);
  auto head = b->TakeDue(later, 1);  // from the head: a row of late0's
  ASSERT_TRUE(head.ok()) << head.status().message();
  ASSERT_EQ(head->size(), 1u);
  fire(*b, *head, later);
  {
    auto a = MustOpen();
    auto held = a->TakeDue(later, 3);  // late0's other row and late1's two
    ASSERT_TRUE(held.ok()) << held.status().message();
    ASSERT_EQ(held->size(), 3u);
  }
  AwaitUnlocked(3);
  auto short_of = b->TakeDue(later, 100);
  ASSERT_TRUE(short_of.ok()) << short_of.status().message();
  ASSERT_EQ(short_of->size(), 3u);
  EXPECT_EQ((*short_of)[0].view.buyer_id, "late0");
  EXPECT_EQ((*short_of)[1].view.buyer_id, "late1");
  EXPECT_EQ((*short_of)[2].view.buyer_id, "late1");
  fire(*b, *short_of, later);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM touchpoints WHERE state = 1"), 44);
}

// More due than one firing pass takes (2,048): while one daemon decides
// its pass, the other takes the rest, but none of the first one's buyers,
// whose second steps it would otherwise fire past the cap.
TEST_F(PgStoreTest, ACapHoldsWhileTwoDaemonsFireAtOnce) {
  auto a = MustOpen();
  auto b = MustOpen();
  const Instant at = At("2026-12-04T10:00:00Z");
  constexpr int kBuyers = 1500;
  Buy(*a, kBuyers, at);
  FakeClock clock(at + std::chrono::hours(2));
  Scheduler on_a(*a, clock, rules_);
  Scheduler on_b(*b, clock, rules_);
  // Both fire at once, again and again, until nothing is due. (A fixed
  // number of passes each was not enough on a busy machine: a pass that
  // finds every due row held by the other takes nothing, and both could
  // use theirs up that way with rows still due.)
  std::atomic<std::size_t> fired{0};
  auto fire = [&](Scheduler& s, PgStore& store) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(1);
    for (;;) {
      auto ran = s.RunDue(1);
      ASSERT_TRUE(ran.ok()) << ran.status().message();
      fired += ran->fired;
      auto next = store.NextWakeup();
      ASSERT_TRUE(next.ok()) << next.status().message();
      if (!*next || **next > clock.Now()) return;
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "still due after a minute";
    }
  };
  std::thread ta([&] { fire(on_a, *a); });
  std::thread tb([&] { fire(on_b, *b); });
  ta.join();
  tb.join();
  // One a day per buyer: each buyer's first fired, its second deferred.
  EXPECT_EQ(fired, static_cast<std::size_t>(kBuyers));
  EXPECT_EQ(Count("SELECT COUNT(*) FROM touchpoints WHERE state = 1"), kBuyers);
  EXPECT_EQ(Count("SELECT COUNT(DISTINCT buyer) FROM touchpoints WHERE state = 1"), kBuyers);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM touchpoints WHERE state = 0 AND next_at > " +
                  std::to_string(clock.Now().time_since_epoch().count())),
            kBuyers);
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
  // Its server process ends the transaction as soon as it reads the
  // closed connection: a moment, not a timeout. (A claim under way at that
  // moment may skip the rows still locked and take the rest; the next
  // claim, which gives the last one up first, takes them all.)
  std::vector<DueTouchpoint> taken;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (taken.size() < 6 && std::chrono::steady_clock::now() < deadline) {
    auto again = b->TakeDue(due, 100);
    ASSERT_TRUE(again.ok()) << again.status().message();
    taken = std::move(*again);
    if (taken.size() < 6) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(taken.size(), 6u);
}

// The advice a daemon gives at start: none while the daemons' locks fit
// the server's lock table; past that, the setting that fits them and a
// quarter more, in steps of 64 (a default server: 64 times 122).
TEST(PgLockTableTest, TheAdviceFitsTheDaemonsLocksAndAQuarterMore) {
  const auto advice = [](std::int64_t daemons, std::int64_t max_locks) {
    return PgStore::LockTableAdvice({.entries = max_locks * 122,
                                     .max_locks_per_transaction = max_locks,
                                     .slots = 122,
                                     .daemons = daemons});
  };
  EXPECT_EQ(advice(3, 64), "");
  EXPECT_THAT(advice(4, 64), ::testing::HasSubstr("raise max_locks_per_transaction to 128 or"));
  EXPECT_THAT(advice(10, 64), ::testing::HasSubstr("to 256 or more"));
  EXPECT_EQ(advice(10, 256), "");
  EXPECT_EQ(advice(0, 0), "");
}

}  // namespace
}  // namespace tp
