#include "store/sqlite_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "core/ids.h"
#include "harness.h"
#include "planner/replan.h"
#include "simulate/csv.h"
#include "store/store_reader.h"
#include "temp_dir.h"

namespace tp {
namespace {

using testing::At;
using ::testing::HasSubstr;
using testing::kBriefConfig;

class SqliteStoreTest : public ::testing::Test {
 protected:
  std::string Path() const { return dir_.path() + "/tp.db"; }

  std::unique_ptr<SqliteStore> MustOpen(std::shared_ptr<const Rules> rules = nullptr) {
    auto store = SqliteStore::Open(Path(), rules ? rules : rules_);
    EXPECT_TRUE(store.ok()) << store.status().message();
    return store.ok() ? std::move(*store) : nullptr;
  }

  // What the store says of `p`'s order id, `p` in its zone (or the default).
  PurchaseMatch Match(SqliteStore& store, const Purchase& p) {
    auto match =
        store.MatchPurchase(p, p.timezone.empty() ? rules_->timezone : FindZone(p.timezone));
    EXPECT_TRUE(match.ok()) << match.status().message();
    return match.ok() ? *match : PurchaseMatch{};
  }

  // Re-plans every pending touchpoint under `rules` (already the store's),
  // step after step as the daemon does.
  static ReplanCounts ReplanAll(SqliteStore& store, const Rules& rules, Instant now) {
    ReplanCounts total;
    EXPECT_TRUE(store.SetPlanning(PlanningFingerprint(rules), true).ok());
    for (int i = 0; i < 100'000; ++i) {
      auto step = store.ReplanSome(std::chrono::steady_clock::now(), now);
      EXPECT_TRUE(step.ok()) << step.status().message();
      if (!step.ok()) break;
      total.Add(step->counts);
      if (step->done) break;
    }
    EXPECT_FALSE(store.Planning()->replanning);
    return total;
  }

  // Runs `sql` on a connection of its own, as an operator's sqlite3 would.
  void EditByHand(const std::string& sql) {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open(Path().c_str(), &db), SQLITE_OK);
    EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK) << sql;
    sqlite3_close(db);
  }

  // First daily purchases of buyers b1, b2, ... (orders ob1, ob2, ...) at
  // the clock's time: each has one touchpoint due a day later.
  static void IngestFirstPurchases(Scheduler& scheduler, const Clock& clock, int buyers) {
    for (int i = 1; i <= buyers; ++i) {
      const std::string b = "b" + std::to_string(i);
      ASSERT_TRUE(scheduler.Ingest({"o" + b, b, "daily", 2, 240, clock.Now(), ""}).ok());
    }
  }

  // IngestFirstPurchases(), then a day later their first steps fired into
  // the queue.
  static void FireFirstSteps(Scheduler& scheduler, FakeClock& clock, int buyers) {
    IngestFirstPurchases(scheduler, clock, buyers);
    clock.Advance(std::chrono::hours(24));
    auto stats = scheduler.RunDue();
    ASSERT_TRUE(stats.ok());
    ASSERT_EQ(stats->fired, static_cast<std::size_t>(buyers));
  }

  // A file at schema `version` that `sql` filled by hand, as an older build
  // would have, then opened (so migrated) by this one.
  std::unique_ptr<SqliteStore> OpenFrom(int version, const std::string& sql) {
    EXPECT_TRUE(SqliteStore::MigrateTo(Path(), version).ok());
    EditByHand(sql);
    auto store = MustOpen();
    if (store != nullptr) {
      EXPECT_EQ(*store->SchemaVersion(), SqliteStore::kSchemaVersion);
    }
    return store;
  }

  // The brief's config with `sinks` (YAML list items) after its queue.
  static std::shared_ptr<const Rules> WithSinks(const std::string& sinks) {
    std::string yaml(kBriefConfig);
    yaml.replace(yaml.find("\n  - {name: outbox, type: queue}\n"), 32,
                 "\n  - {name: outbox, type: queue}" + sinks);
    return testing::MustLoad(yaml);
  }

  // Counts rows with a raw connection, as an operator's sqlite3 would.
  std::int64_t Count(const std::string& sql) {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open_v2(Path().c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
    sqlite3_stmt* q = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &q, nullptr), SQLITE_OK) << sql;
    std::int64_t n = -1;
    if (sqlite3_step(q) == SQLITE_ROW) n = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    sqlite3_close(db);
    return n;
  }

  testing::TempDir dir_;
  std::shared_ptr<const Rules> rules_ = testing::MustLoad(kBriefConfig);
};

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

TEST_F(SqliteStoreTest, ConflictAndDuplicateIncludeAttributes) {
  auto store = MustOpen();
  Purchase p{"o1",
             "b1",
             "daily",
             2,
             10.5,
             At("2026-11-01T10:00:00+08:00"),
             "Europe/Berlin",
             R"({"channel":"wecom"})"};
  ASSERT_TRUE(store->AddPurchase(p, FindZone("Europe/Berlin"), 0, {}, p.purchased_at).ok());
  EXPECT_EQ(Match(*store, p).kind, PurchaseMatch::Kind::kSame);
  Purchase other = p;
  other.attributes = R"({"channel":"sms"})";
  EXPECT_EQ(Match(*store, other).kind, PurchaseMatch::Kind::kConflict);
  EXPECT_EQ(Match(*store, other).field, "attributes");
  other = p;
  other.quantity = 3;
  EXPECT_EQ(Match(*store, other).kind, PurchaseMatch::Kind::kConflict);
  EXPECT_EQ(Match(*store, other).field, "quantity");
}

