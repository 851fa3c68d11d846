// The push sinks' outbox (store/outbox_tables.h): retries, dead letters,
// replay.
#include "store/store_test.h"

namespace tp {
namespace {

constexpr std::string_view kPushSinks = R"(
  - {name: crm, type: webhook, url: "http://127.0.0.1:9/hooks", secret_file: SECRET}
  - {name: events, type: redis, url: "redis://127.0.0.1:9/0"}
)";

TEST_F(SqliteStoreTest, OutboxRetriesDeadLettersAndReplays) {
  const std::string secret = dir_.path() + "/crm.secret";
  std::ofstream(secret) << "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n";
  std::string sinks(kPushSinks);
  sinks.replace(sinks.find("SECRET"), 6, secret);
  auto& rules = InForce(WithSinks(sinks));
  ASSERT_NE(rules.shared(), nullptr);
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
  // A dead-lettered touchpoint still counts against the frequency caps,
  // with the sinks it was routed to for those scoped to sinks.
  DueTouchpoint probe{static_cast<std::uint64_t>(item.touchpoint), {}};
  auto counted = store->FiredBetween(probe, clock.Now() - std::chrono::hours(1),
                                     clock.Now() + std::chrono::hours(1), true);
  ASSERT_TRUE(counted.ok());
  ASSERT_EQ(counted->size(), 1u);
  EXPECT_EQ((*counted)[0].sinks, "outbox,crm,events");
  EXPECT_EQ(store
                ->FiredBetween(probe, clock.Now() - std::chrono::hours(1),
                               clock.Now() + std::chrono::hours(1), false)
                ->size(),
            1u);

  // Replay: waiting again with no failed attempts; the touchpoint is fired.
  using ReplayedOne = OutboxStore::ReplayedOne;
  EXPECT_EQ(*store->ReplayDeadLetter(999, clock.Now()), ReplayedOne::kUnknown);
  EXPECT_EQ(*store->ReplayDeadLetter((*letters)[0].id, clock.Now()), ReplayedOne::kReplayed);
  EXPECT_EQ(*store->ReplayDeadLetter((*letters)[0].id, clock.Now()), ReplayedOne::kWaiting);
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
  auto by_sink = store->OutboxBySink(1000);
  ASSERT_TRUE(by_sink.ok());
  EXPECT_THAT(*by_sink, ::testing::ElementsAre(std::pair<std::string, std::int64_t>("events", 1)));
}

}  // namespace
}  // namespace tp
