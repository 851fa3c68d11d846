// DatabaseWatch: a store call failing makes it probe; a statement that has
// waited kStalled for the server makes it probe too, at most once per
// kStalled, so that a frozen server (which fails no call: the threads
// without an answer limit just wait) pauses the daemon and says so.
#include "daemon/database_watch.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <thread>

#include "harness.h"

namespace tp {
namespace {

class DatabaseWatchTest : public ::testing::Test {
 protected:
  DatabaseWatchTest() : metrics_("test") {}

  std::unique_ptr<DatabaseWatch> Make() {
    return std::make_unique<DatabaseWatch>(
        io_,
        [this] {
          ++probes_;
          return answers_.load() ? Status::Ok()
                                 : Status::Unavailable("the database does not answer: timeout");
        },
        [this] { return waited_.load(); }, clock_, metrics_,
        [this](bool paused) { paused_ = paused; });
  }
  // Runs the loop for `d` of real time (the watch's timers are steady).
  void RunFor(std::chrono::milliseconds d) {
    io_.restart();
    io_.run_for(d);
  }
  // Runs the loop until `done`, for at most 10 s (a slow machine).
  template <typename Pred>
  bool RunUntil(Pred done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!done() && std::chrono::steady_clock::now() < deadline) {
      RunFor(std::chrono::milliseconds(20));
    }
    return done();
  }

  boost::asio::io_context io_;
  SystemClock clock_;
  DaemonMetrics metrics_;
  std::atomic<int> probes_{0};
  std::atomic<bool> answers_{true};
  std::atomic<Millis> waited_{Millis(0)};
  bool paused_ = false;
};

TEST_F(DatabaseWatchTest, AStatementWaitingLongOnTheServerMakesItProbe) {
  auto watch = Make();
  watch->Start();
  ASSERT_TRUE(RunUntil([&] { return probes_ == 1; }));  // at the start
  // Statements waiting, but not for long: no probe.
  waited_ = DatabaseWatch::kStalled - Millis(1);
  RunFor(DatabaseWatch::kStallCheck + std::chrono::milliseconds(300));
  EXPECT_EQ(probes_, 1);
  EXPECT_FALSE(paused_);
  // One has waited kStalled, and the server does not answer a probe.
  answers_ = false;
  waited_ = DatabaseWatch::kStalled;
  ASSERT_TRUE(RunUntil([&] { return paused_; }));
  EXPECT_GE(probes_, 2);
  // Calls failing meanwhile (each thread retries every second) do not
  // probe besides the backoff's (250 ms, doubling): over 600 ms with a
  // failure every 10 ms, at most the backoff's few.
  const int before = probes_;
  for (int i = 0; i < 60; ++i) {
    watch->Check(true);
    RunFor(std::chrono::milliseconds(10));
  }
  EXPECT_LE(probes_ - before, 4);
  EXPECT_TRUE(watch->paused());
  EXPECT_EQ(watch->Health()["reason"], "the database does not answer: timeout");
  // Back: the backoff's probes find it.
  answers_ = true;
  waited_ = Millis(0);
  EXPECT_TRUE(RunUntil([&] { return !paused_; }));
  watch->Stop();
}

TEST_F(DatabaseWatchTest, AStallThatGoesOnIsProbedOncePerStall) {
  auto watch = Make();
  watch->Start();
  waited_ = DatabaseWatch::kStalled * 2;  // a long count, on a server that answers
  RunFor(DatabaseWatch::kStallCheck * 3 + std::chrono::milliseconds(300));
  EXPECT_EQ(probes_, 2);  // the start's, and one for the stall (not one a check)
  EXPECT_FALSE(paused_);
  watch->Stop();
}

}  // namespace
}  // namespace tp