TEST_F(SqliteStoreTest, TheDefaultZoneSpeltOutIsTheSameTimezone) {
  auto store = MustOpen();
  Purchase p{"o1", "b1", "daily", 2, 10.5, At("2026-11-01T10:00:00+08:00"), ""};
  ASSERT_TRUE(store->AddPurchase(p, rules_->timezone, 0, {}, p.purchased_at).ok());
  Purchase spelt = p;
  spelt.timezone = "Asia/Shanghai";  // the config's default, which it was planned in
  EXPECT_EQ(Match(*store, spelt).kind, PurchaseMatch::Kind::kSame);
  spelt.timezone = "Europe/Berlin";
  EXPECT_EQ(Match(*store, spelt).kind, PurchaseMatch::Kind::kConflict);
  EXPECT_EQ(Match(*store, spelt).field, "timezone");
}

// The daemon's store must decide exactly as simulate's: replay the brief's
// acceptance example through Scheduler + SqliteStore and compare every line.
TEST_F(SqliteStoreTest, BriefAcceptanceExampleMatchesSimulate) {
  LoadResult loaded = LoadRulesFile(std::string(TP_TEST_DATA) + "/brief/touchpoint.yaml");
  ASSERT_TRUE(loaded.errors.empty());
  auto store = MustOpen(loaded.rules);
  std::ifstream csv(std::string(TP_TEST_DATA) + "/brief/brief-purchases.csv");
  std::string line;
  std::vector<std::string> fields;
  std::getline(csv, line);
  ASSERT_FALSE(SplitCsvLine(line, fields));
  auto parser = PurchaseRowParser::FromHeader(fields, *loaded.rules);
  ASSERT_TRUE(parser.ok());
  std::vector<Purchase> purchases;
  while (std::getline(csv, line)) {
    ASSERT_FALSE(SplitCsvLine(line, fields));
    ASSERT_FALSE(parser->Parse(fields, purchases.emplace_back()));
  }
  std::stable_sort(purchases.begin(), purchases.end(), [](const Purchase& a, const Purchase& b) {
    return a.purchased_at < b.purchased_at;
  });

  FakeClock clock(purchases.front().purchased_at);
  Scheduler scheduler(*store, clock, loaded.rules);
  auto run_until = [&](Instant until) {
    for (;;) {
      auto next = scheduler.NextWakeup();
      ASSERT_TRUE(next.ok());
      if (!*next || **next > until) break;
      clock.Set(std::max(clock.Now(), **next));
      ASSERT_TRUE(scheduler.RunDue().ok());
    }
  };
  std::set<std::string> buyers;
  for (const Purchase& p : purchases) {
    run_until(p.purchased_at);
    clock.Set(std::max(clock.Now(), p.purchased_at));
    ASSERT_TRUE(scheduler.Ingest(p).ok());
    buyers.insert(p.buyer_id);
  }
  run_until(At("2030-01-01T00:00:00Z"));

  std::map<std::string, nlohmann::json> got;
  for (const std::string& buyer : buyers) {
    auto report = store->GetBuyer(buyer);
    ASSERT_TRUE(report.ok() && report->has_value());
    for (const TouchpointRecord& t : (*report)->touchpoints) {
      const Zone* zone = FindZone(t.zone);
      got[t.order_id + "/" + t.topic] = {
          {"buyer_id", buyer},
          {"order_id", t.order_id},
          {"cadence", t.cadence},
          {"topic", t.topic},
          {"tier", t.tier},
          {"product", t.product},
          {"due_at", FormatRfc3339(t.due_at, zone)},
          {"fire_at", t.fire_at ? nlohmann::json(FormatRfc3339(*t.fire_at, zone)) : nullptr},
          {"status", std::string(StateName(t.state))}};
    }
  }
  std::ifstream expected(std::string(TP_TEST_DATA) + "/brief/brief-expected.jsonl");
  std::size_t lines = 0;
  while (std::getline(expected, line)) {
    auto want = nlohmann::json::parse(line);
    want.erase("id");
    const std::string key =
        want["order_id"].get<std::string>() + "/" + want["topic"].get<std::string>();
    ASSERT_TRUE(got.count(key)) << key;
    EXPECT_EQ(got[key], want) << key;
    ++lines;
  }
  EXPECT_EQ(lines, got.size());
  // Every touchpoint is final and has a history entry for how it got there.
  EXPECT_EQ(Count("SELECT COUNT(*) FROM touchpoints WHERE state = 0"), 0);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM touchpoints t WHERE NOT EXISTS (SELECT 1 FROM "
                  "touchpoint_history h WHERE h.touchpoint = t.id)"),
            0);
}

