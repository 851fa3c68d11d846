// Opening, locking and transactions: the database handle (store/database.h)
// and its checkpointer (store/checkpointer.h).
#include <SQLiteCpp/SQLiteCpp.h>

#include <chrono>
#include <thread>

#include "store/store_test.h"

namespace tp {
namespace {

TEST_F(SqliteStoreTest, ASecondOpenOfTheSameFileIsRefused) {
  auto first = MustOpen();
  ASSERT_NE(first, nullptr);
  auto second = SqliteStore::Open(Path(), rules_);
  ASSERT_FALSE(second.ok());
  EXPECT_THAT(second.status().message(), HasSubstr("in use by another touchpointd"));
  first.reset();
  EXPECT_TRUE(SqliteStore::Open(Path(), rules_).ok());
}

TEST_F(SqliteStoreTest, UnwritableLocationIsAClearError) {
  auto store = SqliteStore::Open(dir_.path() + "/missing/dir/tp.db", rules_);
  ASSERT_FALSE(store.ok());
  EXPECT_THAT(store.status().message(), HasSubstr("cannot open database"));
  EXPECT_THAT(store.status().message(), HasSubstr("No such file or directory"));
}

TEST_F(SqliteStoreTest, RolledBackSavepointLeavesNothingWhileTheRestCommits) {
  auto store = MustOpen();
  FakeClock clock(At("2026-11-01T10:00:00+08:00"));
  Scheduler scheduler(*store, clock, rules_);
  ASSERT_TRUE(store->Begin().ok());
  ASSERT_TRUE(store->Savepoint().ok());
  Purchase kept{"kept", "b1", "daily", 1, 10, clock.Now(), ""};
  ASSERT_TRUE(scheduler.Ingest(kept).ok());
  ASSERT_TRUE(store->Release().ok());
  ASSERT_TRUE(store->Savepoint().ok());
  Purchase dropped{"dropped", "b2", "daily", 1, 10, clock.Now(), ""};
  ASSERT_TRUE(scheduler.Ingest(dropped).ok());
  ASSERT_TRUE(store->RollbackTo().ok());
  ASSERT_TRUE(store->Commit().ok());
  EXPECT_EQ(Match(*store, kept).kind, PurchaseMatch::Kind::kSame);
  EXPECT_EQ(Match(*store, dropped).kind, PurchaseMatch::Kind::kNew);
  auto b2 = store->GetBuyer("b2");
  ASSERT_TRUE(b2.ok());
  EXPECT_FALSE(b2->has_value());
  EXPECT_EQ(Count("SELECT COUNT(*) FROM touchpoints"), 6);
}

TEST_F(SqliteStoreTest, AFailingWriteRollsBackTheWholeCall) {
  auto store = MustOpen();
  Purchase p{"o1", "b1", "daily", 1, 10, At("2026-11-01T10:00:00+08:00"), ""};
  PlannedTouchpoint t;
  t.id = TouchpointId("o1", "trust", "how-to-wear");
  t.due_at = t.next_at = p.purchased_at + std::chrono::hours(24);
  const std::vector<PlannedTouchpoint> one{t};
  ASSERT_TRUE(store->AddPurchase(p, rules_->timezone, 0, one, p.purchased_at).ok());
  // A new buyer is inserted, then the order id's UNIQUE constraint fails.
  Purchase again = p;
  again.buyer_id = "b2";
  Status s = store->AddPurchase(again, rules_->timezone, 0, one, p.purchased_at);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("UNIQUE"));
  store.reset();
  EXPECT_EQ(Count("SELECT COUNT(*) FROM touchpoints"), 1);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM buyers"), 1);
}

// Inside the caller's savepoint a call opens none of its own: the caller
// rolls the whole request back.
TEST_F(SqliteStoreTest, InsideASavepointTheCallerRollsBack) {
  auto store = MustOpen();
  Purchase p{"o1", "b1", "daily", 1, 10, At("2026-11-01T10:00:00+08:00"), ""};
  ASSERT_TRUE(store->Begin().ok());
  ASSERT_TRUE(store->Savepoint().ok());
  ASSERT_TRUE(store->AddPurchase(p, rules_->timezone, 0, {}, p.purchased_at).ok());
  Purchase again = p;
  again.buyer_id = "b2";
  ASSERT_FALSE(store->AddPurchase(again, rules_->timezone, 0, {}, p.purchased_at).ok());
  ASSERT_TRUE(store->RollbackTo().ok());
  // After the request's savepoint, calls are atomic on their own again.
  Purchase other{"o2", "b3", "daily", 1, 10, At("2026-11-01T10:00:00+08:00"), ""};
  ASSERT_TRUE(store->AddPurchase(other, rules_->timezone, 0, {}, p.purchased_at).ok());
  Purchase clash = other;
  clash.buyer_id = "b4";
  ASSERT_FALSE(store->AddPurchase(clash, rules_->timezone, 0, {}, p.purchased_at).ok());
  ASSERT_TRUE(store->Commit().ok());
  store.reset();
  EXPECT_EQ(Count("SELECT COUNT(*) FROM purchases"), 1);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM buyers WHERE buyer_id = 'b3'"), 1);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM buyers"), 1);
}

