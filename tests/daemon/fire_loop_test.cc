// FireLoop's count of failures in a row (/healthz's `firing`, the gauge
// touchpoint_firing_failures): over an in-memory store that fails on
// demand, each retry of a failed pass or read counts; a read that works
// between failed passes does not clear the count; a pass that goes
// through does, and so does Pause().
#include "daemon/fire_loop.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <string>
#include <vector>

#include "harness.h"
#include "scheduler/memory_store.h"

namespace tp {
namespace {

namespace asio = boost::asio;

// Two steps already due whatever the hour: no send window.
constexpr std::string_view kDueNow = R"(version: 1
timezone: UTC
misfire_grace: 1d
products: {p: {supply_days: 30}}
sinks: [{name: q, type: queue}]
cadences:
  - name: c
    steps:
      - {after: 1h, topic: a}
      - {after: 2h, topic: b}
)";

// A MemoryStore whose next-wakeup reads or claims fail while asked to.
class FailingStore final : public ScheduleStore {
 public:
  explicit FailingStore(ScheduleStore& store) : store_(store) {}

  bool fail_reads = false;   // NextWakeup()
  bool fail_claims = false;  // TakeDue()

  StatusOr<std::optional<Instant>> NextWakeup() override {
    if (fail_reads) return Status::Error("the next wakeup is unreadable");
    return store_.NextWakeup();
  }
  StatusOr<std::vector<DueTouchpoint>> TakeDue(Instant now, std::size_t max) override {
    if (fail_claims) return Status::Error("the disk is on fire");
    return store_.TakeDue(now, max);
  }

  StatusOr<PurchaseMatch> MatchPurchase(const Purchase& purchase, const Zone* zone) override {
    return store_.MatchPurchase(purchase, zone);
  }
  StatusOr<BuyerState> LoadBuyer(std::string_view buyer_id) override {
    return store_.LoadBuyer(buyer_id);
  }
  Status AddPurchase(const Purchase& purchase, const Zone* zone, int tier,
                     std::span<const PlannedTouchpoint> touchpoints, Instant now) override {
    return store_.AddPurchase(purchase, zone, tier, touchpoints, now);
  }
  StatusOr<CadenceCounts> CancelEarlier(std::string_view buyer_id, Instant up_to,
                                        std::string_view except_order, Instant now,
                                        std::string_view reason) override {
    return store_.CancelEarlier(buyer_id, up_to, except_order, now, reason);
  }
  StatusOr<CadenceCounts> SetOptedOut(std::string_view buyer_id, bool opted_out,
                                      Instant now) override {
    return store_.SetOptedOut(buyer_id, opted_out, now);
  }
  StatusOr<EventMatch> MatchEvent(const EngagementEvent& event) override {
    return store_.MatchEvent(event);
  }
  StatusOr<BuyerTouchpoint> FindTouchpoint(std::string_view buyer_id,
                                           std::string_view touchpoint_id) override {
    return store_.FindTouchpoint(buyer_id, touchpoint_id);
  }
  StatusOr<BuyerTouchpoint> LastFiredBefore(std::string_view buyer_id, Instant at) override {
    return store_.LastFiredBefore(buyer_id, at);
  }
  StatusOr<bool> AddEvent(const EngagementEvent& event, std::uint64_t buyer, std::uint64_t credited,
                          Instant now) override {
    return store_.AddEvent(event, buyer, credited, now);
  }
  StatusOr<CadenceCounts> CancelCadences(std::string_view buyer_id,
                                         std::span<const std::string> cadences, Instant up_to,
                                         Instant now, std::string_view reason) override {
    return store_.CancelCadences(buyer_id, cadences, up_to, now, reason);
  }
  StatusOr<std::optional<EngagementEvent>> FirstEngagement(const DueTouchpoint& due,
                                                           std::span<const std::string> types,
                                                           Instant until) override {
    return store_.FirstEngagement(due, types, until);
  }
  StatusOr<std::vector<FiredTouchpoint>> FiredBetween(const DueTouchpoint& due, Instant from,
                                                      Instant to, bool sinks) override {
    return store_.FiredBetween(due, from, to, sinks);
  }
  Status ApplyOutcomes(std::span<const DueTouchpoint> due,
                       std::span<const FiringOutcome> outcomes) override {
    return store_.ApplyOutcomes(due, outcomes);
  }

