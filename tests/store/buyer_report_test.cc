// A buyer's timeline as the store reads it (store/buyer_report.h): the
// purchases by purchased_at, the touchpoints by due time with their
// histories and the zone and tier each was planned in, the pending count.
#include "store/store_test.h"

namespace tp {
namespace {

TEST_F(SqliteStoreTest, ABuyersTimelineComesBackInOrderWithItsHistory) {
  auto store = MustOpen();
  FakeClock clock(At("2026-11-01T10:00:00+08:00"));
  Scheduler scheduler(*store, clock, rules_);
  auto unknown = store->GetBuyer("lin");
  ASSERT_TRUE(unknown.ok());
  EXPECT_FALSE(unknown->has_value());

  // The later purchase arrives first; the report orders them by time.
  ASSERT_TRUE(scheduler
                  .Ingest({"o2", "lin", "daily", 2, 240, At("2026-10-31T09:00:00Z"),
                           "Europe/Berlin", R"({"style":"natural"})"})
                  .ok());
  ASSERT_TRUE(
      scheduler.Ingest({"o1", "lin", "daily", 2, 240, At("2026-10-20T09:00:00Z"), ""}).ok());
  clock.Set(At("2026-11-01T10:00:00+01:00"));
  ASSERT_GE(scheduler.RunDue()->fired, 1u);

  auto report = store->GetBuyer("lin");
  ASSERT_TRUE(report.ok() && report->has_value()) << report.status().message();
  const BuyerReport& r = **report;
  EXPECT_EQ(r.buyer_id, "lin");
  // At the latest purchase, o2, planned as the buyer's first (o1 came later).
  EXPECT_EQ(r.tier, "novice");
  EXPECT_FALSE(r.opted_out);
  ASSERT_EQ(r.purchases.size(), 2u);
  EXPECT_EQ(r.purchases[0].purchase.order_id, "o1");
  EXPECT_EQ(r.purchases[0].zone, "Asia/Shanghai");  // the default, spelt out
  EXPECT_EQ(r.purchases[1].purchase.order_id, "o2");
  EXPECT_EQ(r.purchases[1].zone, "Europe/Berlin");
  EXPECT_EQ(r.purchases[1].purchase.attributes, R"({"style":"natural"})");
  EXPECT_EQ(r.purchases[1].tier, "novice");

  ASSERT_FALSE(r.touchpoints.empty());
  for (std::size_t i = 1; i < r.touchpoints.size(); ++i) {
    EXPECT_LE(r.touchpoints[i - 1].due_at, r.touchpoints[i].due_at) << i;
  }
  int pending = 0;
  bool saw_fired = false, saw_cancelled = false;
  for (const TouchpointRecord& t : r.touchpoints) {
    if (t.state == TouchpointState::kPending) {
      ++pending;  // planned, not moved: no line yet
      continue;
    }
    ASSERT_FALSE(t.history.empty()) << t.id;
    EXPECT_EQ(t.history.back().state, t.state) << t.id;
    if (t.state == TouchpointState::kFired) {
      saw_fired = true;
      EXPECT_EQ(t.order_id, "o2");
      EXPECT_EQ(t.zone, "Europe/Berlin");
      ASSERT_TRUE(t.fire_at.has_value());
      EXPECT_EQ(t.history.back().reason, "queued on outbox");
    }
    if (t.state == TouchpointState::kCancelled) {
      saw_cancelled = true;  // o1's, born cancelled: o2 came after it
      EXPECT_EQ(t.order_id, "o1");
      EXPECT_EQ(t.reason, "repurchased: a newer purchase was already recorded");
    }
  }
  EXPECT_TRUE(saw_fired);
  EXPECT_TRUE(saw_cancelled);
  EXPECT_EQ(*store->PendingCount(), pending);
}

// Only the last purchases and their touchpoints, with how many are left
// out (a buyer id shared by walk-in sales has thousands).
TEST_F(SqliteStoreTest, ABuyersTimelineCanShowItsLastPurchasesAlone) {
  auto store = MustOpen();
  FakeClock clock(At("2026-11-01T10:00:00+08:00"));
  Scheduler scheduler(*store, clock, rules_);
  for (int i = 1; i <= 3; ++i) {
    const std::string order = "o" + std::to_string(i);
    ASSERT_TRUE(scheduler
                    .Ingest({order, "lin", "daily", 2, 240,
                             At("2026-10-2" + std::to_string(i) + "T09:00:00Z"), ""})
                    .ok());
  }
  auto all = store->GetBuyer("lin");
  ASSERT_TRUE(all.ok() && all->has_value());
  EXPECT_EQ((*all)->purchases.size(), 3U);
  EXPECT_EQ((*all)->earlier_purchases, 0);

  auto last = store->GetBuyer("lin", 2);
  ASSERT_TRUE(last.ok() && last->has_value()) << last.status().message();
  const BuyerReport& r = **last;
  ASSERT_EQ(r.purchases.size(), 2U);
  EXPECT_EQ(r.purchases[0].purchase.order_id, "o2");
  EXPECT_EQ(r.purchases[1].purchase.order_id, "o3");
  EXPECT_EQ(r.earlier_purchases, 1);
  std::size_t shown = 0;
  for (const TouchpointRecord& t : (*all)->touchpoints) {
    if (t.order_id != "o1") ++shown;
  }
  ASSERT_EQ(r.touchpoints.size(), shown);
  for (const TouchpointRecord& t : r.touchpoints) EXPECT_NE(t.order_id, "o1") << t.id;
  // o2's were cancelled by o3: their history comes with them.
  EXPECT_TRUE(std::any_of(r.touchpoints.begin(), r.touchpoints.end(),
                          [](const auto& t) { return t.order_id == "o2" && !t.history.empty(); }));

  auto none = store->GetBuyer("lin", 0);
  ASSERT_TRUE(none.ok() && none->has_value());
  EXPECT_TRUE((*none)->purchases.empty());
  EXPECT_TRUE((*none)->touchpoints.empty());
  EXPECT_EQ((*none)->earlier_purchases, 3);
}

}  // namespace
}  // namespace tp
