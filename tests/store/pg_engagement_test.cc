// Engagement on the PostgreSQL store with several daemons: a trust signal
// recorded on one daemon while another has claimed the buyer's steps with
// a `when` (and so may be reading the buyer's signals) waits for that
// claim, so that a step is never fired as if the buyer had not answered
// after the answer was acknowledged.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "harness.h"
#include "scheduler/scheduler.h"
#include "store/pg_store.h"
#include "store/pg_store_fixture.h"

namespace tp {
namespace {

using testing::At;
using testing::PgStoreTest;

// No cap: the claim locks the buyers for the `when` alone.
constexpr std::string_view kWhenConfig = R"(version: 1
timezone: UTC
products: {p: {supply_days: 30}}
sinks: [{name: q, type: queue}]
cadences:
  - name: c
    steps:
      - {after: 1h, topic: first}
      - {after: 1h, topic: checkpoint, when: not_engaged}
)";

TEST_F(PgStoreTest, ATrustSignalWaitsForAClaimOfTheBuyersStepsWithAWhen) {
  rules_.Swap(testing::MustLoad(kWhenConfig));
  auto a = MustOpen();
  auto b = MustOpen();
  const Instant at = At("2026-12-04T10:00:00Z");
  Buy(*a, 1, at);
  const Instant due = at + std::chrono::hours(2);
  auto claimed = a->TakeDue(due, 10);
  ASSERT_TRUE(claimed.ok()) << claimed.status().message();
  ASSERT_EQ(claimed->size(), 2u);

  // B records the buyer's reply meanwhile.
  std::atomic<bool> recorded{false};
  StatusOr<EventOutcome> outcome = Status::Error("not yet");
  std::thread reply([&] {
    FakeClock clock(due);
    Scheduler scheduler(*b, clock, rules_);
    outcome = scheduler.RecordEvent({"e1", "b0", "replied", due});
    recorded = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_FALSE(recorded) << "the reply was recorded while A's claim could still decide the "
                            "checkpoint as not engaged";
  // A decides with what it read: not engaged, so the checkpoint fires.
  std::vector<FiringOutcome> fired(claimed->size(), {FiringOutcome::Kind::kFired, due, {}});
  ASSERT_TRUE(a->ApplyOutcomes(*claimed, fired).ok());
  reply.join();
  ASSERT_TRUE(outcome.ok()) << outcome.status().message();
  EXPECT_EQ(outcome->kind, EventOutcome::Kind::kRecorded);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM events"), 1);
}

}  // namespace
}  // namespace tp
