// The store's conformance suite: one scenario through the scheduler on each
// backend (MemoryStore, simulate's; SqliteStore; PgStore on a real
// PostgreSQL) must decide every touchpoint alike, and the two databases
// must end up holding the same rows, event texts included; their readers
// must count and report alike.
#include "store/conformance.h"

namespace tp::conformance {
namespace {

TEST(StoreConformanceTest, EveryBackendDecidesAlikeAndTheDatabasesHoldTheSameRows) {
  auto rules = ScenarioRules();
  ASSERT_NE(rules, nullptr);
  RulesInForce in_force(rules);
  const std::vector<Item> items = Scenario(*rules, 80);

  MemoryStore memory(rules);
  memory.TrackTouchpoints();  // as simulate does with events
  const std::vector<std::string> want = RunScenario(memory, nullptr, in_force, items);

  TempDir dir;
  const std::string path = dir.path() + "/tp.db";
  std::vector<std::string> sqlite_log;
  {
    auto store = SqliteStore::Open(path, in_force);
    ASSERT_TRUE(store.ok()) << store.status().message();
    sqlite_log = RunScenario(**store, store->get(), in_force, items);
  }
  auto db = PgServer::Shared().NewDatabase();
  std::vector<std::string> pg_log;
  {
    auto store = PgStore::Open(db->url(), in_force);
    ASSERT_TRUE(store.ok()) << store.status().message();
    pg_log = RunScenario(**store, store->get(), in_force, items);
  }

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

  for (std::size_t i = 0; i < std::min(want.size(), sqlite_log.size()); ++i) {
    ASSERT_EQ(sqlite_log[i], want[i]) << "line " << i << " on SQLite";
  }
  ASSERT_EQ(sqlite_log.size(), want.size());
  for (std::size_t i = 0; i < std::min(want.size(), pg_log.size()); ++i) {
    ASSERT_EQ(pg_log[i], want[i]) << "line " << i << " on PostgreSQL";
  }
  ASSERT_EQ(pg_log.size(), want.size());
  ExpectTheReadersAgree(path, db->url(), *rules, items.back().at);
  for (const char* query : kTables) {
    const auto sqlite_rows = SqliteRows(path, query);
    const auto pg_rows = PgRows(db->url(), query);
    EXPECT_FALSE(sqlite_rows.empty()) << query;
    ASSERT_EQ(pg_rows.size(), sqlite_rows.size()) << query;
    for (std::size_t i = 0; i < pg_rows.size(); ++i) {
      ASSERT_EQ(pg_rows[i], sqlite_rows[i]) << query;
    }
  }
}

}  // namespace
}  // namespace tp::conformance