TEST_F(SqliteStoreTest, FiredTouchpointIsQueuedAndLeaseAckVisibilityWork) {
  auto store = MustOpen();
  FakeClock clock(At("2026-11-01T10:00:00+08:00"));
  Scheduler scheduler(*store, clock, rules_);
  Purchase p{"o1", "b1", "daily", 2, 240, clock.Now(), "", R"({"channel":"wecom"})"};
  ASSERT_TRUE(scheduler.Ingest(p).ok());
  clock.Set(At("2026-11-02T10:00:00+08:00"));
  auto stats = scheduler.RunDue();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->fired, 1u);
  EXPECT_EQ(*store->QueueDepth("outbox"), 1);

  auto leased = store->Lease("outbox", 10, std::chrono::seconds(30), clock.Now());
  ASSERT_TRUE(leased.ok());
  ASSERT_EQ(leased->size(), 1u);
  auto event = nlohmann::json::parse((*leased)[0].event);
  EXPECT_EQ(event["type"], "touchpoint.due");
  EXPECT_EQ(event["data"]["topic"], "how-to-wear");
  EXPECT_EQ(event["data"]["fire_at"], "2026-11-02T10:00:00+08:00");
  EXPECT_EQ(event["data"]["attributes"]["channel"], "wecom");
  const std::string first_receipt = (*leased)[0].receipt;

  // Invisible while leased, back after the visibility timeout.
  EXPECT_TRUE(store->Lease("outbox", 10, std::chrono::seconds(30), clock.Now())->empty());
  clock.Advance(std::chrono::seconds(31));
  auto again = store->Lease("outbox", 10, std::chrono::seconds(30), clock.Now());
  ASSERT_EQ(again->size(), 1u);
  EXPECT_EQ((*again)[0].deliveries, 2);
  EXPECT_EQ(nlohmann::json::parse((*again)[0].event)["data"]["id"], event["data"]["id"]);

  // The superseded receipt acks nothing; the current one removes it.
  std::vector<std::string> receipts{first_receipt, "garbage", "12.x"};
  EXPECT_EQ(*store->Ack("outbox", receipts, clock.Now()), 0);
  receipts = {(*again)[0].receipt};
  EXPECT_EQ(*store->Ack("outbox", receipts, clock.Now()), 1);
  EXPECT_EQ(*store->Ack("outbox", receipts, clock.Now()), 0);
  EXPECT_EQ(*store->QueueDepth("outbox"), 0);

  auto report = store->GetBuyer("b1");
  const auto& t = (*report)->touchpoints.front();
  EXPECT_EQ(t.topic, "how-to-wear");
  ASSERT_EQ(t.history.size(), 2u);
  EXPECT_EQ(t.history[0].reason, "queued on outbox");
  EXPECT_EQ(t.history[1].reason, "acked on outbox");
}

// A cadence routed to two queues: each hands out the same event, made from
// the rows (none is stored). Acks take receipts of several leases at once
// and ignore what is not a current receipt of that queue.
TEST_F(SqliteStoreTest, TwoQueuesHandOutTheSameEventAndAckApart) {
  auto rules = WithSinks("\n  - {name: audit, type: queue}\n");
  ASSERT_NE(rules, nullptr);
  auto store = MustOpen(rules);
  FakeClock clock(At("2026-11-01T10:00:00+08:00"));
  Scheduler scheduler(*store, clock, rules);
  ASSERT_TRUE(scheduler.Ingest({"o1", "b1", "daily", 2, 240, clock.Now(), ""}).ok());
  ASSERT_TRUE(scheduler.Ingest({"o2", "b2", "daily", 2, 240, clock.Now(), ""}).ok());
  clock.Set(At("2026-11-02T10:00:00+08:00"));
  ASSERT_EQ(scheduler.RunDue()->fired, 2u);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM queue_messages"), 4);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM queue_events"), 0);

  // Two leases of one message each, in enqueue order.
  auto first = store->Lease("outbox", 1, std::chrono::seconds(30), clock.Now());
  auto second = store->Lease("outbox", 1, std::chrono::seconds(30), clock.Now());
  auto audit = store->Lease("audit", 10, std::chrono::seconds(30), clock.Now());
  ASSERT_TRUE(first.ok() && second.ok() && audit.ok());
  ASSERT_EQ(first->size(), 1u);
  ASSERT_EQ(second->size(), 1u);
  ASSERT_EQ(audit->size(), 2u);
  EXPECT_EQ((*first)[0].event, (*audit)[0].event);
  EXPECT_EQ((*second)[0].event, (*audit)[1].event);
  EXPECT_EQ(nlohmann::json::parse((*first)[0].event)["data"]["order_id"], "o1");

  const std::string& r1 = (*first)[0].receipt;
  const std::string& r2 = (*second)[0].receipt;
  // Not receipts of this queue, a leading zero, an id too long, no random
  // part, a receipt twice: each counts for nothing, and nothing fails.
  std::vector<std::string> receipts{(*audit)[0].receipt,
                                    "0" + r1,
                                    "1234567890123456789.ab",
                                    r1.substr(0, r1.find('.') + 1),
                                    r1,
                                    r1,
                                    r2};
  auto acked = store->Ack("outbox", receipts, clock.Now());
  ASSERT_TRUE(acked.ok()) << acked.status().message();
  EXPECT_EQ(*acked, 2);
  EXPECT_EQ(*store->QueueDepth("outbox"), 0);
  // The audit queue still hands out both events, unchanged.
  clock.Advance(std::chrono::seconds(31));
  auto again = store->Lease("audit", 10, std::chrono::seconds(30), clock.Now());
  ASSERT_EQ(again->size(), 2u);
  EXPECT_EQ((*again)[0].event, (*audit)[0].event);
  EXPECT_EQ((*again)[1].event, (*audit)[1].event);
  receipts = {(*again)[1].receipt, (*again)[0].receipt};
  EXPECT_EQ(*store->Ack("audit", receipts, clock.Now()), 2);
  EXPECT_EQ(*store->QueueDepth("audit"), 0);

  auto report = store->GetBuyer("b1");
  ASSERT_TRUE(report.ok() && report->has_value());
  const auto& history = (*report)->touchpoints.front().history;
  ASSERT_EQ(history.size(), 3u);
  EXPECT_EQ(history[0].reason, "queued on outbox; queued on audit");
  EXPECT_EQ(history[1].reason, "acked on outbox");
  EXPECT_EQ(history[2].reason, "acked on audit");
}

