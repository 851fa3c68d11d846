// The embedded queues (store/queue_tables.h): a fire's messages, leases,
// acks, visibility, and the events handed out.
#include "store/store_test.h"

namespace tp {
namespace {

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

// Routing follows the rules in force: after a swap (a reload adding a
// queue), the next fire goes to the new queue too, without reopening.
TEST_F(SqliteStoreTest, ASwapOfTheRulesInForceReroutesTheNextFire) {
  auto store = MustOpen();
  FakeClock clock(At("2026-11-01T10:00:00+08:00"));
  Scheduler scheduler(*store, clock, rules_);
  ASSERT_TRUE(scheduler.Ingest({"o1", "b1", "daily", 2, 240, clock.Now(), ""}).ok());
  ASSERT_TRUE(scheduler.Ingest({"o2", "b2", "daily", 2, 240, clock.Now(), ""}).ok());
  clock.Set(At("2026-11-02T10:00:00+08:00"));
  ASSERT_EQ(scheduler.RunDue(1)->fired, 2u);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM queue_messages"), 2);

  auto with_audit = WithSinks("\n  - {name: audit, type: queue}\n");
  ASSERT_NE(with_audit, nullptr);
  rules_.Swap(with_audit);
  clock.Set(At("2026-11-04T10:00:00+08:00"));
  ASSERT_EQ(scheduler.RunDue()->fired, 2u);
  auto audit = store->Lease("audit", 10, std::chrono::seconds(30), clock.Now());
  ASSERT_TRUE(audit.ok());
  ASSERT_EQ(audit->size(), 2u);
  EXPECT_EQ(nlohmann::json::parse((*audit)[0].event)["data"]["topic"], "comfort-check");
  EXPECT_EQ(Count("SELECT COUNT(*) FROM queue_messages"), 6);
}

// A cadence routed to two queues: each hands out the same event, made from
// the rows (none is stored). Acks take receipts of several leases at once
// and ignore what is not a current receipt of that queue.
TEST_F(SqliteStoreTest, TwoQueuesHandOutTheSameEventAndAckApart) {
  auto& rules = InForce(WithSinks("\n  - {name: audit, type: queue}\n"));
  ASSERT_NE(rules.shared(), nullptr);
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

// A queued event is made when it is handed out, from the rows: it is the
// event the fire made for a push sink, byte for byte, at every hand-out.
TEST_F(SqliteStoreTest, AQueuedEventIsTheEventTheFireMade) {
  auto& rules =
      InForce(WithSinks("\n  - {name: events, type: redis, url: \"redis://127.0.0.1:9/0\"}\n"));
  ASSERT_NE(rules.shared(), nullptr);
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

}  // namespace
}  // namespace tp
