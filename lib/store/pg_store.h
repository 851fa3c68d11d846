// The store on PostgreSQL (database: postgresql://USER@HOST:PORT/DB): the
// same contracts as SqliteStore, for several daemons sharing one database.
// Rows keep what SqliteStore's keep, in the tables of store/pg/schema.cc.
//
// It implements every interface of the store: ScheduleStore
// (scheduler/store.h), QueueStore and LeasedEvents, OutboxStore,
// ReplanStore, ReportStore, RetentionStore and Transactions. How daemons
// share the work without two deciding one touchpoint or one buyer at once
// is in store/pg/tables.h; the queues in store/pg/queues.h, the outbox
// in store/pg/outbox.h; a shared re-plan in store/pg/replan.h;
// transactions in store/pg/session.h.
//
// Errors: a lost connection, or a server starting, stopping or out of
// space, is Status::Unavailable (try again later); the next call outside a
// transaction reconnects.
//
// Not thread-safe: one thread owns it (the daemon's I/O thread).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/rules_in_force.h"
#include "store/pg/schema.h"
#include "store/store.h"

namespace tp {

class PgStore final : public Store, public LeasedEvents {
 public:
  // The schema version this build writes (store/pg/schema.cc).
  static constexpr int kSchemaVersion = pgstore::kSchemaVersion;
  // The most buyers an ingest group takes the turns of one by one; a
  // group of more takes every buyer's turn at once, and other daemons'
  // groups wait for it (store/pg/rows.h). The daemon's ingest groups keep
  // under it where requests allow.
  static constexpr std::size_t kGroupBuyers = 1000;

  // Connects to `url` and migrates its schema (several daemons may start at
  // once). Routing and product lookups follow `rules` as it is at each call
  // (it outlives the store). Its connection shows as `application_name` in
  // pg_stat_activity.
  static StatusOr<std::unique_ptr<PgStore>> Open(const std::string& url, const RulesInForce& rules,
                                                 std::string_view application_name = "touchpointd");
  static StatusOr<std::unique_ptr<PgStore>> Open(const std::string& url, RulesInForce&& rules,
                                                 std::string_view application_name = {}) = delete;
  // A store for the firing thread alone (`touchpointd-fire`), whose session
  // reads only by index (pg_store.cc says why).
  static StatusOr<std::unique_ptr<PgStore>> OpenFiring(const std::string& url,
                                                       const RulesInForce& rules);
  static StatusOr<std::unique_ptr<PgStore>> OpenFiring(const std::string& url,
                                                       RulesInForce&& rules) = delete;
  ~PgStore() override;
  PgStore(const PgStore&) = delete;
  PgStore& operator=(const PgStore&) = delete;

  StatusOr<int> SchemaVersion();
  // The roles other daemons on this database are connected as, where this
  // role or theirs may not read the other's sessions' start times (unless
  // each is a superuser or has the privileges of pg_read_all_stats): one
  // then holds the other's webhook claims while the claim's process id
  // names a live process, even one that is no longer the claimer
  // (docs/scaling.md). Seen from the sessions open now (a daemon that
  // starts later is seen by its own check), by their application_name
  // (touchpointd...: a URL that sets another hides its daemon).
  StatusOr<std::vector<std::string>> OtherDaemonsRoles();
  // The server's shared lock table, which every session on every database
  // of the server shares (advisory locks among them: a daemon holds up to
  // about kLocksEach), and the daemons on the server now, by their store
  // session's application_name (touchpointd, or touchpointd (NAME) where
  // the URL names one).
  struct LockTable {
    std::int64_t entries = 0;  // max_locks_per_transaction times `slots`
    std::int64_t max_locks_per_transaction = 0;
    std::int64_t slots = 0;  // server processes and prepared transactions
    std::int64_t daemons = 0;
  };
  StatusOr<LockTable> ReadLockTable();
  // A daemon's locks at most, about: an ingest group's kGroupBuyers and
  // one, a re-plan step's kGroupBuyers, and a few (docs/scaling.md).
  static constexpr std::int64_t kLocksEach = 2100;
  // What a daemon says at start when `t` has no room for the daemons'
  // locks beside each other, naming the setting that would: nothing when
  // it has.
  static std::string LockTableAdvice(const LockTable& t);

