// FireThread over an in-memory store: it fires on a thread of its own and
// tells the loop, on the loop's thread; it holds what may not fire by the
// loop's state as of the last Rearm(); it fires by the rules the loop
// swapped in.
#include "daemon/fire_thread.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "due_now.h"
#include "harness.h"
#include "scheduler/memory_store.h"

namespace tp {
namespace {

namespace asio = boost::asio;

// What the loop's observer heard, and on which thread.
struct Heard final : SchedulerObserver {
  void OnTouchpoints(std::string_view cadence, TouchpointState state, std::int64_t count) override {
    threads.push_back(std::this_thread::get_id());
    if (state == TouchpointState::kSkipped) skipped += count;
    (void)cadence;
  }
  void OnDeferred(std::string_view /*cadence*/) override {
    threads.push_back(std::this_thread::get_id());
  }
  void OnFired(std::string_view cadence, Millis /*late*/) override {
    threads.push_back(std::this_thread::get_id());
    fired.emplace_back(cadence);
  }
  std::vector<std::thread::id> threads;
  std::vector<std::string> fired;
  std::int64_t skipped = 0;
};

class FireThreadTest : public ::testing::Test {
 protected:
  FireThreadTest()
      : loop_rules_(testing::MustLoad(testing::kDueNowConfig)),
        store_(std::make_unique<MemoryStore>(loop_rules_.shared())) {}

  // Before Open(): the store is the thread's from then on. By default both
  // steps are due already.
  void Buy(Instant purchased_at = SystemClock().Now() - std::chrono::hours(3)) {
    Scheduler ingest(*store_, clock_, loop_rules_);
    Purchase p{"o" + std::to_string(++orders_), "b1", "p", 1, 10, purchased_at, ""};
    EXPECT_TRUE(ingest.Ingest(p).ok());
  }

  std::unique_ptr<FireThread> Open() {
    auto opened = FireThread::Open(
        loop_, loop_rules_, clock_, &heard_,
        {.may_fire = [this] { return may_fire_; },
         .covered_until = [this] { return covered_until_; },
         .storage_full = [] {},
         .fired = [this] { fired_hook_threads_.push_back(std::this_thread::get_id()); }},
        [this](const RulesInForce& /*own*/) -> StatusOr<std::unique_ptr<ScheduleStore>> {
          return std::unique_ptr<ScheduleStore>(std::move(store_));
        });
    EXPECT_TRUE(opened.ok()) << opened.status().message();
    return std::move(*opened);
  }

  template <typename Done>
  void RunLoopUntil(Done done) {
    testing::RunLoopUntil(loop_, done);
  }
  // Runs the loop for `d`: what the fire thread would have posted by then.
  void RunLoopFor(std::chrono::milliseconds d) {
    RunLoopUntil([end = std::chrono::steady_clock::now() + d] {
      return std::chrono::steady_clock::now() >= end;
    });
  }

  asio::io_context loop_;
  SystemClock clock_;
  RulesInForce loop_rules_;
  std::unique_ptr<MemoryStore> store_;
  Heard heard_;
  std::vector<std::thread::id> fired_hook_threads_;
  int orders_ = 0;
  bool may_fire_ = true;
  Instant covered_until_ = Instant::max();
};

TEST_F(FireThreadTest, FiresOnItsThreadAndTellsTheLoopOnTheLoop) {
  Buy();
  auto fire = Open();
  fire->Start();
  RunLoopUntil([&] { return heard_.fired.size() == 2 && !fired_hook_threads_.empty(); });
  fire->Stop();
  EXPECT_EQ(heard_.fired, (std::vector<std::string>{"c", "c"}));
  for (const auto& id : heard_.threads) EXPECT_EQ(id, std::this_thread::get_id());
  ASSERT_FALSE(fired_hook_threads_.empty());
  for (const auto& id : fired_hook_threads_) EXPECT_EQ(id, std::this_thread::get_id());
}

TEST_F(FireThreadTest, HoldsWhileItMayNotFireOrARePlanHasNotPassedWhatIsDue) {
  Buy();
  may_fire_ = false;
  auto fire = Open();
  fire->Start();
  RunLoopFor(std::chrono::milliseconds(300));
  EXPECT_TRUE(heard_.fired.empty());

  // Storage back, but a re-plan just started: what is due waits for it.
  may_fire_ = true;
  covered_until_ = Instant::min();
  fire->Rearm(true);
  RunLoopFor(std::chrono::milliseconds(300));
  EXPECT_TRUE(heard_.fired.empty());

  // The re-plan done: both fire.
  covered_until_ = Instant::max();
  fire->Rearm(true);
  RunLoopUntil([&] { return heard_.fired.size() == 2; });
  fire->Stop();
  EXPECT_EQ(heard_.fired.size(), 2U);
}

TEST_F(FireThreadTest, PauseCancelsTheTimerUntilTheNextRearm) {
  // The first step falls due 400 ms from now (the second an hour later).
  Buy(SystemClock().Now() - std::chrono::hours(1) + std::chrono::milliseconds(400));
  auto fire = Open();
  fire->Start();
  RunLoopFor(std::chrono::milliseconds(50));
  fire->Pause();  // short of space, though the hooks would let it fire
  RunLoopFor(std::chrono::milliseconds(800));
  EXPECT_TRUE(heard_.fired.empty());
  fire->Rearm(true);  // room again
  RunLoopUntil([&] { return heard_.fired.size() == 1; });
  fire->Stop();
  EXPECT_EQ(heard_.fired.size(), 1U);
}

TEST_F(FireThreadTest, FiresByTheRulesTheLoopSwappedIn) {
  Buy();
  may_fire_ = false;
  auto fire = Open();
  fire->Start();
  RunLoopFor(std::chrono::milliseconds(100));
  // A reload: a misfire_grace of a minute makes both steps missed.
  std::string strict(testing::kDueNowConfig);
  strict.replace(strict.find("misfire_grace: 1d"), 17, "misfire_grace: 1m");
  loop_rules_.Swap(testing::MustLoad(strict));
  may_fire_ = true;
  fire->Rearm(true);
  RunLoopUntil([&] { return heard_.skipped == 2; });
  fire->Stop();
  EXPECT_EQ(heard_.skipped, 2);
  EXPECT_TRUE(heard_.fired.empty());
}

TEST_F(FireThreadTest, AfterStopNothingFires) {
  Buy();
  may_fire_ = false;
  auto fire = Open();
  fire->Start();
  fire->Stop();  // joins
  may_fire_ = true;
  fire->Rearm(true);
  fire->Pause();
  fire->Stop();
  RunLoopFor(std::chrono::milliseconds(300));
  EXPECT_TRUE(heard_.fired.empty());
  EXPECT_TRUE(fired_hook_threads_.empty());
}

}  // namespace
}  // namespace tp
