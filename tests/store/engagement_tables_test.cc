// Engagement events in SQLite (store/engagement_tables.h), through the
// scheduler as the daemon records them: idempotency with the differing
// field named, the touchpoint an event names or is credited to, stop_on,
// and a step's `when` decided at its fire.
#include "store/engagement_store_test.h"

namespace tp {
namespace {

class EngagementTablesTest : public EngagementStoreTest {
 protected:
  EventOutcome Record(const std::string& id, const std::string& buyer, const std::string& type,
                      std::string_view at, const std::string& touchpoint = "") {
    auto r = scheduler_->RecordEvent({id, buyer, type, At(at), touchpoint});
    EXPECT_TRUE(r.ok()) << r.status().message();
    return r.ok() ? *r : EventOutcome{};
  }
  // Runs the fire loop at `at`.
  void FireAt(std::string_view at) {
    clock_.Set(At(at));
    ASSERT_TRUE(scheduler_->RunDue().ok());
  }
  // A touchpoint of buyer `buyer` with `topic`, as the store reports it.
  std::optional<TouchpointRecord> Touchpoint(const std::string& buyer, const std::string& topic) {
    auto report = store_->GetBuyer(buyer);
    if (!report.ok() || !report->has_value()) return std::nullopt;
    for (const TouchpointRecord& t : (*report)->touchpoints) {
      if (t.topic == topic) return t;
    }
    return std::nullopt;
  }
};

TEST_F(EngagementTablesTest, AnEventIdIsRecordedOnceAndAConflictNamesTheField) {
  EXPECT_EQ(Record("e1", "lin", "read", "2026-11-01T09:00:00+08:00").kind,
            EventOutcome::Kind::kRecorded);
  EXPECT_EQ(Record("e1", "lin", "read", "2026-11-01T09:00:00+08:00").kind,
            EventOutcome::Kind::kDuplicate);
  const EventOutcome conflict = Record("e1", "lin", "read", "2026-11-01T09:00:01+08:00");
  EXPECT_EQ(conflict.kind, EventOutcome::Kind::kConflict);
  EXPECT_EQ(conflict.conflict_field, "at");
  EXPECT_EQ(Count("SELECT COUNT(*) FROM events"), 1);
  // The buyer exists now, with no purchase: an event older than any.
  EXPECT_EQ(Count("SELECT COUNT(*) FROM buyers WHERE buyer_id = 'lin'"), 1);
}

TEST_F(EngagementTablesTest, AnEventIsCreditedToItsTouchpointOrTheLastFired) {
  ASSERT_TRUE(scheduler_->Ingest({"o1", "lin", "daily", 1, 120, clock_.Now(), ""}).ok());
  ASSERT_TRUE(scheduler_->Ingest({"o2", "wu", "daily", 1, 120, clock_.Now(), ""}).ok());
  FireAt("2026-11-02T10:00:00+08:00");
  const auto fired = Touchpoint("lin", "how-to-wear");
  ASSERT_TRUE(fired.has_value());
  ASSERT_EQ(fired->state, TouchpointState::kFired);

  // Named: credited to it; named by another buyer: refused, nothing kept.
  EXPECT_EQ(Record("e1", "lin", "clicked", "2026-11-02T11:00:00+08:00", fired->id).kind,
            EventOutcome::Kind::kRecorded);
  EXPECT_EQ(Record("e2", "wu", "clicked", "2026-11-02T11:00:00+08:00", fired->id).kind,
            EventOutcome::Kind::kUnknownTouchpoint);
  // Not named: the last one fired within the attribution window (7d).
  Record("e3", "lin", "read", "2026-11-08T09:00:00+08:00");
  Record("e4", "lin", "read", "2026-11-10T09:00:00+08:00");
  // Before anything fired: none.
  Record("e5", "wu", "read", "2026-11-02T09:00:00+08:00");
  EXPECT_EQ(Count("SELECT COUNT(*) FROM events WHERE credited IS NOT NULL"), 2);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM events WHERE event_id IN ('e1', 'e3') AND credited = "
                  "(SELECT id FROM touchpoints WHERE topic = 'how-to-wear' AND buyer = "
                  "(SELECT id FROM buyers WHERE buyer_id = 'lin'))"),
            2);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM events WHERE event_id = 'e2'"), 0);
}