// A message whose event cannot be made (a file edited by hand lost its
// touchpoint) is still handed out, as null, so a consumer can ack it
// instead of the queue sticking on it; the others of the lease are whole.
TEST_F(SqliteStoreTest, AMessageWithoutItsEventIsHandedOutAsNull) {
  auto store = MustOpen();
  FakeClock clock(At("2026-11-01T10:00:00+08:00"));
  Scheduler scheduler(*store, clock, rules_);
  FireFirstSteps(scheduler, clock, 3);
  EditByHand(
      "DELETE FROM touchpoints WHERE id = (SELECT touchpoint FROM queue_messages "
      "ORDER BY id LIMIT 1 OFFSET 1)");
  auto leased = store->Lease("outbox", 10, std::chrono::seconds(30), clock.Now());
  ASSERT_TRUE(leased.ok()) << leased.status().message();
  ASSERT_EQ(leased->size(), 3u);
  EXPECT_EQ(nlohmann::json::parse((*leased)[0].event)["data"]["order_id"], "ob1");
  EXPECT_EQ((*leased)[1].event, "null");
  EXPECT_EQ(nlohmann::json::parse((*leased)[2].event)["data"]["order_id"], "ob3");
  std::vector<std::string> receipts;
  for (const LeasedMessage& m : *leased) receipts.push_back(m.receipt);
  EXPECT_EQ(*store->Ack("outbox", receipts, clock.Now()), 3);
  EXPECT_EQ(*store->QueueDepth("outbox"), 0);
}

// The daemon takes a lease on the store's thread and has a StoreReader
// make its events on another: the same events as Lease() makes, the
// callback on the reader's thread, jobs in order, and a lost touchpoint
// handed out as null.
TEST_F(SqliteStoreTest, AStoreReaderMakesTheEventsLeaseWould) {
  auto store = MustOpen();
  FakeClock clock(At("2026-11-01T10:00:00+08:00"));
  Scheduler scheduler(*store, clock, rules_);
  FireFirstSteps(scheduler, clock, 3);
  auto reader = StoreReader::Open(Path());
  ASSERT_TRUE(reader.ok()) << reader.status().message();

  auto first = store->TakeLease("outbox", 2, std::chrono::seconds(30), clock.Now());
  auto second = store->TakeLease("outbox", 2, std::chrono::seconds(30), clock.Now());
  ASSERT_TRUE(first.ok() && second.ok());
  ASSERT_EQ(first->size(), 2u);
  ASSERT_EQ(second->size(), 1u);
  EXPECT_TRUE((*first)[0].message.event.empty());  // not made yet
  std::mutex mutex;
  std::condition_variable done_cv;
  std::vector<std::vector<LeasedRow>> done;
  const auto caller = std::this_thread::get_id();
  for (auto* leased : {&*first, &*second}) {
    (*reader)->Fill(std::move(*leased), "outbox", [&](StatusOr<std::vector<LeasedRow>> rows) {
      EXPECT_NE(std::this_thread::get_id(), caller);
      ASSERT_TRUE(rows.ok()) << rows.status().message();
      std::lock_guard lock(mutex);
      done.push_back(std::move(*rows));
      done_cv.notify_one();
    });
  }
  {
    std::unique_lock lock(mutex);
    ASSERT_TRUE(done_cv.wait_for(lock, std::chrono::seconds(10), [&] { return done.size() == 2; }));
  }
  ASSERT_EQ(done[0].size(), 2u);
  ASSERT_EQ(done[1].size(), 1u);
  std::map<std::string, std::string> made;  // order id -> event
  for (const auto& rows : done) {
    for (const LeasedRow& r : rows) {
      made[nlohmann::json::parse(r.message.event)["data"]["order_id"]] = r.message.event;
    }
  }
  ASSERT_EQ(made.size(), 3u);

  // Handed out again by the store itself: the same bytes.
  clock.Advance(std::chrono::seconds(31));
  auto again = store->Lease("outbox", 10, std::chrono::seconds(30), clock.Now());
  ASSERT_EQ(again->size(), 3u);
  for (const LeasedMessage& m : *again) {
    EXPECT_EQ(m.event, made[nlohmann::json::parse(m.event)["data"]["order_id"]]);
    EXPECT_EQ(m.deliveries, 2);
  }

  // A touchpoint lost by hand: null, and the rest whole.
  EditByHand(
      "DELETE FROM touchpoints WHERE id = (SELECT touchpoint FROM queue_messages ORDER BY id "
      "LIMIT 1)");
  clock.Advance(std::chrono::seconds(31));
  auto third = store->TakeLease("outbox", 10, std::chrono::seconds(30), clock.Now());
  ASSERT_EQ(third->size(), 3u);
  std::promise<StatusOr<std::vector<LeasedRow>>> filled;
  (*reader)->Fill(std::move(*third), "outbox", [&](StatusOr<std::vector<LeasedRow>> rows) {
    filled.set_value(std::move(rows));
  });
  auto rows = filled.get_future().get();
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ((*rows)[0].message.event, "null");
  EXPECT_EQ((*rows)[1].message.event, made["ob2"]) << (*rows)[1].message.event;
}

