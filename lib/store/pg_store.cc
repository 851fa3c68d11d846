#include "store/pg_store.h"

#include <string>
#include <utility>

#include "pg/connection.h"
#include "pg/url.h"
#include "store/pg/outbox.h"
#include "store/pg/queues.h"
#include "store/pg/replan.h"
#include "store/pg/reports.h"
#include "store/pg/rows.h"
#include "store/pg/schema.h"
#include "store/pg/session.h"
#include "store/pg/tables.h"

namespace tp {

static_assert(PgStore::kGroupBuyers == pgstore::kTurnsEach);
static_assert(PgStore::kLocksEach > 2 * PgStore::kGroupBuyers);

struct PgStore::Impl {
  Impl(std::string url, std::string_view application_name, std::string_view settings,
       const RulesInForce& rules)
      : session(std::move(url), std::string(application_name), std::string(settings)),
        tables(session, rules),
        queues(session),
        outbox(session),
        reports(session),
        replan(session, rules) {}
  pgstore::Session session;
  pgstore::Tables tables;
  pgstore::Queues queues;
  pgstore::Outbox outbox;
  pgstore::Reports reports;
  pgstore::Replan replan;
};

PgStore::PgStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PgStore::~PgStore() = default;

namespace {

// Every read of the firing session goes by an index, in its order: a claim
// reads the due rows in the pending index's order up to its limit, the
// rest read rows by id. With statistics taken at the wrong moment (tables
// that grew from nothing, an ANALYZE in the middle of a burst), the planner
// chose otherwise for some of them, for seconds at a time: a scan of the
// whole touchpoints table to read 1,000 rows by id (75 ms against 13), a
// bitmap scan of all the due rows, sorted, for a claim of 2,048 (41 ms
// against 22; docs/benchmarks.md). Both kinds of plan are off here.
constexpr std::string_view kFiringSettings = "-c enable_seqscan=off -c enable_bitmapscan=off";

}  // namespace

StatusOr<std::unique_ptr<PgStore>> PgStore::Make(const std::string& url,
                                                 std::string_view application_name,
                                                 std::string_view settings,
                                                 const RulesInForce& rules) {
  try {
    return std::unique_ptr<PgStore>(
        new PgStore(std::make_unique<Impl>(url, application_name, settings, rules)));
  } catch (const std::exception& e) {
    return pg::ToStatus("cannot open database " + pg::Redacted(url), e);
  }
}

StatusOr<std::unique_ptr<PgStore>> PgStore::Open(const std::string& url, const RulesInForce& rules,
                                                 std::string_view application_name) {
  return Make(url, application_name, {}, rules);
}

StatusOr<std::unique_ptr<PgStore>> PgStore::OpenFiring(const std::string& url,
                                                       const RulesInForce& rules) {
  return Make(url, "touchpointd-fire", kFiringSettings, rules);
}

StatusOr<int> PgStore::SchemaVersion() {
  return impl_->session.Read("read the schema version", [&]() -> StatusOr<int> {
    return pgstore::ReadVersion(impl_->session.conn());
  });
}

namespace {

const pg::Statement kOtherDaemonsRoles(
    "SELECT DISTINCT a.usename::text FROM pg_stat_activity a WHERE a.datname = current_database() "
    "AND a.application_name LIKE 'touchpointd%' AND a.usename <> current_user AND NOT "
    "(pg_has_role(current_user, 'pg_read_all_stats', 'USAGE') AND "
    "pg_has_role(a.usesysid, 'pg_read_all_stats', 'USAGE')) ORDER BY 1");

}  // namespace

StatusOr<std::vector<std::string>> PgStore::OtherDaemonsRoles() {
  return impl_->session.Read("read the other daemons' roles",
                             [&]() -> StatusOr<std::vector<std::string>> {
                               pg::Result r = impl_->session.conn().Run(kOtherDaemonsRoles);
                               std::vector<std::string> roles;
                               for (int i = 0; i < r.rows(); ++i) roles.emplace_back(r.Text(i, 0));
                               return roles;
                             });
}

namespace {

// PostgreSQL 15's lock table: max_locks_per_transaction times (MaxBackends
// + max_prepared_transactions), MaxBackends being max_connections +
// autovacuum_max_workers + 1 + max_worker_processes + max_wal_senders.
const pg::Statement kLockTable(
    "SELECT current_setting('max_locks_per_transaction')::bigint, "
    "current_setting('max_connections')::bigint + "
    "current_setting('autovacuum_max_workers')::bigint + 1 + "
    "current_setting('max_worker_processes')::bigint + "
    "current_setting('max_wal_senders')::bigint + "
    "current_setting('max_prepared_transactions')::bigint, "
    "(SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = 'touchpointd' OR "
    "application_name LIKE 'touchpointd (%')");

}  // namespace

StatusOr<PgStore::LockTable> PgStore::ReadLockTable() {
  return impl_->session.Read("read the size of the server's lock table",
                             [&]() -> StatusOr<LockTable> {
                               pg::Result r = impl_->session.conn().Run(kLockTable);
                               LockTable t;
                               t.max_locks_per_transaction = r.Int64(0, 0);
                               t.slots = r.Int64(0, 1);
                               t.entries = t.max_locks_per_transaction * t.slots;
                               t.daemons = r.Int64(0, 2);
                               return t;
                             });
}

std::string PgStore::LockTableAdvice(const LockTable& t) {
  const std::int64_t needed = t.daemons * kLocksEach;
  if (t.slots <= 0 || needed <= t.entries) return {};
  // A quarter more for the other sessions' locks, in steps of 64 (the
  // setting's default).
  const std::int64_t wanted = (needed * 5 / 4 + t.slots - 1) / t.slots;
  const std::int64_t advised = (wanted + 63) / 64 * 64;
  const auto n = [](std::int64_t v) { return std::to_string(v); };
  return "the database server's lock table has room for " + n(t.entries) +
         " locks (max_locks_per_transaction " + n(t.max_locks_per_transaction) + " times " +
         n(t.slots) + " server processes and prepared transactions), and the " + n(t.daemons) +
         " daemons on the server may hold about " + n(kLocksEach) + " each, " + n(needed) +
         " in all; when it is full, every session's next lock fails \"out of shared memory\": "
         "raise max_locks_per_transaction to " +
         n(advised) + " or more (a server restart; docs/scaling.md)";
}

void PgStore::SetAnswerLimit(std::chrono::milliseconds limit) {
  impl_->session.set_answer_limit(limit);
  impl_->replan.set_on_loop();
  if (limit <= std::chrono::seconds(1)) return;
  try {
    impl_->session.set_statement_timeout(limit - std::chrono::seconds(1));
  } catch (const std::exception&) {
    // The settings are kept for the connection that replaces this one.
  }
}

Status PgStore::Probe() {
  // On a connection of its own: the store's may be inside a transaction
  // that failed for another reason (a deadlock), which says nothing of
  // the server.
  bool standby = false;
  Status reached = pg::Guard("reach the database", [&] {
    auto probe = pg::Connection::Open(impl_->session.url(), "touchpointd-probe");
    // A server that takes connections and answers nothing (what the stall
    // watch probes for) must not hold the probe, and the watch, for good.
    probe->set_answer_limit(kProbeAnswerLimit);
    standby = probe->Exec("SELECT pg_is_in_recovery()").Bool(0, 0);
    return Status::Ok();
  });
  if (!reached.ok()) {
    const std::string why = "the database does not answer: " + reached.message();
    return reached.unavailable() ? Status::Unavailable(why) : Status::Error(why);
  }
  // A standby answers, and refuses every write (25006): found there (a
  // URL of several hosts without target_session_attrs=read-write, or an
  // address still on the old primary after a failover), the daemon must
  // pause and say why, not answer 503 to each purchase as if all was well.
  if (standby) {
    return Status::Unavailable(
        "the database takes no writes: the server is a standby (in recovery); point the "
        "URL at the primary, or name every host with target_session_attrs=read-write");
  }
  return Status::Ok();
}

void PgStore::ServerAnswers() { pgstore::Session::ServerAnswers(); }

std::chrono::milliseconds PgStore::LongestWait() { return pg::Connection::LongestWait(); }

int PgStore::CutWaiting(std::chrono::milliseconds waited) {
  return pg::Connection::CutWaiting(waited);
}

Status PgStore::SetMaxSize(std::optional<std::uint64_t> /*bytes*/) { return Status::Ok(); }

Status PgStore::Begin() { return impl_->session.Begin(); }
Status PgStore::Commit() { return impl_->session.Commit(); }
Status PgStore::Rollback() { return impl_->session.Rollback(); }
Status PgStore::Savepoint() { return impl_->session.Savepoint(); }
Status PgStore::Release() { return impl_->session.Release(); }
Status PgStore::RollbackTo() { return impl_->session.RollbackTo(); }
Status PgStore::TakeBuyersTurns(std::span<const std::string> buyer_ids) {
  return impl_->tables.TakeBuyersTurns(buyer_ids);
}

Status PgStore::PrepareIngest(std::span<const Purchase> purchases) {
  return impl_->tables.PrepareIngest(purchases);
}
StatusOr<PurchaseMatch> PgStore::MatchPurchase(const Purchase& purchase, const Zone* zone) {
  return impl_->tables.MatchPurchase(purchase, zone);
}
StatusOr<BuyerState> PgStore::LoadBuyer(std::string_view buyer_id) {
  return impl_->tables.LoadBuyer(buyer_id);
}
Status PgStore::AddPurchase(const Purchase& purchase, const Zone* zone, int tier,
                            std::span<const PlannedTouchpoint> touchpoints, Instant now) {
  return impl_->tables.AddPurchase(purchase, zone, tier, touchpoints, now);
}
StatusOr<CadenceCounts> PgStore::CancelEarlier(std::string_view buyer_id, Instant up_to,
                                               std::string_view except_order, Instant now,
                                               std::string_view reason) {
  return impl_->tables.CancelEarlier(buyer_id, up_to, except_order, now, reason);
}
StatusOr<CadenceCounts> PgStore::SetOptedOut(std::string_view buyer_id, bool opted_out,
                                             Instant now) {
  return impl_->tables.SetOptedOut(buyer_id, opted_out, now);
}
StatusOr<std::optional<Instant>> PgStore::NextWakeup() { return impl_->tables.NextWakeup(); }
StatusOr<std::vector<DueTouchpoint>> PgStore::TakeDue(Instant now, std::size_t max) {
  return impl_->tables.TakeDue(now, max);
}
StatusOr<std::vector<FiredTouchpoint>> PgStore::FiredBetween(const DueTouchpoint& due, Instant from,
                                                             Instant to, bool sinks) {
  return impl_->tables.FiredBetween(due, from, to, sinks);
}
Status PgStore::ApplyOutcomes(std::span<const DueTouchpoint> due,
                              std::span<const FiringOutcome> outcomes) {
  return impl_->tables.ApplyOutcomes(due, outcomes);
}
StatusOr<EventMatch> PgStore::MatchEvent(const EngagementEvent& event) {
  return impl_->tables.MatchEvent(event);
}
StatusOr<BuyerTouchpoint> PgStore::FindTouchpoint(std::string_view buyer_id,
                                                  std::string_view touchpoint_id) {
  return impl_->tables.FindTouchpoint(buyer_id, touchpoint_id);
}
StatusOr<BuyerTouchpoint> PgStore::LastFiredBefore(std::string_view buyer_id, Instant at) {
  return impl_->tables.LastFiredBefore(buyer_id, at);
}
StatusOr<bool> PgStore::AddEvent(const EngagementEvent& event, std::uint64_t buyer,
                                 std::uint64_t credited, Instant now) {
  return impl_->tables.AddEvent(event, buyer, credited, now);
}
StatusOr<CadenceCounts> PgStore::CancelCadences(std::string_view buyer_id,
                                                std::span<const std::string> cadences,
                                                Instant up_to, Instant now,
                                                std::string_view reason) {
  return impl_->tables.CancelCadences(buyer_id, cadences, up_to, now, reason);
}
StatusOr<std::vector<EngagementEvent>> PgStore::FirstEventsSince(
    std::string_view buyer_id, Instant since, std::span<const std::string> types) {
  return impl_->tables.FirstEventsSince(buyer_id, since, types);
}

StatusOr<std::optional<EngagementEvent>> PgStore::FirstEngagement(
    const DueTouchpoint& due, std::span<const std::string> types, Instant until) {
  return impl_->tables.FirstEngagement(due, types, until);
}

StatusOr<std::vector<LeasedRow>> PgStore::TakeLease(std::string_view queue, int max,
                                                    Millis visibility, Instant now) {
  return impl_->queues.TakeLease(queue, max, visibility, now);
}
StatusOr<int> PgStore::Ack(std::string_view queue, std::span<const std::string> receipts,
                           Instant now) {
  return impl_->queues.Ack(queue, receipts, now);
}
StatusOr<std::int64_t> PgStore::QueueDepth(std::string_view queue) {
  return impl_->queues.QueueDepth(queue);
}
void PgStore::Fill(std::vector<LeasedRow> leased, std::string queue, Filled done) {
  Status s = impl_->queues.Fill(leased, queue);
  if (!s.ok()) return done(s);
  done(std::move(leased));
}
StatusOr<std::vector<LeasedMessage>> PgStore::Lease(std::string_view queue, int max,
                                                    Millis visibility, Instant now) {
  auto rows = TakeLease(queue, max, visibility, now);
  if (!rows.ok()) return rows.status();
  if (Status s = impl_->queues.Fill(*rows, queue); !s.ok()) return s;
  std::vector<LeasedMessage> out;
  out.reserve(rows->size());
  for (LeasedRow& r : *rows) out.push_back(std::move(r.message));
  return out;
}

StatusOr<std::vector<OutboxItem>> PgStore::DueDeliveries(std::string_view sink, Instant now,
                                                         std::size_t max, bool in_order,
                                                         std::span<const std::int64_t> attempting) {
  return impl_->outbox.DueDeliveries(sink, now, max, in_order, attempting);
}
StatusOr<std::optional<Instant>> PgStore::NextDeliveryAfter(std::string_view sink, Instant now) {
  return impl_->outbox.NextDeliveryAfter(sink, now);
}
Status PgStore::LetGoOfSink(std::string_view sink) { return impl_->outbox.LetGoOfSink(sink); }
bool PgStore::DeliveredElsewhere(std::string_view sink) const {
  return impl_->outbox.DeliveredElsewhere(sink);
}

Status PgStore::RecordDeliveries(std::span<const DeliveryResult> results) {
  return impl_->outbox.RecordDeliveries(results);
}
StatusOr<std::vector<DeadLetter>> PgStore::DeadLetters(std::string_view sink, std::int64_t after,
                                                       int limit) {
  return impl_->outbox.DeadLetters(sink, after, limit);
}
StatusOr<OutboxStore::ReplayedOne> PgStore::ReplayDeadLetter(std::int64_t id, Instant now) {
  return OneOf(impl_->outbox.ReplayDeadLetters(id, "", 0, Instant::max(), -1, now));
}
StatusOr<OutboxStore::ReplayedStep> PgStore::ReplayDeadLettersAfter(std::string_view sink,
                                                                    std::int64_t after,
                                                                    Instant dead_by, int limit,
                                                                    Instant now) {
  return impl_->outbox.ReplayDeadLetters(0, sink, after, dead_by, limit, now);
}
StatusOr<std::vector<std::pair<std::string, std::int64_t>>> PgStore::OutboxBySink(
    std::int64_t limit) {
  return impl_->outbox.OutboxBySink(limit);
}
StatusOr<std::int64_t> PgStore::OutboxDepth(std::string_view sink) {
  return impl_->outbox.OutboxDepth(sink);
}
StatusOr<std::int64_t> PgStore::DeadLetterCount(std::string_view sink) {
  return impl_->outbox.DeadLetterCount(sink);
}
std::int64_t PgStore::TakenOver() const { return impl_->outbox.taken_over(); }
std::int64_t PgStore::HeldForOrder() const { return impl_->tables.held_for_order(); }

StatusOr<PlanningState> PgStore::Planning() { return impl_->replan.Planning(); }
Status PgStore::SetPlanning(std::string_view fingerprint, bool replan) {
  return impl_->replan.SetPlanning(fingerprint, replan);
}
Status PgStore::NotePlanningByOtherRules(std::string_view fingerprint) {
  return impl_->replan.NotePlanningByOtherRules(fingerprint);
}
StatusOr<bool> PgStore::ReplanOnceOtherRulesGone(std::string_view fingerprint, Millis gone) {
  return impl_->replan.ReplanOnceOtherRulesGone(fingerprint, gone);
}
StatusOr<ReplanStep> PgStore::ReplanSome(const PurchaseReplanner& replan,
                                         std::string_view fingerprint,
                                         std::chrono::steady_clock::time_point deadline,
                                         Instant now) {
  return impl_->replan.ReplanSome(replan, fingerprint, deadline, now);
}

StatusOr<std::optional<BuyerReport>> PgStore::GetBuyer(std::string_view buyer_id,
                                                       std::int64_t last_purchases) {
  return impl_->reports.GetBuyer(buyer_id, last_purchases);
}
StatusOr<std::int64_t> PgStore::PendingCount() { return impl_->reports.PendingCount(); }
StatusOr<PruneResult> PgStore::PruneFinished(Instant cutoff, std::int64_t after,
                                             std::int64_t span) {
  return impl_->reports.PruneFinished(cutoff, after, span);
}

}  // namespace tp