 private:
  ScheduleStore& store_;
};

class FireLoopTest : public ::testing::Test {
 protected:
  FireLoopTest()
      : rules_(testing::MustLoad(kDueNow)),
        memory_(rules_.shared()),
        store_(memory_),
        scheduler_(store_, clock_, rules_) {
    // Both steps due an hour ago and now.
    Purchase p{"o1", "b1", "p", 1, 10, clock_.Now() - std::chrono::hours(3), ""};
    EXPECT_TRUE(scheduler_.Ingest(p).ok());
  }

  FireLoop::Hooks Hooks() {
    return {.may_fire = [] { return true; },
            .covered = [](Instant) { return true; },
            .storage_full = [] {},
            .fired = [this] { ++fired_; },
            .health_changed =
                [this](const FiringHealth& h) { counts_.push_back(h.consecutive_failures); },
            .retry = Millis(5)};
  }
  // Runs the loop until `done` or 10 s.
  template <typename Done>
  void RunUntil(Done done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!done() && std::chrono::steady_clock::now() < deadline) {
      io_.restart();
      io_.run_for(std::chrono::milliseconds(5));
    }
  }

  asio::io_context io_;
  SystemClock clock_;
  RulesInForce rules_;
  MemoryStore memory_;
  FailingStore store_;
  Scheduler scheduler_;
  std::vector<int> counts_;  // the count at each health_changed
  int fired_ = 0;
};

TEST_F(FireLoopTest, FailedPassesCountUpUntilOneGoesThrough) {
  store_.fail_claims = true;
  FireLoop loop(io_, store_, scheduler_, clock_, Hooks());
  loop.Start();
  RunUntil([&] { return counts_.size() >= 4; });
  // Between the passes, each read of the next wakeup works: the count
  // goes on, it does not start again.
  ASSERT_GE(counts_.size(), 4u);
  EXPECT_EQ(std::vector<int>(counts_.begin(), counts_.begin() + 4), (std::vector<int>{1, 2, 3, 4}));
  EXPECT_NE(loop.Health().last_error.find("the disk is on fire"), std::string::npos)
      << loop.Health().last_error;
  EXPECT_EQ(fired_, 0);

  store_.fail_claims = false;
  RunUntil([&] { return fired_ > 0; });
  loop.Stop();
  EXPECT_GT(fired_, 0);
  EXPECT_EQ(loop.Health().consecutive_failures, 0);
  EXPECT_TRUE(loop.Health().last_error.empty());
  EXPECT_EQ(counts_.back(), 0);
}

TEST_F(FireLoopTest, FailedReadsCountUpAndAReadThatWorksClearsThem) {
  store_.fail_reads = true;
  FireLoop loop(io_, store_, scheduler_, clock_, Hooks());
  loop.Start();
  RunUntil([&] { return counts_.size() >= 3; });
  ASSERT_GE(counts_.size(), 3u);
  EXPECT_EQ(std::vector<int>(counts_.begin(), counts_.begin() + 3), (std::vector<int>{1, 2, 3}));
  EXPECT_NE(loop.Health().last_error.find("unreadable"), std::string::npos);

  store_.fail_reads = false;
  RunUntil([&] { return fired_ > 0; });
  loop.Stop();
  EXPECT_EQ(loop.Health().consecutive_failures, 0);
  EXPECT_GT(fired_, 0);
}

TEST_F(FireLoopTest, PauseClearsTheCountAndStopsTheRetries) {
  store_.fail_claims = true;
  FireLoop loop(io_, store_, scheduler_, clock_, Hooks());
  loop.Start();
  RunUntil([&] { return !counts_.empty(); });
  ASSERT_FALSE(counts_.empty());
  loop.Pause();
  EXPECT_EQ(loop.Health().consecutive_failures, 0);
  const std::size_t heard = counts_.size();
  // Retried every 5 ms if it were not paused.
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(100);
  RunUntil([&] { return std::chrono::steady_clock::now() >= until; });
  loop.Stop();
  EXPECT_EQ(counts_.size(), heard);
  EXPECT_EQ(loop.Health().consecutive_failures, 0);
}

}  // namespace
}  // namespace tp