// /metrics counts on the reader's thread what the store's own counts say.
TEST_F(SqliteStoreTest, AStoreReaderCountsWhatTheStoreWould) {
  const std::string secret = dir_.path() + "/crm.secret";
  std::ofstream(secret) << "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n";
  auto rules = WithSinks(
      "\n  - {name: crm, type: webhook, url: \"http://127.0.0.1:9/h\", "
      "secret_file: " +
      secret + "}\n  - {name: audit, type: queue}\n");
  ASSERT_NE(rules, nullptr);
  auto store = MustOpen(rules);
  FakeClock clock(At("2026-11-01T10:00:00+08:00"));
  Scheduler scheduler(*store, clock, rules);
  FireFirstSteps(scheduler, clock, 3);
  auto due = store->DueDeliveries("crm", clock.Now(), 10, false);
  ASSERT_EQ(due->size(), 3u);
  DeliveryResult dead{(*due)[0].id,
                      (*due)[0].touchpoint,
                      DeliveryResult::Kind::kDead,
                      clock.Now(),
                      1,
                      clock.Now(),
                      "HTTP 410",
                      "gave up"};
  ASSERT_TRUE(store->RecordDeliveries(std::span(&dead, 1)).ok());
  auto leased = store->Lease("audit", 1, std::chrono::seconds(30), clock.Now());
  std::vector<std::string> receipts{(*leased)[0].receipt};
  ASSERT_EQ(*store->Ack("audit", receipts, clock.Now()), 1);

  auto reader = StoreReader::Open(Path());
  ASSERT_TRUE(reader.ok()) << reader.status().message();
  std::promise<StatusOr<StoreGauges>> counted;
  (*reader)->Count({"outbox", "audit"}, {"crm"},
                   [&](StatusOr<StoreGauges> g) { counted.set_value(std::move(g)); });
  auto gauges = counted.get_future().get();
  ASSERT_TRUE(gauges.ok()) << gauges.status().message();
  EXPECT_EQ(gauges->pending, *store->PendingCount());
  EXPECT_EQ(gauges->pending, 3 * 5);  // six steps each, one fired
  using Counts = std::vector<std::pair<std::string, std::int64_t>>;
  EXPECT_EQ(gauges->queue_messages, (Counts{{"outbox", 3}, {"audit", 2}}));
  EXPECT_EQ(gauges->dead_letters, (Counts{{"crm", 1}}));
  EXPECT_EQ(gauges->outbox, *store->OutboxBySink());
  EXPECT_EQ(gauges->outbox, (Counts{{"crm", 2}}));
}

// Firing trusts the rows TakeDue() read as pending only while nothing was
// written since, by the store or by another connection; otherwise a
// touchpoint no longer pending is left as it is, and queues nothing.
TEST_F(SqliteStoreTest, ATouchpointChangedSinceTakeDueIsNotFired) {
  auto store = MustOpen();
  FakeClock clock(At("2026-11-01T10:00:00+08:00"));
  Scheduler scheduler(*store, clock, rules_);
  IngestFirstPurchases(scheduler, clock, 3);
  clock.Set(At("2026-11-02T10:00:00+08:00"));
  auto fire_all = [&](const std::vector<DueTouchpoint>& due) {
    std::vector<FiringOutcome> outcomes(due.size(), {FiringOutcome::Kind::kFired, clock.Now(), ""});
    return store->ApplyOutcomes(due, outcomes);
  };

  // The store itself changed one (an opt-out).
  auto due = store->TakeDue(clock.Now(), 10);
  ASSERT_TRUE(due.ok());
  ASSERT_EQ(due->size(), 3u);
  ASSERT_TRUE(store->SetOptedOut("b1", true, clock.Now()).ok());
  ASSERT_TRUE(fire_all(*due).ok());
  EXPECT_EQ(*store->QueueDepth("outbox"), 2);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM touchpoints WHERE state = 1"), 2);

  // Another connection changed one.
  clock.Set(At("2026-11-04T10:00:00+08:00"));  // comfort-check, day 3
  due = store->TakeDue(clock.Now(), 10);
  ASSERT_EQ(due->size(), 2u);
  EditByHand("UPDATE touchpoints SET state = 2, reason = 'by hand' WHERE id = " +
             std::to_string((*due)[0].handle));
  Status fired = fire_all(*due);
  ASSERT_TRUE(fired.ok()) << fired.message();
  EXPECT_EQ(*store->QueueDepth("outbox"), 3);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM touchpoints WHERE state = 1"), 3);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM touchpoints WHERE reason = 'by hand'"), 1);

  // Nothing in between: all fire.
  clock.Set(At("2026-11-08T10:00:00+08:00"));  // care-tips, day 7
  due = store->TakeDue(clock.Now(), 10);
  ASSERT_EQ(due->size(), 2u);
  ASSERT_TRUE(fire_all(*due).ok());
  EXPECT_EQ(*store->QueueDepth("outbox"), 5);
}

// A queued event is made when it is handed out, from the rows: it is the
// event the fire made for a push sink, byte for byte, at every hand-out.
TEST_F(SqliteStoreTest, AQueuedEventIsTheEventTheFireMade) {
  auto rules = WithSinks("\n  - {name: events, type: redis, url: \"redis://127.0.0.1:9/0\"}\n");
  ASSERT_NE(rules, nullptr);
  auto store = MustOpen(rules);
  FakeClock clock(At("2026-11-01T10:00:00+08:00"));
  Scheduler scheduler(*store, clock, rules);
  Purchase p{
      "o1", "b1",        "daily",        2,
      240,  clock.Now(), "Europe/Paris", R"({"channel":"wecom","note":"caf\u00e9 \"quoted\""})"};
  ASSERT_TRUE(scheduler.Ingest(p).ok());
  clock.Set(At("2026-11-02T10:00:00.250+01:00"));
  ASSERT_EQ(scheduler.RunDue()->fired, 1u);
  // No event is stored for the queue.
  EXPECT_EQ(Count("SELECT COUNT(*) FROM queue_events"), 0);

  auto pushed = store->DueDeliveries("events", clock.Now(), 10, false);
  ASSERT_TRUE(pushed.ok());
  ASSERT_EQ(pushed->size(), 1u);
  clock.Advance(std::chrono::hours(5));
  auto leased = store->Lease("outbox", 10, std::chrono::seconds(30), clock.Now());
  ASSERT_TRUE(leased.ok()) << leased.status().message();
  ASSERT_EQ(leased->size(), 1u);
  EXPECT_EQ((*leased)[0].event, (*pushed)[0].event);
  auto event = nlohmann::json::parse((*leased)[0].event);
  EXPECT_EQ(event["timestamp"], "2026-11-02T09:00:00.250Z");
  EXPECT_EQ(event["data"]["fire_at"], "2026-11-02T10:00:00.250+01:00");
  EXPECT_EQ(event["data"]["attributes"]["note"], "caf\u00e9 \"quoted\"");

  clock.Advance(std::chrono::seconds(31));
  auto again = store->Lease("outbox", 10, std::chrono::seconds(30), clock.Now());
  ASSERT_EQ(again->size(), 1u);
  EXPECT_EQ((*again)[0].event, (*pushed)[0].event);
}

