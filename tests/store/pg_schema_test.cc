// The PostgreSQL store's schema where several daemons share one
// database: migrations at once, under a statement timeout, from an older
// schema with what it holds, and a newer schema refused.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "pg/connection.h"
#include "pg_server.h"
#include "store/pg/schema.h"
#include "store/pg_store.h"
#include "store/pg_store_fixture.h"

namespace tp {
namespace {

using testing::PgStoreTest;

TEST_F(PgStoreTest, DaemonsStartingTogetherMigrateOnce) {
  std::vector<std::thread> threads;
  std::atomic<int> opened{0};
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back([&] {
      auto store = PgStore::Open(db_->url(), rules_);
      EXPECT_TRUE(store.ok()) << store.status().message();
      if (store.ok() && (*store)->SchemaVersion().value() == PgStore::kSchemaVersion) ++opened;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(opened, 6);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM schema_version"), 1);
}

// A statement timeout on the database (as managed servers set) ends
// neither the wait for another daemon's migration nor a migration.
TEST_F(PgStoreTest, AMigrationWaitsWhateverTheDatabasesStatementTimeout) {
  auto holder = pg::Connection::Open(db_->url(), "test");
  holder->Exec(
      "DO $$BEGIN EXECUTE format('ALTER DATABASE %I SET statement_timeout = ''200ms''', "
      "current_database()); END$$");
  holder->Exec("BEGIN");
  holder->Exec("SELECT pg_advisory_xact_lock(7305861230001)");  // another daemon migrating
  std::atomic<bool> opened{false};
  std::thread start([&] {
    auto store = PgStore::Open(db_->url(), rules_);
    EXPECT_TRUE(store.ok()) << store.status().message();
    opened = store.ok();
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  EXPECT_FALSE(opened);  // still waiting
  holder->Exec("COMMIT");
  start.join();
  EXPECT_TRUE(opened);
  EXPECT_EQ(Count("SELECT MAX(version) FROM schema_version"), pgstore::kSchemaVersion);
}

TEST_F(PgStoreTest, AnOlderSchemaIsMigratedWithWhatItHolds) {
  {
    auto conn = pg::Connection::Open(db_->url(), "test");
    ASSERT_TRUE(pgstore::Migrate(*conn, 2).ok());
    conn->Exec("INSERT INTO buyers (buyer_id, created_at) VALUES ('b1', 1)");
    // What a failed CREATE INDEX CONCURRENTLY of schema 8's index leaves:
    // an invalid index of its name (here another's, marked so).
    conn->Exec("CREATE INDEX touchpoints_pending_by_buyer ON touchpoints(id)");
    conn->Exec(
        "UPDATE pg_index SET indisvalid = false "
        "WHERE indexrelid = 'touchpoints_pending_by_buyer'::regclass");
    // And of schema 9's.
    conn->Exec("CREATE INDEX touchpoints_firing_order ON touchpoints(id)");
    conn->Exec(
        "UPDATE pg_index SET indisvalid = false "
        "WHERE indexrelid = 'touchpoints_firing_order'::regclass");
  }
  // The foreign keys schemas 3 and 4 drop (a touchpoint's, and those to
  // it), and the index and key schema 5 drops.
  const std::string dropped =
      "SELECT COUNT(*) FROM pg_constraint WHERE conname IN ('touchpoints_purchase_fkey', "
      "'touchpoints_buyer_fkey', 'touchpoint_history_touchpoint_fkey', "
      "'queue_messages_touchpoint_fkey', 'deliveries_touchpoint_fkey', "
      "'touchpoint_history_pkey')";
  const std::string dropped_index =
      "SELECT COUNT(*) FROM pg_indexes WHERE indexname = 'queue_messages_by_touchpoint'";
  EXPECT_EQ(Count(dropped), 6);
  EXPECT_EQ(Count(dropped_index), 1);
  auto store = MustOpen();
  EXPECT_EQ(store->SchemaVersion().value(), pgstore::kSchemaVersion);
  EXPECT_EQ(Count(dropped_index), 0);
  // Schema 6's claim frontier, schema 8's index of the pending by buyer,
  // schemas 9 and 10's pending order and the sweep's place with a buyer.
  EXPECT_EQ(
      Count("SELECT COUNT(*) FROM pg_sequences WHERE sequencename = 'touchpoints_claimed_to'"), 1);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM pg_index i JOIN pg_indexes x ON x.indexname = "
                  "'touchpoints_pending_by_buyer' WHERE i.indexrelid = "
                  "'touchpoints_pending_by_buyer'::regclass AND i.indisvalid AND x.indexdef LIKE "
                  "'%(buyer) WHERE (state = 0)'"),
            1);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM pg_index i JOIN pg_indexes x ON x.indexname = "
                  "'touchpoints_pending' WHERE i.indexrelid = 'touchpoints_pending'::regclass AND "
                  "i.indisvalid AND x.indexdef LIKE '%(next_at, due_at, buyer, cadence_order, "
                  "step_order, id) WHERE (state = 0)'"),
            1);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM pg_indexes WHERE indexname = 'touchpoints_firing_order'"),
            0);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM information_schema.columns WHERE table_name = "
                  "'planning' AND column_name = 'buyer'"),
            1);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM buyers WHERE buyer_id = 'b1'"), 1);
  EXPECT_EQ(Count(dropped), 0);
  // The rest stay.
  EXPECT_EQ(Count("SELECT COUNT(*) FROM pg_constraint WHERE conname IN ('purchases_buyer_fkey', "
                  "'events_buyer_fkey')"),
            2);
}

TEST_F(PgStoreTest, ANewerSchemaIsRefused) {
  MustOpen();
  auto conn = pg::Connection::Open(db_->url(), "test");
  conn->Exec("UPDATE schema_version SET version = 99");
  auto store = PgStore::Open(db_->url(), rules_);
  ASSERT_FALSE(store.ok());
  EXPECT_THAT(store.status().message(), ::testing::HasSubstr("newer than this build"));
}

}  // namespace
}  // namespace tp