// SQLite's own checkpointing is replaced by a thread of the store's: a
// writer's commits alone still get their pages into the database file.
TEST_F(SqliteStoreTest, CommittedPagesReachTheDatabaseFileInTheBackground) {
  auto store = MustOpen();
  ASSERT_NE(store, nullptr);
  const auto size = [&] { return std::filesystem::file_size(Path()); };
  const auto before = size();
  FakeClock clock(At("2026-11-01T10:00:00+08:00"));
  Scheduler scheduler(*store, clock, rules_);
  // About 2,000 pages of WAL: twice what asks for a checkpoint.
  for (int i = 0; i < 2000; ++i) {
    const std::string n = std::to_string(i);
    ASSERT_TRUE(scheduler.Ingest({"o" + n, "b" + n, "daily", 2, 240, clock.Now(), ""}).ok());
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (size() <= before && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_GT(size(), before);
  // Still one consistent database, as a second connection reads it.
  EXPECT_EQ(Count("SELECT COUNT(*) FROM purchases"), 2000);
}

// A WAL only starts over when a write begins with all of it copied, which a
// checkpoint running beside a steady writer never achieves alone: the WAL
// must still stay bounded while tens of megabytes go through it.
TEST_F(SqliteStoreTest, TheWalStaysBoundedUnderSteadyWrites) {
  auto store = MustOpen();
  ASSERT_NE(store, nullptr);
  FakeClock clock(At("2026-11-01T10:00:00+08:00"));
  Scheduler scheduler(*store, clock, rules_);
  const std::string attributes = R"({"note":")" + std::string(8000, 'x') + R"("})";
  for (int i = 0; i < 4000; ++i) {
    const std::string n = std::to_string(i);
    auto ingested =
        scheduler.Ingest({"o" + n, "b" + n, "daily", 2, 240, clock.Now(), "", attributes});
    ASSERT_TRUE(ingested.ok()) << "purchase " << i << ": " << ingested.status().message();
  }
  // Over 30 MB went through the WAL; SQLite alone would have kept it near
  // 4 MB, the thread and the writer's backstop within about 16 MB.
  EXPECT_GT(std::filesystem::file_size(Path()), 30u << 20);
  EXPECT_LT(std::filesystem::file_size(Path() + "-wal"), 24u << 20);
}

// A call's own transaction waits (the busy timeout) for a write lock that
// another connection holds for a moment, as the checkpointer's does while
// it rereads a WAL header a commit is rewriting: it begins IMMEDIATE. A
// deferred one (a SAVEPOINT outside a transaction) read first, then took
// the lock with its first write, where SQLite calls no busy handler, and
// failed at once with "database is locked": the WAL test above, now and
// then, under load.
TEST_F(SqliteStoreTest, ACallWaitsForAWriteLockHeldForAMoment) {
  auto store = MustOpen();
  ASSERT_NE(store, nullptr);
  FakeClock clock(At("2026-11-01T10:00:00+08:00"));
  Scheduler scheduler(*store, clock, rules_);
  ASSERT_TRUE(scheduler.Ingest({"o0", "b0", "daily", 2, 240, clock.Now(), ""}).ok());
  SQLite::Database other(Path(), SQLite::OPEN_READWRITE);
  other.exec("BEGIN IMMEDIATE");
  std::thread release([&other] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    other.exec("ROLLBACK");
  });
  // A repeat buyer: the call reads the buyer's history before it writes.
  auto ingested = scheduler.Ingest({"o1", "b0", "daily", 2, 240, clock.Now(), ""});
  release.join();
  EXPECT_TRUE(ingested.ok()) << ingested.status().message();
  EXPECT_EQ(Match(*store, Purchase{"o1", "b0", "daily", 2, 240, clock.Now(), ""}).kind,
            PurchaseMatch::Kind::kSame);
}

// Held past the busy timeout (5 s) by another process: the call fails as
// Unavailable (503 with Retry-After: try later), not as a fault (500).
TEST_F(SqliteStoreTest, AWriteLockHeldPastTheBusyTimeoutIsUnavailable) {
  auto store = MustOpen();
  ASSERT_NE(store, nullptr);
  FakeClock clock(At("2026-11-01T10:00:00+08:00"));
  Scheduler scheduler(*store, clock, rules_);
  SQLite::Database other(Path(), SQLite::OPEN_READWRITE);
  other.exec("BEGIN IMMEDIATE");
  auto ingested = scheduler.Ingest({"o1", "b0", "daily", 2, 240, clock.Now(), ""});
  other.exec("ROLLBACK");
  ASSERT_FALSE(ingested.ok());
  EXPECT_TRUE(ingested.status().unavailable()) << ingested.status().message();
  EXPECT_THAT(ingested.status().message(), HasSubstr("locked"));
}

}  // namespace
}  // namespace tp