  // How long a statement waits for the server's answer before the
  // connection is given up (pg::Connection::set_answer_limit): for the
  // store the daemon's loop calls, which must not wait on a stopped server
  // for as long as it stays stopped. Zero (the default): no limit. The
  // server's statement_timeout is set a second shorter, so that it ends a
  // statement that merely runs long itself (Unavailable, its locks let
  // go), where a connection given up would leave it running. Throws nothing; a
  // timeout that cannot be set now is set on the next connection. A record
  // of a re-plan (SetPlanning) then waits 50 ms for the step under way,
  // not 500.
  void SetAnswerLimit(std::chrono::milliseconds limit);

  // Whether the server answers a new connection (within its connect
  // timeout) and a statement on it (within kProbeAnswerLimit), and takes
  // writes (is not a standby): the daemon's probe after a call failed as
  // Unavailable or a statement waited long, and while it is unreachable.
  // Not ok: why, in words for `/healthz`.
  static constexpr std::chrono::milliseconds kProbeAnswerLimit{5000};
  Status Probe();
  // How long the statement of this process that has waited longest for the
  // server's answer so far has waited (pg::Connection::LongestWait): the
  // daemon probes once it is long. Any thread.
  static std::chrono::milliseconds LongestWait();
  // Cuts loose the process's statements that have waited at least
  // `waited` for the server (pg::Connection::CutWaiting): for a stop that
  // a frozen server would hold. How many. Any thread.
  static int CutWaiting(std::chrono::milliseconds waited);
  // The server answers again (the probe said so): every PostgreSQL store's
  // next call in this process (the loop's and each thread's) reconnects at
  // once, even within a second of a failed attempt. Any thread.
  static void ServerAnswers();
  // A server's disk is its own: no cap to set (Store).
  Status SetMaxSize(std::optional<std::uint64_t> bytes) override;

  // Transactions.
  Status Begin() override;
  Status Commit() override;
  Status Rollback() override;
  Status Savepoint() override;
  Status Release() override;
  Status RollbackTo() override;
  Status TakeBuyersTurns(std::span<const std::string> buyer_ids) override;

  // ScheduleStore.
  Status PrepareIngest(std::span<const Purchase> purchases) override;
  StatusOr<PurchaseMatch> MatchPurchase(const Purchase& purchase, const Zone* zone) override;
  StatusOr<BuyerState> LoadBuyer(std::string_view buyer_id) override;
  Status AddPurchase(const Purchase& purchase, const Zone* zone, int tier,
                     std::span<const PlannedTouchpoint> touchpoints, Instant now) override;
  StatusOr<CadenceCounts> CancelEarlier(std::string_view buyer_id, Instant up_to,
                                        std::string_view except_order, Instant now,
                                        std::string_view reason) override;
  StatusOr<CadenceCounts> SetOptedOut(std::string_view buyer_id, bool opted_out,
                                      Instant now) override;
  StatusOr<std::optional<Instant>> NextWakeup() override;
  // Claims the rows it returns until ApplyOutcomes() (or the next call
  // outside a group): other daemons pass them, and their buyers, over.
  StatusOr<std::vector<DueTouchpoint>> TakeDue(Instant now, std::size_t max) override;
  StatusOr<std::vector<FiredTouchpoint>> FiredBetween(const DueTouchpoint& due, Instant from,
                                                      Instant to, bool sinks) override;
  // Commits the claim with the outcomes and their queue messages and
  // outbox entries.
  Status ApplyOutcomes(std::span<const DueTouchpoint> due,
                       std::span<const FiringOutcome> outcomes) override;
  StatusOr<EventMatch> MatchEvent(const EngagementEvent& event) override;
  StatusOr<BuyerTouchpoint> FindTouchpoint(std::string_view buyer_id,
                                           std::string_view touchpoint_id) override;
  StatusOr<BuyerTouchpoint> LastFiredBefore(std::string_view buyer_id, Instant at) override;
  StatusOr<bool> AddEvent(const EngagementEvent& event, std::uint64_t buyer, std::uint64_t credited,
                          Instant now) override;
  StatusOr<CadenceCounts> CancelCadences(std::string_view buyer_id,
                                         std::span<const std::string> cadences, Instant up_to,
                                         Instant now, std::string_view reason) override;
  StatusOr<std::vector<EngagementEvent>> FirstEventsSince(
      std::string_view buyer_id, Instant since, std::span<const std::string> types) override;
  StatusOr<std::optional<EngagementEvent>> FirstEngagement(const DueTouchpoint& due,
                                                           std::span<const std::string> types,
                                                           Instant until) override;

