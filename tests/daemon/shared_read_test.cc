// SharedRead (daemon/shared_read.h): reads shared by the askers at once,
// slow ones given again, on a clock and with reads the test finishes.
#include "daemon/shared_read.h"

#include <gtest/gtest.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

namespace tp {
namespace {

using std::chrono::milliseconds;
using Steady = std::chrono::steady_clock;

// Reads that finish when the test says, on a clock the test moves.
class SharedReadTest : public ::testing::Test {
 protected:
  using Reads = SharedRead<std::string, int>;

  Reads Make() {
    return Reads(milliseconds(100), 10, [this] { return now_; });
  }
  // A read of `key` that the test finishes with Finish().
  Reads::Read ReadOf(const std::string& key) {
    return [this, key](Reads::Done done) {
      started_.push_back(key);
      pending_.push_back(std::move(done));
    };
  }
  Reads::Answer Into(std::vector<StatusOr<int>>& out) {
    return [&out](const StatusOr<int>& v) { out.push_back(v); };
  }
  // Finishes the first read under way, which took `took`.
  void Finish(StatusOr<int> value, milliseconds took = milliseconds(0)) {
    auto done = std::move(pending_.front());
    pending_.erase(pending_.begin());
    done(std::move(value), took);
  }

  Steady::time_point now_ = Steady::time_point(std::chrono::hours(1));
  std::vector<std::string> started_;
  std::vector<Reads::Done> pending_;
};

TEST_F(SharedReadTest, AskersWhileAReadIsUnderWayShareIt) {
  Reads reads = Make();
  std::vector<StatusOr<int>> a, b, c;
  reads.Get("today", ReadOf("today"), Into(a));
  reads.Get("today", ReadOf("today"), Into(b));
  reads.Get("today", ReadOf("today"), Into(c));
  ASSERT_EQ(started_.size(), 1U);
  EXPECT_TRUE(a.empty());
  Finish(7);
  ASSERT_EQ(a.size(), 1U);
  ASSERT_EQ(b.size(), 1U);
  ASSERT_EQ(c.size(), 1U);
  EXPECT_EQ(*a[0], 7);
  EXPECT_EQ(*c[0], 7);
}

TEST_F(SharedReadTest, AQuickReadIsNeverGivenAgain) {
  Reads reads = Make();
  std::vector<StatusOr<int>> a, b;
  reads.Get("today", ReadOf("today"), Into(a));
  // Its wait for the thread does not count: only the read's own time.
  now_ += milliseconds(5000);
  Finish(1, milliseconds(99));
  EXPECT_FALSE(reads.keeping());
  reads.Get("today", ReadOf("today"), Into(b));
  EXPECT_EQ(started_.size(), 2U);
  Finish(2);
  ASSERT_EQ(b.size(), 1U);
  EXPECT_EQ(*b[0], 2);
}

TEST_F(SharedReadTest, ASlowReadIsGivenAgainForTenTimesAsLongAsItTook) {
  Reads reads = Make();
  std::vector<StatusOr<int>> answers;
  reads.Get("today", ReadOf("today"), Into(answers));
  now_ += milliseconds(300);
  Finish(5, milliseconds(300));
  ASSERT_TRUE(reads.keeping());
  now_ += milliseconds(2999);
  reads.Get("today", ReadOf("today"), Into(answers));
  ASSERT_EQ(started_.size(), 1U);  // answered at once, from what was kept
  ASSERT_EQ(answers.size(), 2U);
  EXPECT_EQ(*answers[1], 5);
  now_ += milliseconds(1);
  reads.Get("today", ReadOf("today"), Into(answers));
  EXPECT_EQ(started_.size(), 2U);  // 3 s on: read again
  EXPECT_FALSE(reads.keeping());   // and what was kept let go
  Finish(6);
  ASSERT_EQ(answers.size(), 3U);
  EXPECT_EQ(*answers[2], 6);
}

TEST_F(SharedReadTest, AnotherKeyIsReadOnItsOwn) {
  Reads reads = Make();
  std::vector<StatusOr<int>> today, tomorrow;
  reads.Get("today", ReadOf("today"), Into(today));
  reads.Get("tomorrow", ReadOf("tomorrow"), Into(tomorrow));
  ASSERT_EQ(started_.size(), 1U);  // after the one under way
  Finish(1, milliseconds(500));
  ASSERT_EQ(today.size(), 1U);
  EXPECT_TRUE(tomorrow.empty());
  ASSERT_EQ(started_, (std::vector<std::string>{"today", "tomorrow"}));
  ASSERT_TRUE(reads.keeping());
  // What is kept for today does not answer for tomorrow.
  reads.Get("tomorrow", ReadOf("tomorrow"), Into(tomorrow));
  EXPECT_EQ(started_.size(), 2U);  // shares the read under way
  Finish(2, milliseconds(500));
  ASSERT_EQ(tomorrow.size(), 2U);
  EXPECT_EQ(*tomorrow[0], 2);
  EXPECT_EQ(*tomorrow[1], 2);
  // Nor what is kept for tomorrow for today: one answer is kept at a time.
  reads.Get("today", ReadOf("today"), Into(today));
  EXPECT_EQ(started_.size(), 3U);
}

TEST_F(SharedReadTest, AFailedReadIsAnsweredToAllAndNotKept) {
  Reads reads = Make();
  std::vector<StatusOr<int>> a, b;
  reads.Get("today", ReadOf("today"), Into(a));
  reads.Get("today", ReadOf("today"), Into(b));
  Finish(Status::Unavailable("the database does not answer"), milliseconds(500));
  ASSERT_EQ(a.size(), 1U);
  ASSERT_EQ(b.size(), 1U);
  EXPECT_FALSE(a[0].ok());
  EXPECT_EQ(b[0].status().message(), "the database does not answer");
  EXPECT_FALSE(reads.keeping());
  reads.Get("today", ReadOf("today"), Into(a));
  EXPECT_EQ(started_.size(), 2U);
}

TEST_F(SharedReadTest, AReadOfExactlyTheBoundIsKept) {
  Reads reads = Make();
  std::vector<StatusOr<int>> answers;
  reads.Get("today", ReadOf("today"), Into(answers));
  Finish(1, milliseconds(100));
  EXPECT_TRUE(reads.keeping());
}

TEST_F(SharedReadTest, AReadThatFinishesAtOnceAnswersAtOnce) {
  Reads reads = Make();
  std::vector<StatusOr<int>> answers;
  auto at_once = [](Reads::Done done) { done(3, milliseconds(1)); };
  reads.Get("today", at_once, Into(answers));
  reads.Get("today", at_once, Into(answers));
  ASSERT_EQ(answers.size(), 2U);
  EXPECT_EQ(*answers[1], 3);
}

TEST_F(SharedReadTest, AnAnswerMayAskAgain) {
  Reads reads = Make();
  std::vector<StatusOr<int>> again;
  std::vector<StatusOr<int>> first;
  reads.Get("today", ReadOf("today"), [&](const StatusOr<int>& v) {
    first.push_back(v);
    reads.Get("today", ReadOf("today"), Into(again));  // kept: answered at once
    reads.Get("tomorrow", ReadOf("tomorrow"), Into(again));
  });
  Finish(1, milliseconds(200));
  ASSERT_EQ(first.size(), 1U);
  ASSERT_EQ(again.size(), 1U);
  EXPECT_EQ(*again[0], 1);
  ASSERT_EQ(started_, (std::vector<std::string>{"today", "tomorrow"}));
  Finish(2, milliseconds(1));
  ASSERT_EQ(again.size(), 2U);
  EXPECT_EQ(*again[1], 2);
}

TEST_F(SharedReadTest, AReadThatCannotStartIsAnErrorAndLeavesNothingUnderWay) {
  Reads reads = Make();
  std::vector<StatusOr<int>> answers;
  reads.Get(
      "today", [](Reads::Done) { throw std::runtime_error("no thread"); }, Into(answers));
  ASSERT_EQ(answers.size(), 1U);
  EXPECT_FALSE(answers[0].ok());
  EXPECT_NE(answers[0].status().message().find("no thread"), std::string::npos);
  reads.Get("today", ReadOf("today"), Into(answers));
  EXPECT_EQ(started_.size(), 1U);  // a new read, not a wait for the one that never began
  Finish(4);
  ASSERT_EQ(answers.size(), 2U);
  EXPECT_EQ(*answers[1], 4);
}

TEST_F(SharedReadTest, AnAnswerThatThrowsIsNotTakenForAReadThatCouldNotStart) {
  Reads reads = Make();
  auto at_once = [](Reads::Done done) { done(3, milliseconds(200)); };
  EXPECT_THROW(
      reads.Get("today", at_once, [](const StatusOr<int>&) { throw std::runtime_error("answer"); }),
      std::runtime_error);
  std::vector<StatusOr<int>> answers;
  reads.Get("today", ReadOf("today"), Into(answers));
  EXPECT_TRUE(started_.empty());  // the read went through, and is kept
  ASSERT_EQ(answers.size(), 1U);
  EXPECT_EQ(*answers[0], 3);
}

TEST_F(SharedReadTest, AReadFinishingAfterItsOwnerWentIsDropped) {
  std::vector<StatusOr<int>> answers;
  {
    Reads reads = Make();
    reads.Get("today", ReadOf("today"), Into(answers));
  }
  Finish(1);
  EXPECT_TRUE(answers.empty());
}

}  // namespace
}  // namespace tp
