// The daemon's durable state in one SQLite file (WAL): buyers, purchases,
// touchpoints with an append-only history of transitions, and the messages of
// the embedded queues. All pending state lives in the file; what this object
// keeps in memory is prepared statements and the last TakeDue() batch.
//
// Rows store names (product, cadence, step, tier, zone), never rule indices,
// so a database outlives any edit of the rules. Times are UTC milliseconds.
//
// Transactions: every mutating call is atomic on its own. Begin()/Commit()
// group several calls into one transaction (the daemon's group commit), and
// Savepoint()/Release()/RollbackTo() make a part of that group atomic, so one
// bad request rolls back alone while the others commit. Between Savepoint()
// and Release() calls open no savepoints of their own (they cost a copy of
// every page touched): after any error the caller must RollbackTo().
//
// Not thread-safe: one thread owns it (the daemon's I/O thread). Inside, a
// thread of its own with a second connection copies the WAL into the file
// (checkpoints), so the owner's commits seldom wait for one.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/rules.h"
#include "planner/replan.h"
#include "scheduler/store.h"
#include "store/space.h"

namespace tp {

// A transition of one touchpoint, as kept in its history.
struct Transition {
  Instant at;
  TouchpointState state = TouchpointState::kPending;  // the state after it
  std::string reason;
};

struct PurchaseRecord {
  Purchase purchase;
  std::string zone;  // the zone it was planned in (the default if none given)
  std::string tier;  // the tier it was planned at
  Instant received_at;
};

struct TouchpointRecord {
  std::string id;
  std::string order_id;
  std::string cadence;
  std::string step;
  std::string topic;
  std::string tier;
  std::string product;
  std::string zone;
  Instant due_at;
  Instant next_at;
  std::optional<Instant> fire_at;
  TouchpointState state = TouchpointState::kPending;
  std::string reason;
  std::vector<Transition> history;
};

struct BuyerReport {
  std::string buyer_id;
  std::string tier;  // at the buyer's latest purchase; empty if none
  bool opted_out = false;
  std::vector<PurchaseRecord> purchases;      // by purchased_at
  std::vector<TouchpointRecord> touchpoints;  // by due_at, then cadence and step order
};

// The counts /metrics reports from the file.
struct StoreGauges {
  std::int64_t pending = 0;  // pending touchpoints
  // Per queue asked for: its messages. Per push sink asked for: its dead
  // letters. Per sink with entries waiting in the outbox (sinks no longer
  // configured too): how many.
  std::vector<std::pair<std::string, std::int64_t>> queue_messages, dead_letters, outbox;
};

struct LeasedMessage {
  std::string receipt;
  std::string event;   // the event JSON ("null" if the store lost it; logged)
  int deliveries = 0;  // times handed out, this one included
};

// A message a lease took (SqliteStore::TakeLease), its event still to make
// from its touchpoint (StoreReader::Fill).
struct LeasedRow {
  std::int64_t id = 0;          // the message's row id
  std::int64_t touchpoint = 0;  // its touchpoint's row id
  LeasedMessage message;
};

// One event waiting in a push sink's outbox.
struct OutboxItem {
  std::int64_t id = 0;          // the delivery's id (a dead letter keeps it)
  std::int64_t touchpoint = 0;  // the touchpoint's row
  std::string touchpoint_id;    // its stable id: the webhook-id / the stream entry's id field
  std::string event;            // the event JSON, the same bytes on every attempt
  int attempts = 0;             // failed attempts so far
};

// What one delivery attempt came to.
struct DeliveryResult {
  enum class Kind : std::uint8_t { kDelivered, kRetry, kDead };
  std::int64_t id = 0;
  std::int64_t touchpoint = 0;
  Kind kind = Kind::kDelivered;
  Instant at;               // when the attempt ended
  int attempts = 0;         // failed attempts, this one included (kRetry, kDead)
  Instant next_attempt_at;  // kRetry
  std::string error;        // the failure, kept as last_error (kRetry, kDead)
  std::string history;      // the line for the touchpoint's history
  Millis latency{0};        // how long the attempt took (metrics only)
};

struct DeadLetter {
  std::int64_t id = 0;
  std::string sink;
  std::string touchpoint_id;
  std::string event;
  int attempts = 0;
  std::string last_error;
  Instant dead_at;
};

// What re-planning changed.
struct ReplanCounts {
  std::int64_t moved = 0;      // pending, now due at another time
  std::int64_t updated = 0;    // pending, same due time, other topic or order
  std::int64_t added = 0;      // new pending steps
  std::int64_t cancelled = 0;  // "rules changed"
  CadenceCounts cancelled_by_cadence;
  CadenceCounts added_by_cadence;

