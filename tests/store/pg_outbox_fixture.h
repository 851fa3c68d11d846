// The fixture of the PostgreSQL store's push delivery tests: touchpoints
// fired to a Redis sink, "stream", with stores opened as daemons (also on
// another role of the server), and results to record.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "harness.h"
#include "pg/connection.h"
#include "pg_server.h"
#include "scheduler/scheduler.h"
#include "store/pg_store.h"
#include "store/pg_store_fixture.h"
#include "store/values.h"

namespace tp::testing {

// Push deliveries: touchpoints fired to a Redis sink, "stream".
class PgOutboxTest : public PgStoreTest {
 protected:
  PgOutboxTest() {
    std::string yaml(kConfig);
    const std::string sinks = "sinks: [{name: q, type: queue}]";
    yaml.replace(yaml.find(sinks), sinks.size(),
                 "sinks: [{name: stream, type: redis, url: \"redis://127.0.0.1:9/0\"}]");
    rules_.Swap(testing::MustLoad(yaml));
  }
  // A second Redis sink, "other": each touchpoint goes to both.
  void TwoSinks() {
    std::string yaml(kConfig);
    const std::string sinks = "sinks: [{name: q, type: queue}]";
    yaml.replace(yaml.find(sinks), sinks.size(),
                 "sinks: [{name: stream, type: redis, url: \"redis://127.0.0.1:9/0\"}, "
                 "{name: other, type: redis, url: \"redis://127.0.0.1:9/1\"}]");
    rules_.Swap(testing::MustLoad(yaml));
  }
  // `n` buyers' touchpoints fired: 2n outbox entries a sink, due at `now`.
  Instant Fire(PgStore& store, int n) {
    const Instant at = At("2026-12-04T10:00:00Z");
    Buy(store, n, at);
    FakeClock clock(at + std::chrono::hours(2));
    Scheduler scheduler(store, clock, rules_);
    // Each when due: the cap moves the second steps to the next day.
    for (;;) {
      auto next = scheduler.NextWakeup();
      EXPECT_TRUE(next.ok());
      if (!next.ok() || !*next) break;
      clock.Set(std::max(clock.Now(), **next));
      EXPECT_TRUE(scheduler.RunDue().ok());
    }
    EXPECT_EQ(Count("SELECT COUNT(*) FROM deliveries"),
              2 * n * static_cast<int>(rules_->sinks.size()));
    return clock.Now();
  }
  // DueDeliveries(), failing the test (and empty) if it fails.
  static std::vector<OutboxItem> Due(PgStore& store, Instant now, std::size_t max, bool in_order) {
    auto due = store.DueDeliveries("stream", now, max, in_order);
    EXPECT_TRUE(due.ok()) << due.status().message();
    return due.ok() ? std::move(*due) : std::vector<OutboxItem>();
  }
  static std::set<std::int64_t> Ids(const std::vector<OutboxItem>& items) {
    std::set<std::int64_t> ids;
    for (const OutboxItem& i : items) ids.insert(i.id);
    return ids;
  }
  // Two daemons' stores: A claims one buyer's two deliveries, its session
  // ends, B takes them over.
  struct TakenOver {
    std::unique_ptr<PgStore> a, b;
    Instant now;
    std::vector<OutboxItem> a_due, b_due;
  } taken_over_;
  void ClaimedByATakenOverByB() {
    TakenOver& t = taken_over_;
    t.a = MustOpen();
    t.b = MustOpen();
    t.now = Fire(*t.a, 1);
    auto a_due = t.a->DueDeliveries("stream", t.now, 100, false);
    ASSERT_TRUE(a_due.ok()) << a_due.status().message();
    ASSERT_EQ(a_due->size(), 2u);
    EndTheFirstStoresSession();
    auto b_due = t.b->DueDeliveries("stream", t.now, 100, false);
    ASSERT_TRUE(b_due.ok()) << b_due.status().message();
    ASSERT_EQ(b_due->size(), 2u);
    t.a_due = std::move(*a_due);
    t.b_due = std::move(*b_due);
  }
  // Ends the session of the store opened first (the daemons' stores are
  // all "touchpointd": every session but the newest).
  void EndTheFirstStoresSession() {
    PgServer::Shared().Admin(
        "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE "
        "datname = '" +
        db_->name() +
        "' AND application_name = 'touchpointd' "
        "AND pid <> (SELECT pid FROM pg_stat_activity WHERE datname = '" +
        db_->name() +
        "' AND application_name = 'touchpointd' ORDER BY "
        "backend_start DESC LIMIT 1)");
  }
  // `results` recorded by a store whose session was ended: on its new one.
  // (The new session's connection may take longer than a call waits for it
  // on a loaded machine: Unavailable, tried again as the dispatcher would.)
  static Status RecordOnItsNewSession(PgStore& store, const std::vector<DeliveryResult>& results) {
    Status recorded = store.RecordDeliveries(results);
    for (int i = 0; i < 250 && recorded.unavailable(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      recorded = store.RecordDeliveries(results);
    }
    return recorded;
  }
  // A store as another role of the server (PgServer::Database::
  // AnotherRole(): pg_stat_activity shows it the other roles' sessions
  // without their start times), its name in other_role_.
  std::unique_ptr<PgStore> OpenAsAnotherRole() {
    other_role_ = db_->AnotherRole();
    auto store = PgStore::Open(db_->UrlAs(other_role_), rules_);
    EXPECT_TRUE(store.ok()) << store.status().message();
    return store.ok() ? std::move(*store) : nullptr;
  }
  std::string other_role_;
  static DeliveryResult Delivered(const OutboxItem& item, Instant at) {
    DeliveryResult r;
    r.id = item.id;
    r.touchpoint = item.touchpoint;
    r.at = at;
    r.history = "delivered";
    return r;
  }
  // A failed first attempt of `item`, to be tried again 5 minutes on.
  static DeliveryResult Retried(const OutboxItem& item, Instant at, std::string error,
                                std::string history) {
    DeliveryResult r = Delivered(item, at);
    r.kind = DeliveryResult::Kind::kRetry;
    r.attempts = 1;
    r.next_attempt_at = at + std::chrono::minutes(5);
    r.error = std::move(error);
    r.history = std::move(history);
    return r;
  }
  // `item`'s fifth attempt, failed: a dead letter.
  static DeliveryResult Dead(const OutboxItem& item, Instant at, std::string history) {
    DeliveryResult r = Delivered(item, at);
    r.kind = DeliveryResult::Kind::kDead;
    r.attempts = 5;
    r.error = "refused";
    r.history = std::move(history);
    return r;
  }
};

}  // namespace tp::testing
