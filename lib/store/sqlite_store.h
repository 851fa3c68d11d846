// The daemon's durable state in one SQLite file (WAL): buyers, purchases,
// touchpoints with an append-only history of transitions, the messages of
// the embedded queues, and the push sinks' outbox. All pending state lives
// in the file; what this object keeps in memory is prepared statements and
// the last TakeDue() batch.
//
// Rows store names (product, cadence, step, tier, zone), never rule indices,
// so a database outlives any edit of the rules. Times are UTC milliseconds.
//
// This is the SQLite backend of the store's interfaces, each a contract a
// second backend implements too: ScheduleStore (scheduler/store.h),
// QueueStore, OutboxStore, ReplanStore, ReportStore, RetentionStore,
// Transactions. Each
// concern lives in a file of its own with its statements:
//   database.h        the handle: open, lock, pragmas, transactions
//   schema.h          the tables and their migrations
//   checkpointer.h    the thread that copies the WAL into the file
//   schedule_tables.h purchases and buyers as ingest records them
//   fire_tables.h     due touchpoints, a fire's outcome and its fan-out
//   engagement_tables.h engagement events, stop_on and a step's `when`
//   queue_tables.h    leases and acks of the embedded queues
//   outbox_tables.h   push sinks' deliveries, retries and dead letters
//   replan_rows.h     re-planning after the rules change
//   retention.h       deleting finished touchpoints past retention
//   buyer_report.h    a buyer's timeline
//   store_reader.h    reads on a thread of their own (events, gauges)
//   backup.cc         a consistent copy of a live file
//
// Every mutating call is atomic on its own; Transactions groups them.
//
// Not thread-safe: one thread owns it (the daemon's I/O thread). Inside, a
// thread of its own with a second connection copies the WAL into the file
// (checkpoints), so the owner's commits seldom wait for one.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/rules.h"
#include "config/rules_in_force.h"
#include "store/schema.h"
#include "store/space.h"
#include "store/store.h"

namespace tp {

class SqliteStore final : public Store {
 public:
  // The schema version this build writes. Opening an older file migrates it
  // forward; a newer one is refused.
  static constexpr int kSchemaVersion = tp::kSchemaVersion;

  // Opens (creating if needed) and migrates the database at `path`, and takes
  // an exclusive lock so no second daemon fires from the same file.
  // Routing (which sinks a cadence's touchpoints go to), product lookups
  // and re-planning follow `rules` as it is at each call (it outlives the
  // store; a reload swaps what it holds); its database_max_size caps the
  // file from the start (SetMaxSize() changes it).
  static StatusOr<std::unique_ptr<SqliteStore>> Open(const std::string& path,
                                                     const RulesInForce& rules);
  static StatusOr<std::unique_ptr<SqliteStore>> Open(const std::string& path,
                                                     RulesInForce&& rules) = delete;
  // Migrates the file at `path` to `version` exactly (for tests of upgrades).
  static Status MigrateTo(const std::string& path, int version);
  ~SqliteStore() override;
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  StatusOr<int> SchemaVersion();

  // The room the database has to grow: its filesystem's free bytes, its
  // free pages, and what database_max_size leaves. Cheap (a statvfs() and
  // three PRAGMAs): the daemon asks every second.
  StatusOr<StorageSpace> Space();
  // How many of this process's SQLite store calls failed for want of space
  // (a full disk, database_max_size) so far. A call that failed as
  // Unavailable without adding to it found the file locked by another
  // process (an operator's sqlite3 shell writing): not a full disk. Any
  // thread.
  static std::uint64_t FullFailures();

  // Caps the file at `bytes` (none: no cap), as database_max_size says at
  // a reload. Writes that fail for want of space (a full disk, or past the
  // cap) return Status::Unavailable.
  Status SetMaxSize(std::optional<std::uint64_t> bytes) override;
  // One daemon per file: nothing to take over.
  std::int64_t TakenOver() const override { return 0; }

  // Transactions.
  Status Begin() override;
  Status Commit() override;
  Status Rollback() override;
  Status Savepoint() override;
  Status Release() override;
  Status RollbackTo() override;

  // ScheduleStore.
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
  StatusOr<std::vector<DueTouchpoint>> TakeDue(Instant now, std::size_t max) override;
  StatusOr<std::vector<FiredTouchpoint>> FiredBetween(const DueTouchpoint& due, Instant from,
                                                      Instant to, bool sinks) override;
  // A fired touchpoint's event is put on every queue sink its cadence routes
  // to, in the same transaction.
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
  // TakeLease(), then the events made on this connection (a StoreReader
  // makes them on its own thread in the daemon).
  StatusOr<std::vector<LeasedMessage>> Lease(std::string_view queue, int max, Millis visibility,
                                             Instant now);

  // OutboxStore.
  StatusOr<std::vector<OutboxItem>> DueDeliveries(
      std::string_view sink, Instant now, std::size_t max, bool in_order,
      std::span<const std::int64_t> attempting = {}) override;
  StatusOr<std::optional<Instant>> NextDeliveryAfter(std::string_view sink, Instant now) override;
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

  // ReplanStore, under the rules in force.
  StatusOr<PlanningState> Planning() override;
  Status SetPlanning(std::string_view fingerprint, bool replan) override;
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

  // Copies the database at `from` to the new file `to` with SQLite's backup
  // API: a consistent snapshot even while a daemon writes to `from`. The copy
  // is written beside `to` first, checked (PRAGMA integrity_check) and then
  // renamed, so `to` is either complete or absent.
  static Status Backup(const std::string& from, const std::string& to);

 private:
  struct Impl;
  explicit SqliteStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tp
