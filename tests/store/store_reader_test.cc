// The store read on a thread of its own (store/store_reader.h): leased
// events and /metrics counts.
#include "store/reader_await.h"
#include "store/store_test.h"

namespace tp {
namespace {

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
  auto& rules =
      InForce(WithSinks("\n  - {name: crm, type: webhook, url: \"http://127.0.0.1:9/h\", "
                        "secret_file: " +
                        secret + "}\n  - {name: audit, type: queue}\n"));
  ASSERT_NE(rules.shared(), nullptr);
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
  EXPECT_EQ(gauges->outbox, *store->OutboxBySink(1000));
  EXPECT_EQ(gauges->outbox, (Counts{{"crm", 2}}));

  // A reload removes the sink: its dead letter still counts.
  std::promise<StatusOr<StoreGauges>> removed;
  (*reader)->Count({}, {}, [&](StatusOr<StoreGauges> g) { removed.set_value(std::move(g)); });
  gauges = removed.get_future().get();
  ASSERT_TRUE(gauges.ok()) << gauges.status().message();
  EXPECT_EQ(gauges->dead_letters, (Counts{{"crm", 1}}));
}

// Once the daemon stops, the days asked for fail at once (a count under
// way is interrupted: not shown here, a read of SQLite's cannot be held),
// while the other counts still run.
TEST_F(SqliteStoreTest, AStoppedStoreReaderCountsNoMoreDays) {
  auto store = MustOpen();
  FakeClock clock(At("2026-11-01T10:00:00+08:00"));
  Scheduler scheduler(*store, clock, rules_);
  FireFirstSteps(scheduler, clock, 3);
  auto reader = StoreReader::Open(Path());
  ASSERT_TRUE(reader.ok()) << reader.status().message();
  const std::vector<Instant> boundaries{clock.Now(), clock.Now() + std::chrono::hours(24 * 30)};
  const auto days = [&] {
    return testing::Await<PendingDays>(
        [&](auto done) { (*reader)->PendingByDay(boundaries, std::move(done)); });
  };
  auto counted = days();
  ASSERT_TRUE(counted.ok()) << counted.status().message();
  (*reader)->Stop();
  auto refused = days();
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("stopping"), std::string::npos)
      << refused.status().message();
  auto g = testing::Await<StoreGauges>(
      [&](auto done) { (*reader)->Count({"outbox"}, {}, std::move(done)); });
  ASSERT_TRUE(g.ok()) << g.status().message();
  EXPECT_EQ(g->pending, 3 * 5);
}

}  // namespace
}  // namespace tp
