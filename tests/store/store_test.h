// Test support for the SQLite store's tests, a file per concern of
// lib/store: a store on a real file in a temporary folder, opened on the
// brief's rules, with helpers that write or count rows by hand as an
// operator's sqlite3 would.
#pragma once

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
#include "store/sqlite_store.h"
#include "store/store_reader.h"
#include "temp_dir.h"

namespace tp {

// In namespace tp, not an anonymous one: gtest needs the one fixture class
// in every file of the suite.
class SqliteStoreTest : public ::testing::Test {
 protected:
  std::string Path() const { return dir_.path() + "/tp.db"; }

  std::unique_ptr<SqliteStore> MustOpen() { return MustOpen(rules_); }
  std::unique_ptr<SqliteStore> MustOpen(const RulesInForce& rules) {
    auto store = SqliteStore::Open(Path(), rules);
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

  // Re-plans every pending touchpoint under `rules` (already in force),
  // step after step as the daemon does.
  static ReplanCounts ReplanAll(SqliteStore& store, const Rules& rules, Instant now) {
    ReplanCounts total;
    const std::string fingerprint = PlanningFingerprint(rules);
    EXPECT_TRUE(store.SetPlanning(fingerprint, true).ok());
    for (int i = 0; i < 100'000; ++i) {
      auto step =
          store.ReplanSome(ReplanPurchase, fingerprint, std::chrono::steady_clock::now(), now);
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
    EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK)
        << sql << ": " << sqlite3_errmsg(db);
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
    std::string yaml(testing::kBriefConfig);
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

  // Rules a test loads besides the brief's, held for the test's life.
  RulesInForce& InForce(std::shared_ptr<const Rules> rules) {
    return *other_rules_.emplace_back(std::make_unique<RulesInForce>(std::move(rules)));
  }

  testing::TempDir dir_;
  RulesInForce rules_{testing::MustLoad(testing::kBriefConfig)};
  std::vector<std::unique_ptr<RulesInForce>> other_rules_;
};

namespace {

using testing::At;
using ::testing::HasSubstr;
using testing::kBriefConfig;

}  // namespace
}  // namespace tp
