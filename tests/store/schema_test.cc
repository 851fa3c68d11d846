// Migrations (store/schema.h): every earlier file comes forward with its
// data; a newer one is refused.
#include "store/store_test.h"

namespace tp {
namespace {

TEST_F(SqliteStoreTest, MigratesAnEmptyFileToTheCurrentVersion) {
  auto store = MustOpen();
  ASSERT_NE(store, nullptr);
  auto version = store->SchemaVersion();
  ASSERT_TRUE(version.ok());
  EXPECT_EQ(*version, SqliteStore::kSchemaVersion);
  store.reset();
  EXPECT_EQ(Count("SELECT COUNT(*) FROM schema_version"), 1);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM sqlite_master WHERE name = 'touchpoint_history'"), 1);
  // Reopening is a no-op migration.
  store = MustOpen();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(*store->SchemaVersion(), SqliteStore::kSchemaVersion);
}

TEST_F(SqliteStoreTest, MigratesEveryEarlierVersionForwardKeepingData) {
  for (int from = 0; from < SqliteStore::kSchemaVersion; ++from) {
    std::filesystem::remove(Path());
    ASSERT_TRUE(SqliteStore::MigrateTo(Path(), from).ok());
    auto store = MustOpen();
    ASSERT_NE(store, nullptr) << "from version " << from;
    EXPECT_EQ(*store->SchemaVersion(), SqliteStore::kSchemaVersion) << "from version " << from;
  }
  // Data written at the current version survives a reopen.
  {
    auto store = MustOpen();
    Purchase p{"o1", "b1", "daily", 1, 10, At("2026-11-01T10:00:00+08:00"), ""};
    ASSERT_TRUE(store->AddPurchase(p, rules_->timezone, 0, {}, p.purchased_at).ok());
  }
  auto store = MustOpen();
  EXPECT_EQ(
      Match(*store, Purchase{"o1", "b1", "daily", 1, 10, At("2026-11-01T10:00:00+08:00"), ""}).kind,
      PurchaseMatch::Kind::kSame);
}

TEST_F(SqliteStoreTest, RefusesADatabaseFromANewerBuild) {
  ASSERT_TRUE(SqliteStore::MigrateTo(Path(), SqliteStore::kSchemaVersion).ok());
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(Path().c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "UPDATE schema_version SET version = 99", nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  auto store = SqliteStore::Open(Path(), rules_);
  ASSERT_FALSE(store.ok());
  EXPECT_THAT(store.status().message(), HasSubstr("schema version 99 is newer"));
}

TEST_F(SqliteStoreTest, Version1BlobStringsBecomeTextSoResendsStayDuplicates) {
  // Version 1 bound its strings as BLOBs. Build such a file by hand.
  auto store = OpenFrom(
      1,
      "INSERT INTO buyers (buyer_id, created_at) VALUES (CAST('b1' AS BLOB), 0);"
      "INSERT INTO purchases (order_id, buyer, product, quantity, amount, purchased_at, timezone, "
      "zone, tier, attributes, received_at) VALUES (CAST('o1' AS BLOB), 1, CAST('daily' AS BLOB), "
      "1, 10, 1793498400000, CAST('' AS BLOB), CAST('Asia/Shanghai' AS BLOB), "
      "CAST('novice' AS BLOB), NULL, 0);");
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM purchases WHERE typeof(order_id) = 'text' AND "
                  "typeof(zone) = 'text'"),
            1);
  EXPECT_EQ(
      Match(*store, Purchase{"o1", "b1", "daily", 1, 10, At("2026-11-01T10:00:00+08:00"), ""}).kind,
      PurchaseMatch::Kind::kSame);
}

// Version 4 stopped storing touchpoint ids (they are a hash of order id,
// cadence and step): a version 3 file keeps its rows, row ids and history,
// and reports the same ids.
TEST_F(SqliteStoreTest, Version3TouchpointsKeepTheirIdsRowsAndHistory) {
  const std::string id = TouchpointId("o1", "trust", "how-to-wear");
  const std::string sql =
      "INSERT INTO buyers (buyer_id, created_at) VALUES ('b1', 0);"
      "INSERT INTO purchases (order_id, buyer, product, quantity, amount, purchased_at, "
      "timezone, zone, tier, attributes, received_at) VALUES ('o1', 1, 'daily', 1, 10, "
      "1793498400000, '', 'Asia/Shanghai', 'novice', NULL, 0);"
      "INSERT INTO touchpoints (id, tp_id, purchase, buyer, cadence, step, topic, cadence_order, "
      "step_order, cancel_on_repurchase, state, due_at, next_at, fire_at, reason) VALUES "
      "(7, '" +
      id +
      "', 1, 1, 'trust', 'how-to-wear', 'how-to-wear', 0, 0, 1, 1, "
      "1793584800000, 1793584800000, 1793584800004, NULL);"
      "INSERT INTO touchpoint_history (touchpoint, at, state, reason) VALUES "
      "(7, 1793584800004, 1, 'queued on outbox');";
  auto store = OpenFrom(3, sql);
  ASSERT_NE(store, nullptr);
  auto report = store->GetBuyer("b1");
  ASSERT_TRUE(report.ok() && report->has_value());
  ASSERT_EQ((*report)->touchpoints.size(), 1u);
  const TouchpointRecord& t = (*report)->touchpoints[0];
  EXPECT_EQ(t.id, id);
  EXPECT_EQ(t.state, TouchpointState::kFired);
  ASSERT_EQ(t.history.size(), 1u);
  EXPECT_EQ(t.history[0].reason, "queued on outbox");
  store.reset();
  EXPECT_EQ(Count("SELECT COUNT(*) FROM touchpoints WHERE id = 7"), 1);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM pragma_table_info('touchpoints') WHERE name = 'tp_id'"), 0);
}

// A buyer b1 (row 1) with a purchase o1 and its touchpoint row 7, fired at
// 1793584800004, as schemas 9 and 10 hold them.
constexpr std::string_view kBuyerWithAFire =
    "INSERT INTO buyers (buyer_id, created_at) VALUES ('b1', 0);"
    "INSERT INTO purchases (order_id, buyer, product, quantity, amount, purchased_at, "
    "timezone, zone, tier, attributes, received_at) VALUES ('o1', 1, 'daily', 1, 10, "
    "1793498400000, '', 'Asia/Shanghai', 'novice', NULL, 0);"
    "INSERT INTO touchpoints (id, purchase, buyer, cadence, step, topic, cadence_order, "
    "step_order, cancel_on_repurchase, state, due_at, next_at, fire_at, reason) VALUES "
    "(7, 1, 1, 'trust', 'how-to-wear', 'how-to-wear', 0, 0, 1, 1, "
    "1793584800000, 1793584800000, 1793584800004, NULL);";

// Version 10 indexes each buyer's fired touchpoints and events: a version 9
// file's are in the indexes, so an event is credited to the touchpoint
// fired before it, and the cap counts it.
TEST_F(SqliteStoreTest, Version9FiredTouchpointsAreFoundForCreditAfterTheUpgrade) {
  const std::string sql =
      std::string(kBuyerWithAFire) +
      "INSERT INTO touchpoints (id, purchase, buyer, cadence, step, topic, cadence_order, "
      "step_order, cancel_on_repurchase, state, due_at, next_at, fire_at, reason) VALUES "
      "(8, 1, 1, 'trust', 'comfort-check', 'comfort-check', 0, 1, 1, 0, "
      "1793757600000, 1793757600000, NULL, NULL);"
      "INSERT INTO events (event_id, buyer, type, at, touchpoint_id, credited, attributes, "
      "received_at) VALUES ('e1', 1, 'read', 1793584900000, NULL, 7, NULL, 0);";
  auto store = OpenFrom(9, sql);
  ASSERT_NE(store, nullptr);
  auto last = store->LastFiredBefore("b1", Instant(Millis(1793584900000)));
  ASSERT_TRUE(last.ok()) << last.status().message();
  EXPECT_EQ(last->buyer, 1u);
  ASSERT_TRUE(last->touchpoint.has_value());
  EXPECT_EQ(last->touchpoint->handle, 7u);
  EXPECT_EQ(last->touchpoint->cadence, "trust");
  EXPECT_EQ(last->touchpoint->zone, FindZone("Asia/Shanghai"));
  // Not before it fired.
  last = store->LastFiredBefore("b1", Instant(Millis(1793584800004)));
  ASSERT_TRUE(last.ok());
  EXPECT_FALSE(last->touchpoint.has_value());
  store.reset();
  EXPECT_EQ(Count("SELECT COUNT(*) FROM touchpoints INDEXED BY touchpoints_fired "
                  "WHERE buyer = 1 AND state IN (1, 5)"),
            1);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM events INDEXED BY events_by_buyer WHERE buyer = 1 AND "
                  "credited = 7"),
            1);
}