  // QueueStore.
  StatusOr<std::vector<LeasedRow>> TakeLease(std::string_view queue, int max, Millis visibility,
                                             Instant now) override;
  StatusOr<int> Ack(std::string_view queue, std::span<const std::string> receipts,
                    Instant now) override;
  StatusOr<std::int64_t> QueueDepth(std::string_view queue) override;
  // LeasedEvents: made on this connection, `done` called before it returns.
  void Fill(std::vector<LeasedRow> leased, std::string queue, Filled done) override;
  // TakeLease(), then Fill().
  StatusOr<std::vector<LeasedMessage>> Lease(std::string_view queue, int max, Millis visibility,
                                             Instant now);

  // OutboxStore. DueDeliveries() claims what it returns for this store's
  // session (store/pg/outbox.h).
  StatusOr<std::vector<OutboxItem>> DueDeliveries(
      std::string_view sink, Instant now, std::size_t max, bool in_order,
      std::span<const std::int64_t> attempting = {}) override;
  StatusOr<std::optional<Instant>> NextDeliveryAfter(std::string_view sink, Instant now) override;
  Status LetGoOfSink(std::string_view sink) override;
  bool DeliveredElsewhere(std::string_view sink) const override;
  Status RecordDeliveries(std::span<const DeliveryResult> results) override;
  StatusOr<std::vector<DeadLetter>> DeadLetters(std::string_view sink, std::int64_t after,
                                                int limit) override;
  StatusOr<ReplayedOne> ReplayDeadLetter(std::int64_t id, Instant now) override;
  StatusOr<ReplayedStep> ReplayDeadLettersAfter(std::string_view sink, std::int64_t after,
                                                Instant dead_by, int limit, Instant now) override;
  StatusOr<std::vector<std::pair<std::string, std::int64_t>>> OutboxBySink(
      std::int64_t limit) override;
  StatusOr<std::int64_t> OutboxDepth(std::string_view sink) override;
  StatusOr<std::int64_t> DeadLetterCount(std::string_view sink) override;
  // Deliveries taken over from a session that ended while attempting them.
  std::int64_t TakenOver() const override;
  std::int64_t HeldForOrder() const override;

  // ReplanStore, under the rules in force.
  StatusOr<PlanningState> Planning() override;
  Status SetPlanning(std::string_view fingerprint, bool replan) override;
  Status NotePlanningByOtherRules(std::string_view fingerprint) override;
  StatusOr<bool> ReplanOnceOtherRulesGone(std::string_view fingerprint, Millis gone) override;
  StatusOr<ReplanStep> ReplanSome(const PurchaseReplanner& replan, std::string_view fingerprint,
                                  std::chrono::steady_clock::time_point deadline,
                                  Instant now) override;

  // ReportStore.
  using ReportStore::GetBuyer;
  StatusOr<std::optional<BuyerReport>> GetBuyer(std::string_view buyer_id,
                                                std::int64_t last_purchases) override;
  StatusOr<std::int64_t> PendingCount() override;

  // RetentionStore.
  StatusOr<PruneResult> PruneFinished(Instant cutoff, std::int64_t after,
                                      std::int64_t span) override;

 private:
  struct Impl;
  explicit PgStore(std::unique_ptr<Impl> impl);
  static StatusOr<std::unique_ptr<PgStore>> Make(const std::string& url,
                                                 std::string_view application_name,
                                                 std::string_view settings,
                                                 const RulesInForce& rules);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tp
