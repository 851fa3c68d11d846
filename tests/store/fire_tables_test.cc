// Firing in SQLite (store/fire_tables.h): due touchpoints taken and fired
// in one transaction, their fan-out to every sink the cadence routes to,
// the routing following the rules in force, and the events made from the
// rows (store/event_rows.h).
#include "scoped_caps_config.h"
#include "store/store_test.h"

namespace tp {
namespace {

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

// A step with sinks of its own goes there, not to its cadence's, and
// counts against a cap scoped to them; touchpoints to other sinks pass.
// The deferral's history line names the cap.
TEST_F(SqliteStoreTest, AStepGoesToItsOwnSinksAndAScopedCapCountsIt) {
  RulesInForce& rules = InForce(testing::MustLoad(testing::kScopedCapsConfig));
  auto store = MustOpen(rules);
  FakeClock clock(At("2026-06-01T10:00:00+08:00"));
  Scheduler scheduler(*store, clock, rules);
  ASSERT_TRUE(scheduler.Ingest({"o", "b", "p", 1, 1, clock.Now(), ""}).ok());
  auto queued = [&](const std::string& queue, const std::string& topic) {
    return Count(
        "SELECT COUNT(*) FROM queue_messages m JOIN touchpoints t ON t.id = m.touchpoint "
        "WHERE m.queue = '" +
        queue + "' AND t.topic = '" + topic + "'");
  };

  clock.Set(At("2026-06-02T10:00:00+08:00"));
  auto day1 = scheduler.RunDue();
  ASSERT_TRUE(day1.ok()) << day1.status().message();
  EXPECT_EQ(day1->fired, 3u);     // a on wecom; x and z on email
  EXPECT_EQ(day1->deferred, 2u);  // b, and y: its own sink is wecom
  EXPECT_EQ(queued("wecom", "a"), 1);
  EXPECT_EQ(queued("email", "x"), 1);
  EXPECT_EQ(queued("email", "z"), 1);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM touchpoint_history WHERE reason = 'deferred to "
                  "2026-06-03T09:00:00+08:00: frequency cap reached for the buyer''s day (1 per "
                  "day on wecom)'"),
            2);

  clock.Set(At("2026-06-03T09:00:00+08:00"));
  ASSERT_EQ(scheduler.RunDue()->fired, 1u);  // b; y waits a day more
  EXPECT_EQ(queued("wecom", "b"), 1);
  clock.Set(At("2026-06-04T09:00:00+08:00"));
  ASSERT_EQ(scheduler.RunDue()->fired, 1u);
  EXPECT_EQ(queued("wecom", "y"), 1);
  EXPECT_EQ(queued("email", "y"), 0);
}

// kScopedCapsConfig with its wecom cap per month instead of per day, one
// purchase, and its first day decided: a fired on wecom, x and z on email;
// b and y (wecom) held back.
class MonthlyWecomCapTest : public SqliteStoreTest {
 protected:
  void SetUp() override {
    yaml_.replace(yaml_.find("per: day"), 8, "per: month");
    in_force_ = &InForce(testing::MustLoad(yaml_));
    store_ = MustOpen(*in_force_);
    ASSERT_NE(store_, nullptr);
    scheduler_ = std::make_unique<Scheduler>(*store_, clock_, *in_force_);
    ASSERT_TRUE(scheduler_->Ingest({"o", "b", "p", 1, 1, clock_.Now(), ""}).ok());
    clock_.Set(At("2026-06-02T10:00:00+08:00"));
    ASSERT_EQ(scheduler_->RunDue()->fired, 3u);
  }

  std::string yaml_{testing::kScopedCapsConfig};
  RulesInForce* in_force_ = nullptr;
  std::unique_ptr<SqliteStore> store_;
  FakeClock clock_{At("2026-06-01T10:00:00+08:00")};
  std::unique_ptr<Scheduler> scheduler_;
};

// A cap scoped to sinks counts a fire by where it went as it fired (the
// row records it), not by where its step goes after a reload.
TEST_F(MonthlyWecomCapTest, AScopedCapCountsWhereAFireWentNotWhereItsStepGoesNow) {
  EXPECT_EQ(Count("SELECT COUNT(*) FROM touchpoints WHERE topic = 'a' AND sinks = 'wecom'"), 1);

  // The chat cadence moves to email: b goes there and may fire; a still
  // counts on wecom, so y (wecom) waits.
  yaml_.replace(yaml_.find("sinks: [wecom]\n    steps"), 14, "sinks: [email]");
  in_force_->Swap(testing::MustLoad(yaml_));
  clock_.Set(At("2026-06-03T09:00:00+08:00"));
  auto day2 = scheduler_->RunDue();
  ASSERT_TRUE(day2.ok());
  EXPECT_EQ(day2->fired, 1u);
  EXPECT_EQ(day2->deferred, 1u);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM queue_messages m JOIN touchpoints t ON t.id = "
                  "m.touchpoint WHERE m.queue = 'email' AND t.topic = 'b'"),
            1);

  // What is recorded counts: had a gone to email, nothing went to wecom
  // this month.
  EditByHand("UPDATE touchpoints SET sinks = 'email' WHERE topic = 'a'");
  clock_.Set(At("2026-06-04T09:00:00+08:00"));
  EXPECT_EQ(scheduler_->RunDue()->fired, 1u);  // y: nothing on wecom this month
  EXPECT_EQ(Count("SELECT COUNT(*) FROM touchpoints WHERE topic = 'y' AND sinks = 'wecom'"), 1);
}

// A fire from before the store recorded its sinks (schema 11) counts
// against every cap.
TEST_F(MonthlyWecomCapTest, AFireWithNoSinksRecordedCountsAgainstEveryCap) {
  // As an older build left them: a, x and z fired, sinks unknown.
  EditByHand("UPDATE touchpoints SET sinks = NULL WHERE state = 1");
  EditByHand("UPDATE touchpoints SET sinks = 'email' WHERE topic IN ('x', 'z')");
  clock_.Set(At("2026-06-03T09:00:00+08:00"));
  auto day2 = scheduler_->RunDue();
  ASSERT_TRUE(day2.ok());
  EXPECT_EQ(day2->fired, 0u);  // a, unknown, fills the wecom cap for b and y
  EXPECT_EQ(day2->deferred, 2u);
}

}  // namespace
}  // namespace tp
