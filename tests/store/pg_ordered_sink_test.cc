// An ordered sink (a Redis stream) of the PostgreSQL store where several
// daemons share one database: one deliverer at a time, in order, until its
// session ends or it lets the sink go; the next one starts from the first
// event not delivered.
#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <thread>

#include "harness.h"
#include "pg_server.h"
#include "store/pg_outbox_fixture.h"
#include "store/pg_store.h"
#include "store/values.h"

namespace tp {
namespace {

using testing::PgOutboxTest;
using testing::PgServer;

TEST_F(PgOutboxTest, AnOrderedSinkHasOneDelivererUntilItsSessionEnds) {
  auto a = MustOpen();
  auto b = MustOpen();
  const Instant now = Fire(*a, 3);
  auto a_due = a->DueDeliveries("stream", now, 2, true);
  ASSERT_TRUE(a_due.ok());
  ASSERT_EQ(a_due->size(), 2u);
  EXPECT_LT((*a_due)[0].id, (*a_due)[1].id);
  // The rest wait for A, in order, even those A has not claimed.
  EXPECT_TRUE(Due(*b, now, 100, true).empty());
  a.reset();
  std::vector<OutboxItem> taken;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (taken.empty() && std::chrono::steady_clock::now() < deadline) {
    taken = Due(*b, now, 100, true);
    if (taken.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(taken.size(), 6u);
  for (std::size_t i = 1; i < taken.size(); ++i) EXPECT_LT(taken[i - 1].id, taken[i].id);
  EXPECT_EQ(b->TakenOver(), 2);
}

// An ordered sink's events claimed by a session that has ended, whose
// process id now names a live process this role cannot see the start of
// (here another role's session): the sink's lock holder takes them over
// from the first, in order, rather than sending the later ones first.
TEST_F(PgOutboxTest, AnOrderedSinksDeadClaimsUnderAnInvisibleProcessIdAreTakenInOrder) {
  auto a = OpenAsAnotherRole();
  ASSERT_NE(a, nullptr);
  const Instant now = Fire(*a, 3);
  // A session of the server's superuser: its start is hidden from A's role.
  auto c = pg::Connection::Open(db_->url(), "test");
  c->Exec(
      "UPDATE deliveries SET claim_pid = pg_backend_pid(), claim_start = 1 WHERE id IN "
      "(SELECT id FROM deliveries ORDER BY id LIMIT 2)");
  auto taken = a->DueDeliveries("stream", now, 100, true);
  ASSERT_TRUE(taken.ok()) << taken.status().message();
  ASSERT_EQ(taken->size(), 6u);
  for (std::size_t i = 1; i < taken->size(); ++i) EXPECT_LT((*taken)[i - 1].id, (*taken)[i].id);
  EXPECT_EQ(a->TakenOver(), 2);
}

// A daemon that stops delivering an ordered sink (a reload without it, or
// its circuit open: it cannot reach the stream) lets it go: another daemon
// delivers it from the first event on, those the first had claimed
// included, and nothing counts as taken over.
TEST_F(PgOutboxTest, AnOrderedSinkLetGoIsDeliveredByAnotherFromItsFirstEvent) {
  auto a = MustOpen();
  auto b = MustOpen();
  const Instant now = Fire(*a, 3);
  auto a_due = a->DueDeliveries("stream", now, 2, true);
  ASSERT_TRUE(a_due.ok());
  ASSERT_EQ(a_due->size(), 2u);
  EXPECT_TRUE(Due(*b, now, 100, true).empty());
  // Taken again by the same session (as every pass does): let go once is
  // enough all the same.
  ASSERT_EQ(Due(*a, now, 2, true).size(), 2u);
  ASSERT_TRUE(a->LetGoOfSink("stream").ok());
  ASSERT_TRUE(a->LetGoOfSink("stream").ok());  // nothing held: nothing to do
  auto taken = b->DueDeliveries("stream", now, 100, true);
  ASSERT_TRUE(taken.ok()) << taken.status().message();
  ASSERT_EQ(taken->size(), 6u);
  EXPECT_EQ((*taken)[0].id, (*a_due)[0].id);
  for (std::size_t i = 1; i < taken->size(); ++i) EXPECT_LT((*taken)[i - 1].id, (*taken)[i].id);
  EXPECT_EQ(b->TakenOver(), 0);
  // Now B's: A waits.
  EXPECT_TRUE(Due(*a, now, 100, true).empty());
}

// A daemon whose connection was replaced lets an ordered sink go before
// its new session claimed anything: what its earlier session claimed is
// given up too (nothing of it is in flight), so the next deliverer counts
// none of it as taken over. Then it sees the sink is another daemon's.
TEST_F(PgOutboxTest, AnOrderedSinkLetGoOnANewSessionGivesUpTheEarlierSessionsClaims) {
  auto a = MustOpen();
  const Instant now = Fire(*a, 3);
  auto a_due = a->DueDeliveries("stream", now, 2, true);
  ASSERT_TRUE(a_due.ok()) << a_due.status().message();
  ASSERT_EQ(a_due->size(), 2u);
  auto b = MustOpen();
  EndTheFirstStoresSession();
  ASSERT_TRUE(Reconnected([&] { return a->LetGoOfSink("stream"); }).ok());
  auto taken = Reconnected([&] { return b->DueDeliveries("stream", now, 100, true); });
  ASSERT_TRUE(taken.ok()) << taken.status().message();
  ASSERT_EQ(taken->size(), 6u);
  EXPECT_EQ((*taken)[0].id, (*a_due)[0].id);
  EXPECT_EQ(b->TakenOver(), 0);
  EXPECT_FALSE(b->DeliveredElsewhere("stream"));
  EXPECT_TRUE(Due(*a, now, 100, true).empty());
  EXPECT_TRUE(a->DeliveredElsewhere("stream"));
}

// A daemon whose session was replaced lets a sink go while another daemon
// holds it (here a session of the test's holding its lock): its claims are
// left for that daemon to take over, in order, rather than given up under
// its claim (which would pass over the rows the update locks, and send
// later events first).
TEST_F(PgOutboxTest, AnOrderedSinkLetGoWhileAnotherHoldsItLeavesTheClaimsToBeTakenOver) {
  auto a = MustOpen();
  const Instant now = Fire(*a, 3);
  auto a_due = a->DueDeliveries("stream", now, 2, true);
  ASSERT_TRUE(a_due.ok()) << a_due.status().message();
  ASSERT_EQ(a_due->size(), 2u);
  auto b = MustOpen();
  EndTheFirstStoresSession();
  auto holder = pg::Connection::Open(db_->url(), "test");
  ASSERT_TRUE(holder
                  ->Exec("SELECT pg_try_advisory_lock(hashtextextended('sink:stream', "
                         "7305861230003))")
                  .Bool(0, 0));
  ASSERT_TRUE(Reconnected([&] { return a->LetGoOfSink("stream"); }).ok());
  EXPECT_EQ(Count("SELECT COUNT(*) FROM deliveries WHERE claim_pid IS NOT NULL"), 2);
  holder.reset();  // its lock goes with it
  std::vector<OutboxItem> taken;
  for (int i = 0; i < 100 && taken.empty(); ++i) {  // until its session is gone
    auto due = Reconnected([&] { return b->DueDeliveries("stream", now, 100, true); });
    ASSERT_TRUE(due.ok()) << due.status().message();
    taken = std::move(*due);
    if (taken.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(taken.size(), 6u);
  EXPECT_EQ(taken[0].id, (*a_due)[0].id);
  EXPECT_EQ(taken[1].id, (*a_due)[1].id);
  EXPECT_EQ(b->TakenOver(), 2);
}

}  // namespace
}  // namespace tp
