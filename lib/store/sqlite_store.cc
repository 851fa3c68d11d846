#include "store/sqlite_store.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <spdlog/spdlog.h>

#include <unordered_set>
#include <utility>

#include "store/buyer_report.h"
#include "store/database.h"
#include "store/engagement_tables.h"
#include "store/event_rows.h"
#include "store/fire_tables.h"
#include "store/gauges.h"
#include "store/outbox_tables.h"
#include "store/queue_tables.h"
#include "store/replan_rows.h"
#include "store/retention.h"
#include "store/row_writer.h"
#include "store/schedule_tables.h"
#include "store/sql.h"

namespace tp {

// One connection's tables, in the order they depend on each other.
struct SqliteStore::Impl {
  explicit Impl(std::unique_ptr<Database> database)
      : db(std::move(database)),
        rows(*db),
        events(db->sql()),
        schedule(*db, rows),
        fire(*db, rows, events),
        engagement(*db, rows),
        queues(*db, rows, events),
        outbox(*db, rows),
        replan(*db, rows),
        retention(*db),
        reports(*db, rows) {}

  // The fan-out's routing, derived from the rules in force when their
  // generation changes.
  void Route() {
    if (routed == rules->generation()) return;
    fire.SetRouting(**rules);
    routed = rules->generation();
  }