// A reload that changes a purchase's tier changes what is still pending,
// not what has fired: a queued event keeps the tier it fired with.
TEST_F(SqliteStoreTest, AFiredTouchpointKeepsItsTierWhenAReloadChangesThePurchases) {
  auto store = MustOpen();
  FakeClock clock(At("2026-11-01T10:00:00+08:00"));
  Scheduler scheduler(*store, clock, rules_);
  ASSERT_TRUE(scheduler.Ingest({"o1", "b1", "daily", 2, 240, clock.Now(), ""}).ok());
  clock.Set(At("2026-11-02T10:00:00+08:00"));
  ASSERT_EQ(scheduler.RunDue()->fired, 1u);
  auto before = store->Lease("outbox", 10, std::chrono::seconds(30), clock.Now());
  ASSERT_EQ(before->size(), 1u);
  EXPECT_EQ(nlohmann::json::parse((*before)[0].event)["data"]["tier"], "novice");

  std::string yaml(kBriefConfig);
  const std::string newbie = "{name: newbie, min_purchases: 2}";
  yaml.replace(yaml.find(newbie), newbie.size(), "{name: newbie, min_purchases: 1}");
  auto reloaded = testing::MustLoad(yaml);
  ASSERT_NE(reloaded, nullptr);
  store->SetRules(reloaded);
  ReplanAll(*store, *reloaded, clock.Now());
  EXPECT_EQ(Count("SELECT COUNT(*) FROM purchases WHERE tier = 'newbie'"), 1);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM touchpoints WHERE tier IS NOT NULL"), 1);

  clock.Advance(std::chrono::seconds(31));
  auto after = store->Lease("outbox", 10, std::chrono::seconds(30), clock.Now());
  ASSERT_EQ(after->size(), 1u);
  EXPECT_EQ((*after)[0].event, (*before)[0].event);
  auto report = store->GetBuyer("b1");
  ASSERT_TRUE(report.ok() && report->has_value());
  EXPECT_EQ((*report)->tier, "newbie");
  for (const auto& t : (*report)->touchpoints) {
    EXPECT_EQ(t.tier, t.state == TouchpointState::kFired ? "novice" : "newbie") << t.topic;
  }
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
    ASSERT_TRUE(
        scheduler.Ingest({"o" + n, "b" + n, "daily", 2, 240, clock.Now(), "", attributes}).ok());
  }
  // Over 30 MB went through the WAL; SQLite alone would have kept it near
  // 4 MB, the thread and the writer's backstop within about 16 MB.
  EXPECT_GT(std::filesystem::file_size(Path()), 30u << 20);
  EXPECT_LT(std::filesystem::file_size(Path() + "-wal"), 24u << 20);
}

TEST_F(SqliteStoreTest, OptOutSuppressesWithHistoryAndPersists) {
  {
    auto store = MustOpen();
    FakeClock clock(At("2026-11-01T10:00:00+08:00"));
    Scheduler scheduler(*store, clock, rules_);
    ASSERT_TRUE(scheduler.Ingest({"o1", "b1", "daily", 1, 10, clock.Now(), ""}).ok());
    ASSERT_TRUE(scheduler.OptOut("b1").ok());
  }
  auto store = MustOpen();
  auto report = store->GetBuyer("b1");
  ASSERT_TRUE(report.ok() && report->has_value());
  EXPECT_TRUE((*report)->opted_out);
  ASSERT_EQ((*report)->touchpoints.size(), 6u);
  for (const auto& t : (*report)->touchpoints) {
    EXPECT_EQ(t.state, TouchpointState::kSuppressed);
    EXPECT_EQ(t.reason, "opted out");
    ASSERT_EQ(t.history.size(), 1u);
  }
  EXPECT_EQ(*store->NextWakeup(), std::nullopt);
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

constexpr std::string_view kPushSinks = R"(
  - {name: crm, type: webhook, url: "http://127.0.0.1:9/hooks", secret_file: SECRET}
  - {name: events, type: redis, url: "redis://127.0.0.1:9/0"}
)";

