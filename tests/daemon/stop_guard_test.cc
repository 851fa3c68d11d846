// StopGuard: once the stop begins, it asks every kCheck for the statements
// that have waited kGrace to be cut loose, and not before the stop; once
// one was, for those that have waited kAfterCut; its destructor ends its
// thread at once.
#include "daemon/stop_guard.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

namespace tp {
namespace {

TEST(StopGuardTest, CutsWhatWaitedTheGraceOnlyOnceTheStopBegins) {
  std::atomic<int> asked{0};
  std::atomic<long long> first_ms{0}, second_ms{0}, last_ms{0};
  auto guard = std::make_unique<StopGuard>([&](Millis waited) {
    const int n = ++asked;
    if (n == 1) first_ms = waited.count();
    if (n == 2) second_ms = waited.count();
    last_ms = waited.count();
    return n == 2 ? 2 : 0;  // the second check cuts two
  });
  std::this_thread::sleep_for(StopGuard::kCheck * 3);
  EXPECT_EQ(asked, 0);  // no stop yet
  guard->Start();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (asked < 3 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_GE(asked, 3);  // again and again: a thread may wait anew
  EXPECT_EQ(first_ms, StopGuard::kGrace.count());
  EXPECT_EQ(second_ms, StopGuard::kGrace.count());
  EXPECT_EQ(last_ms, StopGuard::kAfterCut.count());  // after a cut
  const auto ending = std::chrono::steady_clock::now();
  guard.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - ending, StopGuard::kCheck);
}

TEST(StopGuardTest, NeverStartedItEndsAtOnce) {
  std::atomic<int> asked{0};
  {
    StopGuard guard([&](Millis) { return ++asked; });
  }
  EXPECT_EQ(asked, 0);
}

}  // namespace
}  // namespace tp