  std::unique_ptr<Database> db;  // first: closed last
  const RulesInForce* rules = nullptr;
  std::optional<std::uint64_t> routed;  // the generation routing follows
  RowWriter rows;
  EventRows events;
  ScheduleTables schedule;
  FireTables fire;
  EngagementTables engagement;
  QueueTables queues;
  OutboxTables outbox;
  ReplanRows replan;
  RetentionTables retention;
  BuyerReports reports;
};

SqliteStore::SqliteStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

SqliteStore::~SqliteStore() = default;

StatusOr<std::unique_ptr<SqliteStore>> SqliteStore::Open(const std::string& path,
                                                         const RulesInForce& rules) {
  auto db = Database::Open(path, rules->database_sync == Rules::DatabaseSync::kFull);
  if (!db.ok()) return db.status();
  std::unique_ptr<Impl> impl;
  try {
    impl = std::make_unique<Impl>(std::move(*db));
  } catch (const std::exception& e) {
    return sql::Failed("cannot open database " + path, e);
  }
  try {
    impl->db->SetMaxSize(rules->database_max_size);
  } catch (const std::exception& e) {
    return sql::Failed("cannot open database " + path, e);
  }
  impl->rules = &rules;
  impl->Route();
  auto store = std::unique_ptr<SqliteStore>(new SqliteStore(std::move(impl)));
  if (auto planning = store->Planning(); !planning.ok()) return planning.status();
  return store;
}

Status SqliteStore::MigrateTo(const std::string& path, int version) {
  if (version < 0 || version > kSchemaVersion) {
    return Status::Error("no schema version " + std::to_string(version));
  }
  return sql::Guard("migrate", [&]() -> Status {
    SQLite::Database db(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    return Migrate(db, version);
  });
}

StatusOr<int> SqliteStore::SchemaVersion() {
  return sql::Guard("schema version",
                    [&]() -> StatusOr<int> { return ReadVersion(impl_->db->sql()); });
}

StatusOr<StorageSpace> SqliteStore::Space() { return impl_->db->Space(); }

std::uint64_t SqliteStore::FullFailures() { return sql::FullFailures(); }

Status SqliteStore::SetMaxSize(std::optional<std::uint64_t> bytes) {
  return sql::Guard("set database_max_size", [&] {
    impl_->db->SetMaxSize(bytes);
    return Status::Ok();
  });
}

Status SqliteStore::Begin() { return impl_->db->Begin(); }
Status SqliteStore::Commit() { return impl_->db->Commit(); }
Status SqliteStore::Rollback() { return impl_->db->Rollback(); }
Status SqliteStore::Savepoint() { return impl_->db->Savepoint(); }
Status SqliteStore::Release() { return impl_->db->Release(); }
Status SqliteStore::RollbackTo() { return impl_->db->RollbackTo(); }

StatusOr<PurchaseMatch> SqliteStore::MatchPurchase(const Purchase& purchase, const Zone* zone) {
  return impl_->schedule.MatchPurchase(purchase, zone);
}
StatusOr<BuyerState> SqliteStore::LoadBuyer(std::string_view buyer_id) {
  return impl_->schedule.LoadBuyer(**impl_->rules, buyer_id);
}
Status SqliteStore::AddPurchase(const Purchase& purchase, const Zone* zone, int tier,
                                std::span<const PlannedTouchpoint> touchpoints, Instant now) {
  return impl_->schedule.AddPurchase(**impl_->rules, purchase, zone, tier, touchpoints, now);
}
StatusOr<CadenceCounts> SqliteStore::CancelEarlier(std::string_view buyer_id, Instant up_to,
                                                   std::string_view except_order, Instant now,
                                                   std::string_view reason) {
  return impl_->schedule.CancelEarlier(buyer_id, up_to, except_order, now, reason);
}
StatusOr<CadenceCounts> SqliteStore::SetOptedOut(std::string_view buyer_id, bool opted_out,
                                                 Instant now) {
  return impl_->schedule.SetOptedOut(buyer_id, opted_out, now);
}
StatusOr<std::optional<Instant>> SqliteStore::NextWakeup() { return impl_->fire.NextWakeup(); }
StatusOr<std::vector<DueTouchpoint>> SqliteStore::TakeDue(Instant now, std::size_t max) {
  return impl_->fire.TakeDue(now, max);
}
StatusOr<std::vector<FiredTouchpoint>> SqliteStore::FiredBetween(const DueTouchpoint& due,
                                                                 Instant from, Instant to,
                                                                 bool sinks) {
  return impl_->fire.FiredBetween(due, from, to, sinks);
}
Status SqliteStore::ApplyOutcomes(std::span<const DueTouchpoint> due,
                                  std::span<const FiringOutcome> outcomes) {
  impl_->Route();
  return impl_->fire.ApplyOutcomes(due, outcomes);
}

StatusOr<EventMatch> SqliteStore::MatchEvent(const EngagementEvent& event) {
  return impl_->engagement.Match(event);
}
StatusOr<BuyerTouchpoint> SqliteStore::FindTouchpoint(std::string_view buyer_id,
                                                      std::string_view touchpoint_id) {
  return impl_->engagement.FindTouchpoint(buyer_id, touchpoint_id);
}
StatusOr<BuyerTouchpoint> SqliteStore::LastFiredBefore(std::string_view buyer_id, Instant at) {
  return impl_->engagement.LastFiredBefore(buyer_id, at);
}
StatusOr<bool> SqliteStore::AddEvent(const EngagementEvent& event, std::uint64_t buyer,
                                     std::uint64_t credited, Instant now) {
  return impl_->engagement.Add(event, buyer, credited, now);
}
StatusOr<CadenceCounts> SqliteStore::CancelCadences(std::string_view buyer_id,
                                                    std::span<const std::string> cadences,
                                                    Instant up_to, Instant now,
                                                    std::string_view reason) {
  return impl_->engagement.CancelCadences(buyer_id, cadences, up_to, now, reason);
}
StatusOr<std::vector<EngagementEvent>> SqliteStore::FirstEventsSince(
    std::string_view buyer_id, Instant since, std::span<const std::string> types) {
  return impl_->engagement.FirstEventsSince(buyer_id, since, types);
}

StatusOr<std::optional<EngagementEvent>> SqliteStore::FirstEngagement(
    const DueTouchpoint& due, std::span<const std::string> types, Instant until) {
  return impl_->engagement.FirstEngagement(due, types, until);
}

StatusOr<std::vector<LeasedRow>> SqliteStore::TakeLease(std::string_view queue, int max,
                                                        Millis visibility, Instant now) {
  return impl_->queues.TakeLease(queue, max, visibility, now);
}
StatusOr<std::vector<LeasedMessage>> SqliteStore::Lease(std::string_view queue, int max,
                                                        Millis visibility, Instant now) {
  return impl_->queues.Lease(queue, max, visibility, now);
}
StatusOr<int> SqliteStore::Ack(std::string_view queue, std::span<const std::string> receipts,
                               Instant now) {
  return impl_->queues.Ack(queue, receipts, now);
}
StatusOr<std::int64_t> SqliteStore::QueueDepth(std::string_view queue) {
  return impl_->queues.Depth(queue);
}

StatusOr<std::vector<OutboxItem>> SqliteStore::DueDeliveries(
    std::string_view sink, Instant now, std::size_t max, bool in_order,
    std::span<const std::int64_t> attempting) {
  // One daemon: what it attempts stays its own, and is left out.
  if (in_order || attempting.empty()) return impl_->outbox.Due(sink, now, max, in_order);
  auto due = impl_->outbox.Due(sink, now, max + attempting.size(), in_order);
  if (!due.ok()) return due;
  const std::unordered_set<std::int64_t> busy(attempting.begin(), attempting.end());
  std::erase_if(*due, [&busy](const OutboxItem& item) { return busy.contains(item.id); });
  if (due->size() > max) due->resize(max);
  return due;
}
StatusOr<std::optional<Instant>> SqliteStore::NextDeliveryAfter(std::string_view sink,
                                                                Instant now) {
  return impl_->outbox.NextAfter(sink, now);
}
Status SqliteStore::RecordDeliveries(std::span<const DeliveryResult> results) {
  return impl_->outbox.Record(results);
}
StatusOr<std::vector<DeadLetter>> SqliteStore::DeadLetters(std::string_view sink,
                                                           std::int64_t after, int limit) {
  return impl_->outbox.DeadLetters(sink, after, limit);
}
StatusOr<OutboxStore::ReplayedOne> SqliteStore::ReplayDeadLetter(std::int64_t id, Instant now) {
  return OneOf(impl_->outbox.Replay(id, "", 0, Instant::max(), -1, now));
}
StatusOr<OutboxStore::ReplayedStep> SqliteStore::ReplayDeadLettersAfter(std::string_view sink,
                                                                        std::int64_t after,
                                                                        Instant dead_by, int limit,
                                                                        Instant now) {
  return impl_->outbox.Replay(0, sink, after, dead_by, limit, now);
}
StatusOr<std::vector<std::pair<std::string, std::int64_t>>> SqliteStore::OutboxBySink(
    std::int64_t limit) {
  return impl_->outbox.BySink(limit);
}
StatusOr<std::int64_t> SqliteStore::OutboxDepth(std::string_view sink) {
  return impl_->outbox.Depth(sink);
}
StatusOr<std::int64_t> SqliteStore::DeadLetterCount(std::string_view sink) {
  return impl_->outbox.DeadLetterCount(sink);
}

StatusOr<PlanningState> SqliteStore::Planning() { return impl_->replan.Planning(); }
Status SqliteStore::SetPlanning(std::string_view fingerprint, bool replan) {
  return impl_->replan.SetPlanning(fingerprint, replan);
}
StatusOr<ReplanStep> SqliteStore::ReplanSome(const PurchaseReplanner& replan,
                                             std::string_view fingerprint,
                                             std::chrono::steady_clock::time_point deadline,
                                             Instant now) {
  return impl_->replan.ReplanSome(**impl_->rules, replan, fingerprint, deadline, now);
}

StatusOr<std::optional<BuyerReport>> SqliteStore::GetBuyer(std::string_view buyer_id,
                                                           std::int64_t last_purchases) {
  return impl_->reports.GetBuyer(buyer_id, last_purchases);
}
StatusOr<std::int64_t> SqliteStore::PendingCount() {
  return sql::Guard("count pending touchpoints", [&]() -> StatusOr<std::int64_t> {
    return impl_->db->sql().execAndGet(kPendingCount).getInt64();
  });
}

StatusOr<PruneResult> SqliteStore::PruneFinished(Instant cutoff, std::int64_t after,
                                                 std::int64_t span) {
  return impl_->retention.PruneFinished(cutoff, after, span);
}

}  // namespace tp