// Version 11 records where a fired touchpoint went: a version 10 file's
// fires have none recorded, and are read so (every cap counts them).
TEST_F(SqliteStoreTest, Version10FiresHaveNoSinksRecordedAfterTheUpgrade) {
  auto store = OpenFrom(10, std::string(kBuyerWithAFire));
  ASSERT_NE(store, nullptr);
  DueTouchpoint probe{7, {}};
  auto fired = store->FiredBetween(probe, Instant(Millis(1793584800000)),
                                   Instant(Millis(1793584900000)), true);
  ASSERT_TRUE(fired.ok()) << fired.status().message();
  ASSERT_EQ(fired->size(), 1u);
  EXPECT_FALSE((*fired)[0].sinks.has_value());
  store.reset();
  EXPECT_EQ(Count("SELECT COUNT(*) FROM touchpoints INDEXED BY touchpoints_fired "
                  "WHERE buyer = 1 AND state IN (1, 5) AND sinks IS NULL"),
            1);
}

// Version 5 moved queued events to their own table and keeps only a lease's
// random part as a message's receipt: a version 4 file's messages keep their
// events, and a receipt handed out before the upgrade still acks.
TEST_F(SqliteStoreTest, Version4QueueMessagesKeepTheirEventsAndReceipts) {
  const std::string sql =
      "INSERT INTO buyers (buyer_id, created_at) VALUES ('b1', 0);"
      "INSERT INTO purchases (order_id, buyer, product, quantity, amount, purchased_at, "
      "timezone, zone, tier, attributes, received_at) VALUES ('o1', 1, 'daily', 1, 10, "
      "1793498400000, '', 'Asia/Shanghai', 'novice', NULL, 0);"
      "INSERT INTO touchpoints (id, purchase, buyer, cadence, step, topic, cadence_order, "
      "step_order, cancel_on_repurchase, state, due_at, next_at, fire_at, reason) VALUES "
      "(7, 1, 1, 'trust', 'how-to-wear', 'how-to-wear', 0, 0, 1, 1, 1793584800000, "
      "1793584800000, 1793584800004, NULL), "
      "(8, 1, 1, 'trust', 'day-3', 'day-3', 0, 1, 1, 1, 1793757600000, 1793757600000, "
      "1793757600000, NULL);"
      "INSERT INTO queue_messages (id, queue, touchpoint, event, visible_at, receipt, "
      "deliveries, enqueued_at) VALUES "
      "(5, 'outbox', 7, '{\"n\":7}', 4102444800000, '5.0123456789abcdef01234567', 1, "
      "1793584800004), "
      "(6, 'outbox', 8, '{\"n\":8}', 1793757600000, NULL, 0, 1793757600000);";
  auto store = OpenFrom(4, sql);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM queue_events WHERE messages = 1"), 2);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM pragma_table_info('queue_messages') WHERE name = "
                  "'event'"),
            0);
  // Version 6 counts an event's messages instead of indexing them.
  EXPECT_EQ(Count("SELECT COUNT(*) FROM sqlite_schema WHERE name = "
                  "'queue_messages_by_touchpoint'"),
            0);

  // A touchpoint fired now, beside them: its event is made, not stored.
  FakeClock clock(At("2026-11-03T10:00:00+08:00"));
  Scheduler scheduler(*store, clock, rules_);
  ASSERT_TRUE(scheduler.Ingest({"o2", "b2", "daily", 2, 240, clock.Now(), ""}).ok());
  clock.Set(At("2026-11-04T10:00:00+08:00"));
  ASSERT_EQ(scheduler.RunDue()->fired, 1u);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM queue_events"), 2);

  const Instant now = clock.Now();
  auto leased = store->Lease("outbox", 10, std::chrono::seconds(30), now);
  ASSERT_TRUE(leased.ok()) << leased.status().message();
  ASSERT_EQ(leased->size(), 2u);  // message 5 is still leased
  EXPECT_EQ((*leased)[0].event, R"({"n":8})");
  EXPECT_EQ((*leased)[0].receipt.substr(0, 2), "6.");
  EXPECT_EQ(nlohmann::json::parse((*leased)[1].event)["data"]["order_id"], "o2");
  std::vector<std::string> receipts{"5.0123456789abcdef01234567", (*leased)[0].receipt,
                                    (*leased)[1].receipt};
  EXPECT_EQ(*store->Ack("outbox", receipts, now), 3);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM queue_events"), 0);
  EXPECT_EQ(*store->QueueDepth("outbox"), 0);
}

}  // namespace
}  // namespace tp