TEST_F(SqliteStoreTest, OutboxRetriesDeadLettersAndReplays) {
  const std::string secret = dir_.path() + "/crm.secret";
  std::ofstream(secret) << "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n";
  std::string sinks(kPushSinks);
  sinks.replace(sinks.find("SECRET"), 6, secret);
  auto rules = WithSinks(sinks);
  ASSERT_NE(rules, nullptr);
  auto store = MustOpen(rules);
  FakeClock clock(At("2026-11-01T10:00:00+08:00"));
  Scheduler scheduler(*store, clock, rules);
  ASSERT_TRUE(scheduler.Ingest({"o1", "b1", "daily", 2, 240, clock.Now(), ""}).ok());
  clock.Set(At("2026-11-02T10:00:00+08:00"));
  ASSERT_EQ(scheduler.RunDue()->fired, 1u);

  // One fire: a queue message and an outbox event per push sink.
  EXPECT_EQ(*store->QueueDepth("outbox"), 1);
  EXPECT_EQ(*store->OutboxDepth("crm"), 1);
  EXPECT_EQ(*store->OutboxDepth("events"), 1);
  auto due = store->DueDeliveries("crm", clock.Now(), 10, false);
  ASSERT_TRUE(due.ok());
  ASSERT_EQ(due->size(), 1u);
  const OutboxItem item = (*due)[0];
  EXPECT_EQ(item.attempts, 0);
  EXPECT_EQ(nlohmann::json::parse(item.event)["data"]["id"], item.touchpoint_id);

  // A failed attempt waits for its next time.
  DeliveryResult retry{item.id,
                       item.touchpoint,
                       DeliveryResult::Kind::kRetry,
                       clock.Now(),
                       1,
                       clock.Now() + std::chrono::seconds(10),
                       "HTTP 503",
                       "attempt 1 failed"};
  ASSERT_TRUE(store->RecordDeliveries(std::span(&retry, 1)).ok());
  EXPECT_TRUE(store->DueDeliveries("crm", clock.Now(), 10, false)->empty());
  EXPECT_EQ(*store->NextDeliveryAfter("crm", clock.Now()), clock.Now() + std::chrono::seconds(10));
  clock.Advance(std::chrono::seconds(10));
  due = store->DueDeliveries("crm", clock.Now(), 10, false);
  ASSERT_EQ(due->size(), 1u);
  EXPECT_EQ((*due)[0].attempts, 1);

  // The last attempt dead-letters it, and the touchpoint is dead.
  DeliveryResult dead{item.id, item.touchpoint, DeliveryResult::Kind::kDead, clock.Now(), 2,
                      {},      "HTTP 400: no",  "dead-lettered on crm"};
  ASSERT_TRUE(store->RecordDeliveries(std::span(&dead, 1)).ok());
  EXPECT_EQ(*store->OutboxDepth("crm"), 0);
  EXPECT_EQ(*store->DeadLetterCount("crm"), 1);
  auto letters = store->DeadLetters("", 0, 10);
  ASSERT_TRUE(letters.ok());
  ASSERT_EQ(letters->size(), 1u);
  EXPECT_EQ((*letters)[0].sink, "crm");
  EXPECT_EQ((*letters)[0].attempts, 2);
  EXPECT_EQ((*letters)[0].last_error, "HTTP 400: no");
  EXPECT_EQ((*letters)[0].touchpoint_id, item.touchpoint_id);
  EXPECT_TRUE(store->DeadLetters("events", 0, 10)->empty());
  EXPECT_TRUE(store->DeadLetters("", (*letters)[0].id, 10)->empty());
  auto report = store->GetBuyer("b1");
  auto fired = std::find_if((*report)->touchpoints.begin(), (*report)->touchpoints.end(),
                            [&](const auto& t) { return t.id == item.touchpoint_id; });
  ASSERT_NE(fired, (*report)->touchpoints.end());
  EXPECT_EQ(fired->state, TouchpointState::kDead);
  EXPECT_EQ(fired->reason, "dead-lettered on crm");
  // A dead-lettered touchpoint still counts against the frequency cap.
  DueTouchpoint probe{static_cast<std::uint64_t>(item.touchpoint), {}};
  EXPECT_EQ(*store->CountFired(probe, clock.Now() - std::chrono::hours(1),
                               clock.Now() + std::chrono::hours(1)),
            1);

  // Replay: waiting again with no failed attempts; the touchpoint is fired.
  EXPECT_EQ(*store->ReplayDeadLetters(999, "", clock.Now()), 0);
  EXPECT_EQ(*store->ReplayDeadLetters((*letters)[0].id, "", clock.Now()), 1);
  EXPECT_EQ(*store->ReplayDeadLetters((*letters)[0].id, "", clock.Now()), 0);
  due = store->DueDeliveries("crm", clock.Now(), 10, false);
  ASSERT_EQ(due->size(), 1u);
  EXPECT_EQ((*due)[0].attempts, 0);
  DeliveryResult ok{
      item.id, item.touchpoint,   DeliveryResult::Kind::kDelivered, clock.Now(), 1, {},
      "",      "delivered to crm"};
  ASSERT_TRUE(store->RecordDeliveries(std::span(&ok, 1)).ok());
  EXPECT_EQ(*store->OutboxDepth("crm"), 0);
  EXPECT_EQ(*store->DeadLetterCount("crm"), 0);
  report = store->GetBuyer("b1");
  fired = std::find_if((*report)->touchpoints.begin(), (*report)->touchpoints.end(),
                       [&](const auto& t) { return t.id == item.touchpoint_id; });
  EXPECT_EQ(fired->state, TouchpointState::kFired);
  std::vector<std::string> reasons;
  for (const auto& h : fired->history) reasons.push_back(h.reason);
  EXPECT_THAT(reasons, ::testing::ElementsAre(
                           "queued on outbox; handed to webhook crm; handed to redis events",
                           "attempt 1 failed", "dead-lettered on crm",
                           "dead letter replayed on crm", "delivered to crm"));
  // A result for an event that is gone (replayed meanwhile, say) is ignored.
  ASSERT_TRUE(store->RecordDeliveries(std::span(&dead, 1)).ok());
  EXPECT_EQ(*store->DeadLetterCount("crm"), 0);
  // The stream's event is still there, in fire order.
  EXPECT_EQ(store->DueDeliveries("events", clock.Now(), 10, true)->size(), 1u);
  auto by_sink = store->OutboxBySink();
  ASSERT_TRUE(by_sink.ok());
  EXPECT_THAT(*by_sink, ::testing::ElementsAre(std::pair<std::string, std::int64_t>("events", 1)));
}

}  // namespace
}  // namespace tp