  void Add(const ReplanCounts& other);
};

// Where the pending touchpoints stand with the rules (planner/replan.h).
struct PlanningState {
  // PlanningFingerprint() of the rules the pending touchpoints are planned
  // by, or are being re-planned to; empty in a database that never recorded
  // one (written before schema 8).
  std::string fingerprint;
  bool replanning = false;  // a re-plan to `fingerprint` is under way
};

// One step of a re-plan (SqliteStore::ReplanSome).
struct ReplanStep {
  ReplanCounts counts;
  std::int64_t buyers = 0;  // buyers re-planned in this step
  // Every pending touchpoint with next_at before this has been re-planned
  // (the sweep goes in firing order); Instant::max() once done.
  Instant covered;
  bool done = false;
};

// One step of retention pruning.
struct PruneResult {
  std::int64_t deleted = 0;  // touchpoints deleted, with their history
  std::int64_t next = 0;     // where the next step starts
  bool done = false;         // the step reached the end of the table
};

class SqliteStore final : public ScheduleStore {
 public:
  // The schema version this build writes. Opening an older file migrates it
  // forward; a newer one is refused.
  static constexpr int kSchemaVersion = 8;

  // Opens (creating if needed) and migrates the database at `path`, and takes
  // an exclusive lock so no second daemon fires from the same file.
  static StatusOr<std::unique_ptr<SqliteStore>> Open(const std::string& path,
                                                     std::shared_ptr<const Rules> rules);
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

  // The rules that routing (which sinks a cadence's touchpoints go to),
  // product lookups and database_max_size follow from now on (a reload).
  // Writes that fail for want of space (a full disk, or past
  // database_max_size) return Status::Unavailable.
  void SetRules(std::shared_ptr<const Rules> rules);

  // Re-planning after the planning rules change (planner/replan.h), in
  // steps a caller interleaves with everything else, so a reload never holds
  // it for long. The sweep visits pending touchpoints in firing order and
  // re-plans each one's buyer (every purchase of the buyer with a pending
  // touchpoint) under the current rules (SetRules), once; where it has got
  // to is in the file, so a re-plan interrupted by a crash resumes at the
  // next start (the buyers it had done are done again, which changes
  // nothing).
  //
  // The state in the file, which Open() also loads for ReplanSome().
  StatusOr<PlanningState> Planning();
  // Records that the pending touchpoints are planned by `fingerprint`
  // (nothing to re-plan), or that a re-plan to it starts from the first
  // pending touchpoint. Inside the caller's transaction if there is one.
  Status SetPlanning(std::string_view fingerprint, bool replan);
  // Re-plans from where the sweep is until `deadline` (one buyer at least),
  // in one transaction that also records how far it got. Only while
  // Planning().replanning.
  StatusOr<ReplanStep> ReplanSome(std::chrono::steady_clock::time_point deadline, Instant now);

  Status Begin();
  Status Commit();
  Status Rollback();
  Status Savepoint();
  Status Release();
  Status RollbackTo();

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
  StatusOr<int> CountFired(const DueTouchpoint& due, Instant from, Instant to) override;
  // A fired touchpoint's event is put on every queue sink its cadence routes
  // to, in the same transaction.
  Status ApplyOutcomes(std::span<const DueTouchpoint> due,
                       std::span<const FiringOutcome> outcomes) override;

  // A buyer's purchases and touchpoints with their histories, or nullopt if
  // the buyer is unknown.
  StatusOr<std::optional<BuyerReport>> GetBuyer(std::string_view buyer_id);
  // Pending touchpoints of the buyer.
  StatusOr<int> PendingOf(std::string_view buyer_id);

  // Up to `max` messages of `queue` visible at `now` (the longest visible
  // first), in enqueue order, each hidden until now + visibility under a
  // fresh receipt, with its event. TakeLease() and then the events made on
  // this connection.
  StatusOr<std::vector<LeasedMessage>> Lease(std::string_view queue, int max, Millis visibility,
                                             Instant now);
  // The lease alone, without the events (a StoreReader makes them on its
  // own thread): a SELECT of the visible messages, then one UPDATE of
  // those rows, atomic without a transaction of its own (only this
  // connection writes, so nothing changes in between).
  StatusOr<std::vector<LeasedRow>> TakeLease(std::string_view queue, int max, Millis visibility,
                                             Instant now);
  // Removes the messages whose receipts are current; returns how many. A
  // receipt that is unknown, already acked or superseded by a later lease
  // counts for nothing.
  StatusOr<int> Ack(std::string_view queue, std::span<const std::string> receipts, Instant now);
  StatusOr<std::int64_t> QueueDepth(std::string_view queue);
  // Touchpoints waiting to fire.
  StatusOr<std::int64_t> PendingCount();

