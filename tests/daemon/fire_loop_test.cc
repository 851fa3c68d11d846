// FireLoop's count of failures in a row (/healthz's `firing`, the gauge
// touchpoint_firing_failures): over an in-memory store that fails on
// demand, each retry of a failed pass or read counts; a read that works
// between failed passes does not clear the count; a pass that goes
// through does, and so does Pause().
#include "daemon/fire_loop.h"

#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "due_now.h"
#include "forwarding_store.h"
#include "harness.h"
#include "scheduler/memory_store.h"

namespace tp {
namespace {

namespace asio = boost::asio;

// A MemoryStore whose next-wakeup reads or claims fail while asked to.
class FailingStore final : public testing::ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;

  bool fail_reads = false;        // NextWakeup()
  bool fail_claims = false;       // TakeDue()
  std::optional<Instant> wakeup;  // NextWakeup()'s answer instead of the store's
  int claims = 0;                 // TakeDue() calls

  StatusOr<std::optional<Instant>> NextWakeup() override {
    if (fail_reads) return Status::Error("the next wakeup is unreadable");
    if (wakeup) return wakeup;
    return ForwardingStore::NextWakeup();
  }
  StatusOr<std::vector<DueTouchpoint>> TakeDue(Instant now, std::size_t max) override {
    ++claims;
    if (fail_claims) return Status::Error("the disk is on fire");
    return ForwardingStore::TakeDue(now, max);
  }
};

class FireLoopTest : public ::testing::Test {
 protected:
  FireLoopTest()
      : rules_(testing::MustLoad(testing::kDueNowConfig)),
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
  template <typename Done>
  void RunUntil(Done done) {
    testing::RunLoopUntil(io_, done);
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

// A wakeup past what the timer can hold (the system clock counts
// nanoseconds, up to 2262; a purchase may plan a step later than that)
// arms it a day ahead at most. Before, the instant overflowed into the
// past: a pass at once, again and again.
TEST_F(FireLoopTest, AWakeupPastWhatTheTimerHoldsArmsItADayAheadAtMost) {
  store_.wakeup = testing::At("2290-01-01T00:00:00Z");
  FireLoop loop(io_, store_, scheduler_, clock_, Hooks());
  loop.Start();
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
  RunUntil([&] { return std::chrono::steady_clock::now() >= end; });
  loop.Stop();
  EXPECT_EQ(store_.claims, 0);
  EXPECT_EQ(fired_, 0);
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