namespace tp {
namespace {

TEST_F(SqliteStoreTest, RetentionPrunesOnlyFinishedTouchpointsWithNothingLeftToDeliver) {
  auto store = MustOpen();
  FakeClock clock(At("2026-11-01T10:00:00+08:00"));
  Scheduler scheduler(*store, clock, rules_);
  ASSERT_TRUE(scheduler.Ingest({"o1", "b1", "daily", 2, 240, clock.Now(), "", ""}).ok());
  ASSERT_TRUE(scheduler.Ingest({"o2", "b2", "daily", 2, 240, clock.Now(), "", ""}).ok());
  ASSERT_TRUE(scheduler.OptOut("b2").ok());  // six suppressed, due from day 1 to day 30
  clock.Set(At("2026-11-02T10:00:00+08:00"));
  ASSERT_EQ(scheduler.RunDue()->fired, 1u);  // how-to-wear: queued, never acked
  clock.Set(At("2026-11-04T10:00:00+08:00"));
  ASSERT_EQ(scheduler.RunDue()->fired, 1u);  // comfort-check: acked below
  auto leased = store->Lease("outbox", 10, std::chrono::seconds(30), clock.Now());
  ASSERT_EQ(leased->size(), 2u);
  for (const LeasedMessage& m : *leased) {
    if (nlohmann::json::parse(m.event)["data"]["topic"] == "comfort-check") {
      std::vector<std::string> receipts = {m.receipt};
      ASSERT_EQ(*store->Ack("outbox", receipts, clock.Now()), 1);
    }
  }
  const Instant cutoff = At("2026-11-20T00:00:00+08:00");

  // A bounded step: row ids 1 to 3 only (b1's how-to-wear, comfort-check,
  // care-tips).
  auto step = store->PruneFinished(cutoff, 0, 3);
  ASSERT_TRUE(step.ok()) << step.status().message();
  EXPECT_EQ(step->deleted, 1);
  EXPECT_FALSE(step->done);
  EXPECT_EQ(step->next, 3);
  step = store->PruneFinished(cutoff, step->next, 1000);
  ASSERT_TRUE(step.ok());
  EXPECT_EQ(step->deleted, 4);  // b2's four suppressed due before the cutoff
  EXPECT_TRUE(step->done);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM touchpoints WHERE topic = 'how-to-wear'"), 1);  // queued

  // Once acked, the next pass (a later cutoff) takes it.
  for (const LeasedMessage& m : *leased) {
    if (nlohmann::json::parse(m.event)["data"]["topic"] == "how-to-wear") {
      std::vector<std::string> receipts = {m.receipt};
      ASSERT_EQ(*store->Ack("outbox", receipts, clock.Now()), 1);
    }
  }
  step = store->PruneFinished(cutoff + std::chrono::hours(1), 0, 1000);
  ASSERT_TRUE(step.ok());
  EXPECT_EQ(step->deleted, 1);
  store.reset();

  EXPECT_EQ(Count("SELECT COUNT(*) FROM touchpoints"), 12 - 6);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM touchpoints WHERE topic = 'comfort-check'"), 0);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM touchpoints WHERE topic = 'how-to-wear'"), 0);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM touchpoints WHERE state = 0"), 4);  // b1's, untouched
  EXPECT_EQ(Count("SELECT COUNT(*) FROM touchpoint_history WHERE touchpoint NOT IN "
                  "(SELECT id FROM touchpoints)"),
            0);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM purchases"), 2);
}

TEST_F(SqliteStoreTest, BackupWritesAConsistentCopyAndNeverOverwrites) {
  auto store = MustOpen();
  FakeClock clock(At("2026-11-01T10:00:00+08:00"));
  Scheduler scheduler(*store, clock, rules_);
  ASSERT_TRUE(scheduler.Ingest({"o1", "b1", "daily", 2, 240, clock.Now(), "", ""}).ok());
  const std::string copy = dir_.path() + "/copy.db";
  ASSERT_TRUE(SqliteStore::Backup(Path(), copy).ok());  // the store stays open meanwhile
  Status again = SqliteStore::Backup(Path(), copy);
  EXPECT_THAT(again.message(), HasSubstr("exists; remove it or choose another name"));
  EXPECT_THAT(SqliteStore::Backup(dir_.path() + "/none.db", dir_.path() + "/x.db").message(),
              HasSubstr("none.db: No such file or directory"));
  EXPECT_THAT(SqliteStore::Backup(Path(), dir_.path() + "/no/such/dir/x.db").message(),
              HasSubstr("cannot write " + dir_.path() + "/no/such/dir/x.db.partial: No such file"));
  EXPECT_FALSE(std::filesystem::exists(copy + ".partial"));
  EXPECT_EQ(std::filesystem::status(copy).permissions(),
            std::filesystem::status(Path()).permissions());  // 0640, as the daemon made it

  auto restored = SqliteStore::Open(copy, rules_);
  ASSERT_TRUE(restored.ok()) << restored.status().message();
  auto buyer = (*restored)->GetBuyer("b1");
  ASSERT_TRUE(buyer.ok() && buyer->has_value());
  EXPECT_EQ((*buyer)->touchpoints.size(), 6u);
}

}  // namespace
}  // namespace tp
