// The store's conformance suite: one scenario through the scheduler on each
// backend (MemoryStore, simulate's; SqliteStore; PgStore on a real
// PostgreSQL) must decide every touchpoint alike, and the two databases
// must end up holding the same rows, event texts included; their readers
// must count and report alike.
#include "store/conformance.h"

namespace tp::conformance {
namespace {

// Runs `items` with runs of up to `batch` purchases per group on every
// backend, expecting the same decisions and rows; the decisions.
std::vector<std::string> ExpectEveryBackendAlike(const std::shared_ptr<const Rules>& rules,
                                                 const std::vector<Item>& items, std::size_t batch,
                                                 std::string* repurchased = nullptr) {
  RulesInForce in_force(rules);
  MemoryStore memory(rules);
  memory.TrackTouchpoints();  // as simulate does with events
  const std::vector<std::string> want =
      RunScenario(memory, nullptr, in_force, items, std::nullopt, batch);

  TempDir dir;
  const std::string path = dir.path() + "/tp.db";
  std::vector<std::string> sqlite_log;
  {
    auto store = SqliteStore::Open(path, in_force);
    EXPECT_TRUE(store.ok()) << store.status().message();
    if (!store.ok()) return {};
    sqlite_log = RunScenario(**store, store->get(), in_force, items, std::nullopt, batch);
  }
  auto db = PgServer::Shared().NewDatabase();
  std::vector<std::string> pg_log;
  {
    auto store = PgStore::Open(db->url(), in_force);
    EXPECT_TRUE(store.ok()) << store.status().message();
    if (!store.ok()) return {};
    pg_log = RunScenario(**store, store->get(), in_force, items, std::nullopt, batch);
  }

  for (std::size_t i = 0; i < std::min(want.size(), sqlite_log.size()); ++i) {
    EXPECT_EQ(sqlite_log[i], want[i]) << "line " << i << " on SQLite";
    if (sqlite_log[i] != want[i]) return want;
  }
  EXPECT_EQ(sqlite_log.size(), want.size());
  for (std::size_t i = 0; i < std::min(want.size(), pg_log.size()); ++i) {
    EXPECT_EQ(pg_log[i], want[i]) << "line " << i << " on PostgreSQL";
    if (pg_log[i] != want[i]) return want;
  }
  EXPECT_EQ(pg_log.size(), want.size());
  ExpectTheReadersAgree(path, db->url(), *rules, items.back().at);
  for (const char* query : kTables) {
    const auto sqlite_rows = SqliteRows(path, query);
    const auto pg_rows = PgRows(db->url(), query);
    EXPECT_EQ(pg_rows, sqlite_rows) << query;
    if (std::string_view(query).find("FROM touchpoints") != std::string_view::npos) {
      EXPECT_FALSE(sqlite_rows.empty()) << query;
    }
    if (::testing::Test::HasFailure()) break;
  }
  if (repurchased != nullptr) {
    *repurchased =
        PgRows(db->url(), "SELECT count(*) FROM touchpoints WHERE reason LIKE 'repurchased%'")[0];
  }
  return want;
}

TEST(StoreConformanceTest, EveryBackendDecidesAlikeAndTheDatabasesHoldTheSameRows) {
  auto rules = ScenarioRules();
  ASSERT_NE(rules, nullptr);
  const std::vector<std::string> want = ExpectEveryBackendAlike(rules, Scenario(*rules, 80), 1);

  // The scenario is worth comparing: every kind of outcome happened.
  auto count = [&](const std::string& needle) {
    return std::count_if(want.begin(), want.end(), [&](const std::string& line) {
      return line.find(needle) != std::string::npos;
    });
  };
  EXPECT_GT(count(": 0 20"), 200) << "fires";
  EXPECT_GT(count("frequency cap reached"), 0);
  EXPECT_GT(count(": 1 20"), 0) << "deferrals";
  EXPECT_GT(count("credited yes"), 0);
  EXPECT_GT(count("opted out"), 0);
  EXPECT_GT(count(": 1 tier -1"), 0) << "duplicates";
  EXPECT_GT(count(": 2 tier -1"), 0) << "conflicts";
}

// As the daemon's batcher records requests of many purchases (PostgreSQL
// reads a batch ahead and writes its purchases at once): the scenario in
// runs of 25, and an import of every purchase at once in an order of its
// own, 50 a request, so a batch holds a buyer's purchases out of order,
// repurchases cancelling, duplicates and conflicts.
TEST(StoreConformanceTest, BatchesOfPurchasesAreRecordedAsOneAtATime) {
  auto rules = ScenarioRules();
  ASSERT_NE(rules, nullptr);
  const std::vector<Item> scenario = Scenario(*rules, 80);
  ExpectEveryBackendAlike(rules, scenario, 25);

  std::vector<Item> import;
  const Instant at = At("2027-01-15T00:00:00Z");
  for (const Item& item : scenario) {
    if (item.kind != Item::Kind::kPurchase) continue;
    import.push_back(item);
    import.back().at = at;
  }
  std::shuffle(import.begin(), import.end(), std::mt19937(4));
  std::string repurchased;
  const std::vector<std::string> want = ExpectEveryBackendAlike(rules, import, 50, &repurchased);
  int repurchases = 0;
  for (auto [first, last] : Groups(import, 50)) {
    std::set<std::string> buyers;
    for (std::size_t i = first; i < last; ++i) {
      if (!buyers.insert(import[i].purchase.buyer_id).second) ++repurchases;
    }
  }
  EXPECT_GT(repurchases, 20);
  auto count = [&](const std::string& needle) {
    return std::count_if(want.begin(), want.end(), [&](const std::string& line) {
      return line.find(needle) != std::string::npos;
    });
  };
  EXPECT_NE(repurchased, "0|") << "touchpoints cancelled by a repurchase";
  EXPECT_GT(count(": 1 tier -1"), 0) << "duplicates";
  EXPECT_GT(count(": 2 tier -1"), 0) << "conflicts";
}

// A buyer first named by an event whose id was recorded before (a conflict,
// nothing of the event kept) still gets its number then, on every backend,
// as the databases make its row: the buyers' touchpoints due at one instant
// fire in the order of those numbers, alike everywhere.
TEST(StoreConformanceTest, ABuyerFirstNamedByARepeatedEventIdIsNumberedThen) {
  auto rules = ScenarioRules();
  ASSERT_NE(rules, nullptr);
  const std::string type = rules->engagement_types[0].name;
  const Instant t0 = At("2026-11-02T08:00:00Z");
  const Instant bought = t0 + std::chrono::minutes(5);
  std::vector<Item> items;
  auto event = [&](const char* id, const char* buyer, Instant at) {
    items.push_back({Item::Kind::kEvent, at, {}, EngagementEvent{id, buyer, type, at}});
  };
  auto purchase = [&](const char* order, const char* buyer, Instant at) {
    items.push_back(
        {Item::Kind::kPurchase, at, Purchase{order, buyer, "daily", 1, 100.5, bought, ""}, {}});
  };
  event("event-1", "buyer-z", t0);
  event("event-1", "buyer-a", t0 + std::chrono::minutes(1));  // the id again: a conflict
  purchase("order-m", "buyer-m", bought);
  purchase("order-a", "buyer-a", bought + std::chrono::minutes(1));
  const std::vector<std::string> want = ExpectEveryBackendAlike(rules, items, 1);

  ASSERT_THAT(want, ::testing::Contains("event-1: 2 cancelled 0 credited no"));
  // buyer-a (numbered by the event) before buyer-m at their first instant.
  auto first_fire = [&](const std::string& buyer) {
    return std::find_if(want.begin(), want.end(), [&](const std::string& line) {
      return line.rfind(buyer + " ", 0) == 0 && line.find(": 0 20") != std::string::npos;
    });
  };
  ASSERT_NE(first_fire("buyer-a"), want.end());
  ASSERT_NE(first_fire("buyer-m"), want.end());
  EXPECT_LT(first_fire("buyer-a"), first_fire("buyer-m"));
}

// Requests written as the daemon's batcher writes them, all in one group:
// each in a savepoint, prepared at once, rolled back whole at a conflict.
// What each purchase came to.
std::vector<std::string> RunGroup(ScheduleStore& store, Transactions& txn,
                                  const RulesInForce& rules, Instant now,
                                  const std::vector<std::vector<Purchase>>& requests) {
  FakeClock clock(now);
  Scheduler scheduler(store, clock, rules);
  std::vector<std::string> log;
  EXPECT_TRUE(txn.Begin().ok());
  for (const auto& request : requests) {
    EXPECT_TRUE(txn.Savepoint().ok());
    EXPECT_TRUE(scheduler.PrepareIngest(request).ok());
    bool conflict = false;
    for (const Purchase& p : request) {
      auto out = scheduler.Ingest(p);
      EXPECT_TRUE(out.ok()) << out.status().message();
      if (!out.ok()) return log;
      log.push_back(p.order_id + ": " + std::to_string(static_cast<int>(out->kind)) + " tier " +
                    std::to_string(out->tier) + " planned " + std::to_string(out->planned) +
                    " cancelled " + std::to_string(out->cancelled));
      if (out->kind == IngestOutcome::Kind::kConflict) {
        conflict = true;
        break;
      }
    }
    if (conflict) {
      EXPECT_TRUE(txn.RollbackTo().ok());
      log.push_back("rolled back");
    } else {
      Status released = txn.Release();
      EXPECT_TRUE(released.ok()) << released.message();
    }
  }
  Status committed = txn.Commit();
  EXPECT_TRUE(committed.ok()) << committed.message();
  return log;
}

// What a group keeps between its requests: orders and buyers recorded by
// one request are known to the next, a request rolled back at a conflict
// takes what it held with it, and a buyer id that is also an order id is
// read ahead as both.
TEST(StoreConformanceTest, RequestsOfOneGroupSeeEachOtherAndNotWhatWasRolledBack) {
  auto rules = ScenarioRules();
  ASSERT_NE(rules, nullptr);
  RulesInForce in_force(rules);
  const Instant at = At("2026-11-20T10:00:00Z");
  auto buy = [&](std::string order, std::string buyer, int days_ago, std::int64_t quantity = 2) {
    return Purchase{std::move(order),
                    std::move(buyer),
                    "daily",
                    quantity,
                    120.5,
                    at - std::chrono::hours(24 * days_ago),
                    ""};
  };
  const std::vector<std::vector<Purchase>> requests = {
      // "1001" is an order here and a buyer next.
      {buy("1001", "lin", 40), buy("x1", "1001", 30), buy("x2", "1001", 2)},
      // Repeats of the last request's orders; a repurchase of lin.
      {buy("x1", "1001", 30), buy("1001", "lin", 40), buy("l2", "lin", 5)},
      // A new buyer, then a conflict: the whole request goes.
      {buy("m1", "mei", 3), buy("x2", "1001", 2, 3)},
      // mei again: her first purchase was rolled back, so this one is new
      // and she is a first buyer; x2 as it was is a duplicate.
      {buy("m1", "mei", 3), buy("x2", "1001", 2), buy("m2", "mei", 1)},
  };

  TempDir dir;
  const std::string path = dir.path() + "/tp.db";
  std::vector<std::string> sqlite_log, pg_log;
  {
    auto store = SqliteStore::Open(path, in_force);
    ASSERT_TRUE(store.ok()) << store.status().message();
    sqlite_log = RunGroup(**store, **store, in_force, at, requests);
  }
  auto db = PgServer::Shared().NewDatabase();
  {
    auto store = PgStore::Open(db->url(), in_force);
    ASSERT_TRUE(store.ok()) << store.status().message();
    pg_log = RunGroup(**store, **store, in_force, at, requests);
  }
  EXPECT_EQ(pg_log, sqlite_log);
  EXPECT_THAT(sqlite_log, ::testing::Contains("rolled back"));
  EXPECT_THAT(sqlite_log, ::testing::Contains(::testing::StartsWith("x1: 1 ")));  // duplicate
  EXPECT_THAT(sqlite_log, ::testing::Contains(::testing::StartsWith("x2: 2 ")));  // conflict
  for (const char* query : kTables) {
    EXPECT_EQ(PgRows(db->url(), query), SqliteRows(path, query)) << query;
  }
}

}  // namespace
}  // namespace tp::conformance