  // Retention: deletes, with their history, the touchpoints with row ids in
  // (after, after + span] that are finished (fired, cancelled, suppressed or
  // skipped; a dead one waits for its replay), were due and fired before
  // `cutoff`, and have no queue message or outbox entry left. Walking the
  // table in spans bounds the work of one call, so the daemon's loop never
  // stalls on it; the spans of a pass share its cutoff, so the queues are
  // read once a pass. Purchases stay: tiers and duplicate detection need them.
  StatusOr<PruneResult> PruneFinished(Instant cutoff, std::int64_t after, std::int64_t span);

  // Copies the database at `from` to the new file `to` with SQLite's backup
  // API: a consistent snapshot even while a daemon writes to `from`. The copy
  // is written beside `to` first, checked (PRAGMA integrity_check) and then
  // renamed, so `to` is either complete or absent.
  static Status Backup(const std::string& from, const std::string& to);

  // Push sinks' outbox. Up to `max` events of `sink` due by `now`: by their
  // next attempt time, or in fire order when `in_order` (a stream).
  StatusOr<std::vector<OutboxItem>> DueDeliveries(std::string_view sink, Instant now,
                                                  std::size_t max, bool in_order);
  // When the earliest event of `sink` due after `now` is due, if any.
  StatusOr<std::optional<Instant>> NextDeliveryAfter(std::string_view sink, Instant now);
  // Records attempts' results in one transaction: a delivered event leaves
  // the outbox, a failed one waits for its next attempt, a dead one stays as
  // a dead letter and its touchpoint becomes dead. Each adds a history line.
  Status RecordDeliveries(std::span<const DeliveryResult> results);
  // Dead letters with id > `after`, oldest first, of `sink` if not empty.
  StatusOr<std::vector<DeadLetter>> DeadLetters(std::string_view sink, std::int64_t after,
                                                int limit);
  // Puts dead letters back in their outbox, due now with no failed attempts:
  // the one with `id`, or (id 0) all of `sink`, or all if `sink` is empty.
  // Returns how many went back (an unknown id: none).
  StatusOr<int> ReplayDeadLetters(std::int64_t id, std::string_view sink, Instant now);
  // Sinks with events waiting in their outbox, and how many each.
  StatusOr<std::vector<std::pair<std::string, std::int64_t>>> OutboxBySink();
  // Events waiting in `sink`'s outbox, and dead letters of `sink`.
  StatusOr<std::int64_t> OutboxDepth(std::string_view sink);
  StatusOr<std::int64_t> DeadLetterCount(std::string_view sink);

 private:
  struct Impl;
  explicit SqliteStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Reads the store on its own thread and read-only connection, so the
// thread that owns the store (and runs the daemon's loop) does not: the
// events of leased messages, which took a quarter of that thread's time per
// message, and the counts /metrics reports, which scan an index (50-80 ms
// at a million pending). Jobs run in order; each calls its `done` on the
// reader's thread.
class StoreReader {
 public:
  using Filled = std::function<void(StatusOr<std::vector<LeasedRow>>)>;
  using Counted = std::function<void(StatusOr<StoreGauges>)>;

  // Opens `path` (a store's file, already open and migrated by it).
  static StatusOr<std::unique_ptr<StoreReader>> Open(const std::string& path);
  // Finishes the jobs queued so far, then stops.
  ~StoreReader();
  StoreReader(const StoreReader&) = delete;
  StoreReader& operator=(const StoreReader&) = delete;

  // Fills in the events of `leased` (of `queue`, for the log) as
  // SqliteStore::Lease() would make them (the rows they come from do not
  // change once their touchpoint fired, and a lease is committed before it
  // comes here), then calls `done` with the rows, or with the error that
  // stopped it (the lease stands; its messages come back after their
  // visibility timeout).
  void Fill(std::vector<LeasedRow> leased, std::string queue, Filled done);
  // Reads, in one read transaction, what SqliteStore's PendingCount(),
  // QueueDepth() of each of `queues`, DeadLetterCount() of each of
  // `push_sinks` and OutboxBySink() would say, then calls `done` with it.
  void Count(std::vector<std::string> queues, std::vector<std::string> push_sinks, Counted done);

 private:
  struct Impl;
  explicit StoreReader(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tp
