// The fixture of the PostgreSQL store's tests: a database of its own on
// the shared test server, rules with a day cap and a queue, stores opened
// on it as daemons would, and helpers to buy and to count.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "harness.h"
#include "pg/connection.h"
#include "pg_server.h"
#include "scheduler/scheduler.h"
#include "store/pg_store.h"

namespace tp::testing {

inline constexpr std::string_view kConfig = R"(version: 1
timezone: UTC
frequency_cap: {max: 1, per: day}
products: {p: {supply_days: 30}}
sinks: [{name: q, type: queue}]
cadences:
  - name: c
    steps:
      - {after: 1h, topic: first}
      - {after: 1h, topic: second}
)";

class PgStoreTest : public ::testing::Test {
 protected:
  PgStoreTest() : rules_(MustLoad(kConfig)), db_(PgServer::Shared().NewDatabase()) {}

  // The fixture's rules without their cap: claims lock only the rows.
  void DropTheCap() {
    std::string config(kConfig);
    config.erase(config.find("frequency_cap"),
                 std::string("frequency_cap: {max: 1, per: day}\n").size());
    rules_.Swap(MustLoad(config));
  }
  std::unique_ptr<PgStore> MustOpen() {
    auto store = PgStore::Open(db_->url(), rules_);
    EXPECT_TRUE(store.ok()) << store.status().message();
    return store.ok() ? std::move(*store) : nullptr;
  }
  std::int64_t Count(const std::string& sql) {
    auto conn = pg::Connection::Open(db_->url(), "test");
    return conn->Exec(sql).Int64(0, 0);
  }
  // Waits until `pending` pending rows are free to lock: a store that was
  // closed mid-claim holds its rows until its server process has read the
  // closed connection and rolled back (a moment, not a timeout).
  void AwaitUnlocked(std::int64_t pending) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (Count("SELECT COUNT(*) FROM (SELECT id FROM touchpoints WHERE state = 0 "
                 "FOR UPDATE SKIP LOCKED) AS free") != pending) {
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "rows still held after 5 s";
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  // `call()` again while it fails as Unavailable, for up to 5 s: a store
  // that lost its connection opens the next on a thread of its own, and
  // its calls fail until it is open if that takes more than
  // pgstore::Session::kConnectWait (a busy machine).
  template <typename Call>
  static auto Reconnected(Call call) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    auto result = call();
    while (!result.ok() && StatusOf(result).unavailable() &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      result = call();
    }
    return result;
  }
  static const Status& StatusOf(const Status& s) { return s; }
  template <typename T>
  static const Status& StatusOf(const StatusOr<T>& s) {
    return s.status();
  }

  // Buyers b0..b(n-1), each with one purchase whose two steps are due an
  // hour after `at`.
  void Buy(PgStore& store, int n, Instant at) {
    FakeClock clock(at);
    Scheduler scheduler(store, clock, rules_);
    for (int i = 0; i < n; ++i) {
      auto out =
          scheduler.Ingest({"o" + std::to_string(i), "b" + std::to_string(i), "p", 1, 1, at, ""});
      ASSERT_TRUE(out.ok()) << out.status().message();
      ASSERT_EQ(out->planned, 2);
    }
  }

  RulesInForce rules_;
  std::unique_ptr<PgServer::Database> db_;
};

}  // namespace tp::testing
