// A store test over the engagement rules (tests/engagement_rules.h), with a
// scheduler on a fake clock: the fixture the engagement tables' and the
// outcomes report's tests share.
#pragma once

#include <memory>

#include "engagement_rules.h"
#include "store/store_test.h"

namespace tp {

class EngagementStoreTest : public SqliteStoreTest {
 protected:
  void SetUp() override {
    rules_.Swap(testing::MustLoad(testing::kEngagementRules));
    store_ = MustOpen();
    ASSERT_NE(store_, nullptr);
    scheduler_ = std::make_unique<Scheduler>(*store_, clock_, rules_);
  }

  FakeClock clock_{At("2026-11-01T10:00:00+08:00")};
  std::unique_ptr<SqliteStore> store_;
  std::unique_ptr<Scheduler> scheduler_;
};

}  // namespace tp