TEST_F(EngagementTablesTest, OfTwoFiredAtOneInstantTheOneRecordedLastIsCredited) {
  // Both purchases' how-to-wear fire in one pass, at one instant.
  ASSERT_TRUE(scheduler_->Ingest({"o1", "lin", "daily", 1, 120, clock_.Now(), ""}).ok());
  ASSERT_TRUE(
      scheduler_->Ingest({"o2", "lin", "daily", 1, 120, At("2026-11-01T20:00:00+08:00"), ""}).ok());
  FireAt("2026-11-02T20:00:00+08:00");
  EXPECT_EQ(Count("SELECT COUNT(*) FROM touchpoints WHERE state = 1"), 2);
  const EventOutcome read = Record("e1", "lin", "read", "2026-11-02T21:00:00+08:00");
  EXPECT_EQ(Count("SELECT COUNT(*) FROM events WHERE credited = (SELECT t.id FROM touchpoints t "
                  "JOIN purchases p ON p.id = t.purchase WHERE p.order_id = 'o2' AND "
                  "t.topic = 'how-to-wear')"),
            1);
  // What the store answers is what it recorded.
  auto last = store_->LastFiredBefore("lin", At("2026-11-02T21:00:00+08:00"));
  ASSERT_TRUE(last.ok() && last->touchpoint.has_value());
  EXPECT_EQ(read.credited, last->touchpoint->handle);
  EXPECT_NE(last->buyer, 0u);
  EXPECT_EQ(last->touchpoint->cadence, "trust");
  EXPECT_EQ(last->touchpoint->zone, FindZone("Asia/Shanghai"));
}

TEST_F(EngagementTablesTest, ARetryNamingATouchpointRetentionPrunedIsStillADuplicate) {
  ASSERT_TRUE(scheduler_->Ingest({"o1", "lin", "daily", 1, 120, clock_.Now(), ""}).ok());
  FireAt("2026-11-02T10:00:00+08:00");
  const std::string id = Touchpoint("lin", "how-to-wear")->id;
  EXPECT_EQ(Record("e1", "lin", "clicked", "2026-11-02T11:00:00+08:00", id).kind,
            EventOutcome::Kind::kRecorded);
  // Delivered (acked), then pruned.
  auto leased = store_->Lease("outbox", 10, std::chrono::seconds(30), clock_.Now());
  ASSERT_TRUE(leased.ok());
  ASSERT_EQ(leased->size(), 1u);
  std::vector<std::string> receipts = {(*leased)[0].receipt};
  ASSERT_EQ(*store_->Ack("outbox", receipts, clock_.Now()), 1);
  // Opted out, so that nothing of the purchase is pending: retention keeps
  // a purchase's fired steps while any other is.
  ASSERT_TRUE(scheduler_->OptOut("lin").ok());
  auto pruned = store_->PruneFinished(At("2026-11-03T00:00:00+08:00"), 0, 1000);
  ASSERT_TRUE(pruned.ok()) << pruned.status().message();
  ASSERT_EQ(pruned->deleted, 1);

  EXPECT_EQ(Record("e1", "lin", "clicked", "2026-11-02T11:00:00+08:00", id).kind,
            EventOutcome::Kind::kDuplicate);
  EXPECT_EQ(Record("e1", "lin", "read", "2026-11-02T11:00:00+08:00", id).kind,
            EventOutcome::Kind::kConflict);
  EXPECT_EQ(Record("e2", "lin", "clicked", "2026-11-02T11:00:00+08:00", id).kind,
            EventOutcome::Kind::kUnknownTouchpoint);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM events"), 1);
}

TEST_F(EngagementTablesTest, StopOnAndWhenDecideAsInMemory) {
  ASSERT_TRUE(scheduler_->Ingest({"o1", "lin", "daily", 1, 120, clock_.Now(), ""}).ok());
  ASSERT_TRUE(scheduler_->Ingest({"o2", "wu", "daily", 1, 120, clock_.Now(), ""}).ok());
  FireAt("2026-11-02T10:00:00+08:00");
  const EventOutcome replied = Record("e1", "lin", "replied", "2026-11-02T12:00:00+08:00");
  EXPECT_EQ(replied.cancelled, 1);
  const auto comfort = Touchpoint("lin", "comfort-check");
  EXPECT_EQ(comfort->state, TouchpointState::kCancelled);
  EXPECT_EQ(comfort->reason, "buyer replied at 2026-11-02T04:00:00Z");
  EXPECT_EQ(Touchpoint("wu", "comfort-check")->state, TouchpointState::kPending);

  for (const char* at :
       {"2026-11-04T10:00:00+08:00", "2026-11-06T10:00:00+08:00", "2026-11-11T10:00:00+08:00"}) {
    FireAt(at);
  }
  EXPECT_EQ(Touchpoint("lin", "style-ideas")->state, TouchpointState::kFired);
  EXPECT_EQ(Touchpoint("lin", "trust-checkpoint")->state, TouchpointState::kSkipped);
  EXPECT_EQ(Touchpoint("lin", "trust-checkpoint")->reason,
            "when: not_engaged, and the buyer replied at 2026-11-02T12:00:00+08:00");
  EXPECT_EQ(Touchpoint("wu", "style-ideas")->state, TouchpointState::kSkipped);
  EXPECT_EQ(Touchpoint("wu", "trust-checkpoint")->state, TouchpointState::kFired);
  // A skipped step leaves a history line with its reason.
  EXPECT_EQ(Touchpoint("wu", "style-ideas")->history.back().reason,
            "when: engaged, and the buyer has not replied or clicked since the purchase");
}

}  // namespace
}  // namespace tp
