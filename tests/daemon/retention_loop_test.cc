// RetentionLoop over a store that fails on demand: a failed step tells the
// daemon (so that an Unavailable store reaches its watch, which pauses
// ingest and firing and probes until the store answers), and no step
// follows it at once; a working pass walks the table in steps, reporting
// what each deleted.
#include "daemon/retention_loop.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "config/rules_in_force.h"
#include "core/clock.h"
#include "due_now.h"
#include "harness.h"

namespace tp {
namespace {

// Three steps to a pass, 5 touchpoints deleted by each, unless failing.
class StepStore final : public RetentionStore {
 public:
  StatusOr<PruneResult> PruneFinished(Instant /*cutoff*/, std::int64_t after,
                                      std::int64_t span) override {
    starts.push_back(after);
    if (fail_next > 0) {
      --fail_next;
      if (unavailable) return Status::Unavailable("connection refused");
      return Status::Error("database disk image is malformed");
    }
    const std::int64_t next = after + span;
    return PruneResult{5, next, next >= 3 * span};
  }

  int fail_next = 0;
  bool unavailable = true;
  std::vector<std::int64_t> starts;  // each call's `after`
};

std::string WithRetention() {
  return std::string(testing::kDueNowConfig) + "retention: {touchpoints: 400d}\n";
}

class RetentionLoopTest : public ::testing::Test {
 protected:
  RetentionLoopTest()
      : rules_(testing::MustLoad(WithRetention())),
        loop_(io_, store_, clock_, rules_,
              {.deleted = [this](std::int64_t n) { deleted_.push_back(n); },
               .failed = [this](const Status& s) { failed_.push_back(s); }}) {}

  boost::asio::io_context io_;
  FakeClock clock_{Instant(std::chrono::hours(24 * 20000))};
  RulesInForce rules_;
  StepStore store_;
  std::vector<std::int64_t> deleted_;
  std::vector<Status> failed_;
  RetentionLoop loop_;
};

TEST_F(RetentionLoopTest, AWorkingPassWalksTheTableInStepsAndReportsEach) {
  loop_.Start();
  testing::RunLoopUntil(io_, [&] { return deleted_.size() >= 3; });
  loop_.Stop();
  EXPECT_EQ(store_.starts, (std::vector<std::int64_t>{0, 2000, 4000}));
  EXPECT_EQ(deleted_, (std::vector<std::int64_t>{5, 5, 5}));
  EXPECT_TRUE(failed_.empty());
}

TEST_F(RetentionLoopTest, AnUnavailableStoreIsReportedToTheDaemon) {
  store_.fail_next = 1;
  loop_.Start();
  testing::RunLoopUntil(io_, [&] { return !failed_.empty(); });
  loop_.Stop();
  ASSERT_EQ(failed_.size(), 1u);
  EXPECT_TRUE(failed_[0].unavailable());
  EXPECT_NE(failed_[0].message().find("connection refused"), std::string::npos);
  EXPECT_TRUE(deleted_.empty());
  EXPECT_EQ(store_.starts, (std::vector<std::int64_t>{0}));  // then waits kInterval
}

TEST_F(RetentionLoopTest, AnyFailedStepIsReportedWithItsStatus) {
  store_.unavailable = false;
  store_.fail_next = 1;
  loop_.Start();
  testing::RunLoopUntil(io_, [&] { return !failed_.empty(); });
  loop_.Stop();
  ASSERT_EQ(failed_.size(), 1u);
  EXPECT_FALSE(failed_[0].unavailable());
}

}  // namespace
}  // namespace tp
