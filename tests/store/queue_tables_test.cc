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

}  // namespace
}  // namespace tp
