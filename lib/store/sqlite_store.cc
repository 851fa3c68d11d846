#include "store/sqlite_store.h"

#include <SQLiteCpp/Backup.h>
#include <SQLiteCpp/SQLiteCpp.h>
#include <date/tz.h>
#include <fcntl.h>
#include <openssl/rand.h>
#include <spdlog/spdlog.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <filesystem>
#include <functional>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <utility>

#include "core/ids.h"
#include "delivery/event.h"

namespace tp {
namespace {

// A failed checkpoint fails again at every commit while its cause lasts (a
// full disk): one line a minute, from either thread.
void WarnCheckpoint(int rc) {
  static std::atomic<std::int64_t> last_logged{-60};
  const std::int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                               std::chrono::steady_clock::now().time_since_epoch())
                               .count();
  std::int64_t last = last_logged.load();
  if (now - last < 60 || !last_logged.compare_exchange_strong(last, now)) return;
  spdlog::warn("database checkpoint: {} (logged once a minute while it lasts)", sqlite3_errstr(rc));
}

// Migration i takes the schema from version i to version i + 1. Forward only:
// a released migration is never edited, a change is a new entry.
const char* const kMigrations[] = {
    // 0 -> 1: the first schema.
    R"sql(
CREATE TABLE buyers (
  id         INTEGER PRIMARY KEY,
  buyer_id   TEXT NOT NULL UNIQUE,
  opted_out  INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL
);
CREATE TABLE purchases (
  id           INTEGER PRIMARY KEY,
  order_id     TEXT NOT NULL UNIQUE,
  buyer        INTEGER NOT NULL REFERENCES buyers(id),
  product      TEXT NOT NULL,
  quantity     INTEGER NOT NULL,
  amount       REAL NOT NULL,
  purchased_at INTEGER NOT NULL,
  timezone     TEXT NOT NULL,  -- as given; '' = the config's default
  zone         TEXT NOT NULL,  -- the zone it was planned in
  tier         TEXT NOT NULL,
  attributes   TEXT,           -- canonical JSON object or NULL
  received_at  INTEGER NOT NULL
);
CREATE INDEX purchases_by_buyer ON purchases(buyer, purchased_at);
CREATE TABLE touchpoints (
  id                   INTEGER PRIMARY KEY,
  tp_id                TEXT NOT NULL UNIQUE,
  purchase             INTEGER NOT NULL REFERENCES purchases(id),
  buyer                INTEGER NOT NULL REFERENCES buyers(id),
  cadence              TEXT NOT NULL,
  step                 TEXT NOT NULL,
  topic                TEXT NOT NULL,
  cadence_order        INTEGER NOT NULL,
  step_order           INTEGER NOT NULL,
  cancel_on_repurchase INTEGER NOT NULL,
  state                INTEGER NOT NULL,  -- 0 pending 1 fired 2 cancelled 3 suppressed 4 skipped 5 dead
  due_at               INTEGER NOT NULL,
  next_at              INTEGER NOT NULL,
  fire_at              INTEGER,
  reason               TEXT
);
CREATE INDEX touchpoints_pending ON touchpoints(next_at, due_at, cadence_order, step_order)
  WHERE state = 0;
CREATE INDEX touchpoints_by_buyer ON touchpoints(buyer, state);
CREATE TABLE touchpoint_history (
  touchpoint INTEGER NOT NULL REFERENCES touchpoints(id),
  at         INTEGER NOT NULL,
  state      INTEGER NOT NULL,
  reason     TEXT NOT NULL
);
CREATE INDEX touchpoint_history_by_touchpoint ON touchpoint_history(touchpoint);
CREATE TABLE queue_messages (
  id          INTEGER PRIMARY KEY,
  queue       TEXT NOT NULL,
  touchpoint  INTEGER NOT NULL REFERENCES touchpoints(id),
  event       TEXT NOT NULL,
  visible_at  INTEGER NOT NULL,
  receipt     TEXT,
  deliveries  INTEGER NOT NULL DEFAULT 0,
  enqueued_at INTEGER NOT NULL
);
CREATE INDEX queue_messages_visible ON queue_messages(queue, visible_at);
)sql",
    // 1 -> 2: the outbox of push sinks (webhook, redis) and their dead
    // letters. Version 1 stored its strings as BLOBs; they become TEXT.
    R"sql(
UPDATE buyers SET buyer_id = CAST(buyer_id AS TEXT) WHERE typeof(buyer_id) = 'blob';
UPDATE purchases SET order_id = CAST(order_id AS TEXT), product = CAST(product AS TEXT),
  timezone = CAST(timezone AS TEXT), zone = CAST(zone AS TEXT), tier = CAST(tier AS TEXT),
  attributes = CAST(attributes AS TEXT) WHERE typeof(order_id) = 'blob';
UPDATE touchpoints SET tp_id = CAST(tp_id AS TEXT), cadence = CAST(cadence AS TEXT),
  step = CAST(step AS TEXT), topic = CAST(topic AS TEXT), reason = CAST(reason AS TEXT)
  WHERE typeof(tp_id) = 'blob';
UPDATE touchpoint_history SET reason = CAST(reason AS TEXT) WHERE typeof(reason) = 'blob';
UPDATE queue_messages SET queue = CAST(queue AS TEXT), event = CAST(event AS TEXT),
  receipt = CAST(receipt AS TEXT) WHERE typeof(queue) = 'blob';
CREATE TABLE deliveries (
  id              INTEGER PRIMARY KEY,
  sink            TEXT NOT NULL,
  touchpoint      INTEGER NOT NULL REFERENCES touchpoints(id),
  event           TEXT NOT NULL,
  state           INTEGER NOT NULL DEFAULT 0,  -- 0 waiting, 1 dead-lettered; delivered rows go
  attempts        INTEGER NOT NULL DEFAULT 0,  -- failed attempts so far
  next_attempt_at INTEGER NOT NULL,
  last_error      TEXT,
  created_at      INTEGER NOT NULL,
  dead_at         INTEGER
);
CREATE INDEX deliveries_due ON deliveries(sink, next_attempt_at) WHERE state = 0;
CREATE INDEX deliveries_by_sink ON deliveries(sink, state, id);
CREATE INDEX deliveries_by_touchpoint ON deliveries(touchpoint);
)sql",
    // 2 -> 3: retention pruning asks whether a touchpoint still has a queue
    // message; without this index that is a scan of the queue per touchpoint.
    R"sql(
CREATE INDEX queue_messages_by_touchpoint ON queue_messages(touchpoint);
)sql",
    // 3 -> 4: a touchpoint's id is a hash of (order id, cadence, step), all
    // stored already, so it is computed when needed, not stored: its unique
    // index took a random page write per touchpoint planned. The by-buyer
    // index loses `state`, so firing no longer moves an entry in it.
    R"sql(
CREATE TABLE touchpoints_v4 (
  id                   INTEGER PRIMARY KEY,
  purchase             INTEGER NOT NULL REFERENCES purchases(id),
  buyer                INTEGER NOT NULL REFERENCES buyers(id),
  cadence              TEXT NOT NULL,
  step                 TEXT NOT NULL,
  topic                TEXT NOT NULL,
  cadence_order        INTEGER NOT NULL,
  step_order           INTEGER NOT NULL,
  cancel_on_repurchase INTEGER NOT NULL,
  state                INTEGER NOT NULL,  -- 0 pending 1 fired 2 cancelled 3 suppressed 4 skipped 5 dead
  due_at               INTEGER NOT NULL,
  next_at              INTEGER NOT NULL,
  fire_at              INTEGER,
  reason               TEXT
);
INSERT INTO touchpoints_v4 SELECT id, purchase, buyer, cadence, step, topic, cadence_order,
  step_order, cancel_on_repurchase, state, due_at, next_at, fire_at, reason FROM touchpoints;
DROP TABLE touchpoints;
ALTER TABLE touchpoints_v4 RENAME TO touchpoints;
CREATE INDEX touchpoints_pending ON touchpoints(next_at, due_at, cadence_order, step_order)
  WHERE state = 0;
CREATE INDEX touchpoints_by_buyer ON touchpoints(buyer);
)sql",
    // 4 -> 5: the embedded queues' events move to their own table, one per
    // touchpoint, so a lease rewrites a narrow row instead of the whole
    // event; and a leased message keeps only its lease's random part as its
    // receipt (handed out as "<id>.<part>"), so a lease is one UPDATE.
    // Leases in flight keep working.
    R"sql(
CREATE TABLE queue_events (
  touchpoint INTEGER PRIMARY KEY REFERENCES touchpoints(id),
  event      TEXT NOT NULL
);
INSERT OR IGNORE INTO queue_events (touchpoint, event)
  SELECT touchpoint, event FROM queue_messages ORDER BY id;
ALTER TABLE queue_messages DROP COLUMN event;
UPDATE queue_messages SET receipt = substr(receipt, instr(receipt, '.') + 1)
  WHERE instr(receipt, '.') > 0;
)sql",
    // 5 -> 6: an event counts the messages that still need it, so an ack
    // knows when to drop it without the queue_messages(touchpoint) index,
    // which every fire and ack had to change. Retention asks queue_events.
    R"sql(
ALTER TABLE queue_events ADD COLUMN messages INTEGER NOT NULL DEFAULT 1;
UPDATE queue_events SET messages =
  (SELECT COUNT(*) FROM queue_messages q WHERE q.touchpoint = queue_events.touchpoint)
  WHERE touchpoint IN
  (SELECT touchpoint FROM queue_messages GROUP BY touchpoint HAVING COUNT(*) > 1);
DELETE FROM queue_events WHERE NOT EXISTS
  (SELECT 1 FROM queue_messages q WHERE q.touchpoint = queue_events.touchpoint);
DROP INDEX queue_messages_by_touchpoint;
)sql",
    // 6 -> 7: a queued event is made when it is handed out, from the
    // touchpoint, purchase and buyer rows, instead of being stored at the
    // fire: its text was most of the bytes a fire and an ack wrote.
    // queue_events keeps the events stored before, handed out as stored
    // until their last message is acked; nothing new goes in. A fired
    // touchpoint keeps the tier it fired with in `tier` once its purchase's
    // tier changes (a reload), so its event does not change.
    R"sql(
ALTER TABLE touchpoints ADD COLUMN tier TEXT;
)sql",
    // 7 -> 8: the planning rules the pending touchpoints follow (their
    // PlanningFingerprint), and how far a re-plan under way has got, as a
    // position in the pending index's order: a reload re-plans in steps, and
    // a start on other rules, or after a crash mid-way, re-plans too.
    R"sql(
CREATE TABLE planning (
  id            INTEGER PRIMARY KEY CHECK (id = 1),
  fingerprint   TEXT NOT NULL,
  replanning    INTEGER NOT NULL DEFAULT 0,
  next_at       INTEGER,
  due_at        INTEGER,
  cadence_order INTEGER,
  step_order    INTEGER,
  touchpoint    INTEGER
);
)sql",
};
constexpr int kMigrationCount = static_cast<int>(std::size(kMigrations));
static_assert(kMigrationCount == SqliteStore::kSchemaVersion);

std::int64_t Ms(Instant t) { return t.time_since_epoch().count(); }
Instant FromMs(std::int64_t ms) { return Instant(Millis(ms)); }

int StateCode(TouchpointState s) { return static_cast<int>(s); }
TouchpointState StateFrom(int code) {
  return code >= 0 && code <= StateCode(TouchpointState::kDead) ? static_cast<TouchpointState>(code)
                                                                : TouchpointState::kDead;
}

// Statements are reset with tryReset() before use: after a failed step,
// reset() would throw that step's error again and fail the next call too.

// As TEXT: SQLiteCpp's (pointer, size) overload would bind a BLOB, and a
// BLOB never equals a TEXT, so literals in SQL would not match it.
void BindText(SQLite::Statement& q, int index, std::string_view text) {
  q.bind(index, std::string(text));
}
void BindTextOrNull(SQLite::Statement& q, int index, std::string_view text) {
  if (text.empty()) {
    q.bind(index);
  } else {
    BindText(q, index, text);
  }
}
std::string Text(const SQLite::Column& c) { return c.isNull() ? std::string() : c.getString(); }

// Whether `e` says the disk (or database_max_size) is full.
bool IsFull(const std::exception& e) {
  const auto* sqlite = dynamic_cast<const SQLite::Exception*>(&e);
  return sqlite != nullptr && sqlite->getErrorCode() == SQLITE_FULL;
}

// An exception as a Status naming `what`: Unavailable when the disk is
// full (the same call may work once space returns), an Error otherwise.
Status Failed(std::string_view what, const std::exception& e) {
  std::string message = std::string(what) + ": " + e.what();
  return IsFull(e) ? Status::Unavailable(std::move(message)) : Status::Error(std::move(message));
}

// Runs `fn`, turning SQLite's exceptions into a Status naming `what`.
template <typename Fn>
auto Guard(const char* what, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const std::exception& e) {
    return Failed(what, e);
  }
}

StatusOr<int> ReadVersion(SQLite::Database& db) {
  db.exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)");
  SQLite::Statement q(db, "SELECT version FROM schema_version");
  if (!q.executeStep()) return 0;
  return q.getColumn(0).getInt();
}

Status Migrate(SQLite::Database& db, int target) {
  SQLite::Transaction txn(db, SQLite::TransactionBehavior::IMMEDIATE);
  auto current = ReadVersion(db);
  if (!current.ok()) return current.status();
  if (*current > kMigrationCount) {
    return Status::Error("database schema version " + std::to_string(*current) +
                         " is newer than this build knows (" + std::to_string(kMigrationCount) +
                         "); use a newer touchpointd");
  }
  for (int v = *current; v < target; ++v) db.exec(kMigrations[v]);
  if (*current < target) {
    db.exec("DELETE FROM schema_version");
    db.exec("INSERT INTO schema_version (version) VALUES (" + std::to_string(target) + ")");
  }
  txn.commit();
  return Status::Ok();
}

std::string RandomHex(std::size_t bytes) {
  unsigned char buf[32];
  if (bytes > sizeof buf || RAND_bytes(buf, static_cast<int>(bytes)) != 1) {
    throw std::runtime_error("no randomness for a receipt");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < bytes; ++i) {
    out += kHex[buf[i] >> 4];
    out += kHex[buf[i] & 15];
  }
  return out;
}

// A due touchpoint's data, owned here while the scheduler decides it.
// A touchpoint as due (kDueColumns, read by ReadDue), or as fired for its
// event (kTouchpointColumns, read by ReadRow); joined by kTouchpointJoins.
struct DueRow {
  std::int64_t rowid = 0;
  std::string tp_id, buyer_id, order_id, cadence, topic, tier, product, attributes;
  const Zone* zone = nullptr;
  Instant due_at, next_at, ready_at;
  std::optional<Instant> fire_at;

  // Points into this row: valid while it lives and does not move.
  TouchpointView View() const {
    TouchpointView v;
    v.id = tp_id;
    v.buyer_id = buyer_id;
    v.order_id = order_id;
    v.cadence = cadence;
    v.topic = topic;
    v.tier = tier;
    v.product = product;
    v.zone = zone;
    v.due_at = due_at;
    v.next_at = next_at;
    v.ready_at = ready_at;
    v.fire_at = fire_at;
    return v;
  }
};
// A fired touchpoint's own tier, once pinned, wins over its purchase's.
constexpr const char* kTouchpointColumns =
    "t.id, t.step, b.buyer_id, p.order_id, t.cadence, t.topic, COALESCE(t.tier, p.tier), "
    "p.product, p.zone, t.due_at, t.next_at, p.attributes, t.fire_at";
constexpr const char* kTouchpointJoins =
    " FROM touchpoints t JOIN purchases p ON p.id = t.purchase JOIN buyers b ON b.id = t.buyer ";

// A due touchpoint as TakeDue() reads it, for ReadDue().
constexpr const char* kDueColumns =
    "t.id, b.buyer_id, t.cadence, p.zone, t.due_at, t.next_at, MAX(t.next_at, p.received_at)";

// Lets maps keyed by std::string be searched with a string_view.
struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view v) const { return std::hash<std::string_view>{}(v); }
};

// Zones by name, as rows name them; one per connection's thread.
class ZoneCache {
 public:
  const Zone* Named(std::string_view name) {
    auto it = zones_.find(name);
    if (it != zones_.end()) return it->second;
    const std::string key(name);
    const Zone* zone = FindZone(key);
    if (zone == nullptr) zone = UtcZone();  // tzdata lost the name: UTC beats failing
    zones_.emplace(key, zone);
    return zone;
  }

 private:
  std::unordered_map<std::string, const Zone*, StringHash, std::equal_to<>> zones_;
};

std::string_view TextView(const SQLite::Column& c) {
  return {static_cast<const char*>(c.getBlob()), static_cast<std::size_t>(c.getBytes())};
}

// One row of kDueColumns: the rest of the row stays empty.
void ReadDue(SQLite::Statement& q, ZoneCache& zones, DueRow& r) {
  r.rowid = q.getColumn(0).getInt64();
  r.buyer_id = TextView(q.getColumn(1));
  r.cadence = TextView(q.getColumn(2));
  r.zone = zones.Named(TextView(q.getColumn(3)));
  r.due_at = FromMs(q.getColumn(4).getInt64());
  r.next_at = FromMs(q.getColumn(5).getInt64());
  r.ready_at = FromMs(q.getColumn(6).getInt64());
}

// One row of kTouchpointColumns.
void ReadRow(SQLite::Statement& q, ZoneCache& zones, DueRow& r) {
  r.rowid = q.getColumn(0).getInt64();
  r.buyer_id = TextView(q.getColumn(2));
  r.order_id = TextView(q.getColumn(3));
  r.cadence = TextView(q.getColumn(4));
  r.tp_id = TouchpointId(r.order_id, r.cadence, TextView(q.getColumn(1)));
  r.topic = TextView(q.getColumn(5));
  r.tier = TextView(q.getColumn(6));
  r.product = TextView(q.getColumn(7));
  r.zone = zones.Named(TextView(q.getColumn(8)));
  r.due_at = FromMs(q.getColumn(9).getInt64());
  r.next_at = FromMs(q.getColumn(10).getInt64());
  r.attributes = TextView(q.getColumn(11));
  r.fire_at.reset();
  if (!q.getColumn(12).isNull()) r.fire_at = FromMs(q.getColumn(12).getInt64());
}

// Makes the events of leased messages on one connection: the store's, or
// a StoreReader's on its own thread. Events stored before schema 7 are
// handed out as stored; the others are made as the fire would have made
// them, with its time. Throws SQLite's errors.
class EventRows {
 public:
  explicit EventRows(SQLite::Database& db)
      : stored_left_(db.execAndGet("SELECT EXISTS (SELECT 1 FROM queue_events)").getInt() != 0),
        stored_(db,
                "SELECT touchpoint, event FROM queue_events WHERE touchpoint IN "
                "(SELECT value FROM json_each(?1))"),
        rows_(db, std::string("SELECT ") + kTouchpointColumns + kTouchpointJoins +
                      "WHERE t.id IN (SELECT value FROM json_each(?1))") {}

  // Whether queue_events held stored events when this was made (none are
  // added since): acks drop them.
  bool stored_left() const { return stored_left_; }

  // The events of fired touchpoints (row ids), by row id; one whose row is
  // gone is left out. With `stored`, events stored before schema 7 win.
  std::unordered_map<std::int64_t, std::string> Make(std::span<const std::int64_t> touchpoints,
                                                     bool stored) {
    std::unordered_map<std::int64_t, std::string> events;
    if (touchpoints.empty()) return events;
    std::string ids;  // as a JSON array
    for (const std::int64_t id : touchpoints) {
      ids += ids.empty() ? '[' : ',';
      ids += std::to_string(id);
    }
    ids += ']';
    if (stored && stored_left_) {
      stored_.tryReset();
      BindText(stored_, 1, ids);
      while (stored_.executeStep()) {
        events.emplace(stored_.getColumn(0).getInt64(), stored_.getColumn(1).getString());
      }
      stored_.tryReset();
    }
    if (events.size() < touchpoints.size()) {
      rows_.tryReset();
      BindText(rows_, 1, ids);
      while (rows_.executeStep()) {
        ReadRow(rows_, zones_, row_);
        if (!row_.fire_at || events.count(row_.rowid) != 0) continue;
        events.emplace(row_.rowid, TouchpointEventJson(row_.View(), *row_.fire_at, row_.attributes,
                                                       *row_.fire_at));
      }
      rows_.tryReset();
    }
    return events;
  }

  // The events of a lease's messages, as Lease() hands them out: a message
  // whose touchpoint is gone (a file edited by hand; retention keeps a
  // queued one) gets null, so it can be acked, and the log says so. Errors
  // as a Status: the lease stands, and its messages come back after their
  // visibility timeout.
  Status Fill(std::span<LeasedRow> leased, std::string_view queue) {
    return Guard("make leased events", [&] {
      std::vector<std::int64_t> touchpoints;
      touchpoints.reserve(leased.size());
      for (const LeasedRow& r : leased) touchpoints.push_back(r.touchpoint);
      auto events = Make(touchpoints, /*stored=*/true);
      for (LeasedRow& r : leased) {
        if (auto it = events.find(r.touchpoint); it != events.end()) {
          r.message.event = std::move(it->second);
          continue;
        }
        spdlog::error(
            "queue {}: message {} has no event (touchpoint row {} is gone); handing out null",
            queue, r.id, r.touchpoint);
        r.message.event = "null";
      }
      return Status::Ok();
    });
  }

 private:
  bool stored_left_;
  SQLite::Statement stored_;
  SQLite::Statement rows_;
  ZoneCache zones_;
  DueRow row_;  // reused: its strings keep their capacity
};

// The counts /metrics reports (SqliteStore and StoreReader).
constexpr const char* kPendingCount = "SELECT COUNT(*) FROM touchpoints WHERE state = 0";
constexpr const char* kQueueDepth = "SELECT COUNT(*) FROM queue_messages WHERE queue = ?";
constexpr const char* kDeadLetterCount =
    "SELECT COUNT(*) FROM deliveries WHERE sink = ? AND state = 1";
constexpr const char* kOutboxBySink =
    "SELECT sink, COUNT(*) FROM deliveries WHERE state = 0 GROUP BY sink ORDER BY sink";

// Reads them in one read transaction. Throws SQLite's errors.
StoreGauges ReadGauges(SQLite::Database& db, std::span<const std::string> queues,
                       std::span<const std::string> push_sinks) {
  SQLite::Transaction read(db);  // rolled back at the end: it only reads
  StoreGauges g;
  g.pending = db.execAndGet(kPendingCount).getInt64();
  auto each = [&](const char* sql, std::span<const std::string> names, auto& out) {
    SQLite::Statement q(db, sql);
    for (const std::string& name : names) {
      q.tryReset();
      BindText(q, 1, name);
      q.executeStep();
      out.emplace_back(name, q.getColumn(0).getInt64());
    }
  };
  each(kQueueDepth, queues, g.queue_messages);
  each(kDeadLetterCount, push_sinks, g.dead_letters);
  SQLite::Statement q(db, kOutboxBySink);
  while (q.executeStep())
    g.outbox.emplace_back(q.getColumn(0).getString(), q.getColumn(1).getInt64());
  return g;
}

// Copies committed WAL frames into the database file on its own thread and
// connection, so the thread that writes seldom waits for a checkpoint: their
// page copies and fsyncs took about a tenth of that thread's time under load.
//
// A WAL only starts over from its beginning when a write transaction begins
// with every frame copied, which a checkpoint running beside a busy writer
// never achieves: the writer appended more meanwhile. So once the thread
// copied most of the WAL, the writer copies the few frames left itself,
// between two transactions, and its next transaction starts the WAL over.
class Checkpointer {
 public:
  static constexpr int kCheckpointPages = 1000;  // SQLite's own default
  // At most this many frames left, the writer copies them itself.
  static constexpr int kCatchUpPages = 256;
  // Past this the writer waits for the thread's copy to end and copies what
  // is left itself: the thread fell behind a writer faster than its copy.
  static constexpr int kBackstopPages = 4 * kCheckpointPages;

  explicit Checkpointer(const std::string& path)
      : db_(path, SQLite::OPEN_READWRITE | SQLite::OPEN_NOMUTEX) {
    db_.setBusyTimeout(5000);
    // A connection learns that the file is in WAL mode by reading it; until
    // then a checkpoint does nothing.
    db_.exec("SELECT COUNT(*) FROM sqlite_schema");
    thread_ = std::thread([this] { Run(); });
  }
  ~Checkpointer() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    wake_.notify_one();
    thread_.join();
  }
  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;

  // SQLite's WAL hook on the writer's connection, after each commit; `pages`
  // is how many frames the WAL holds.
  static int OnCommit(void* self, sqlite3* db, const char* name, int pages) {
    auto& c = *static_cast<Checkpointer*>(self);
    std::unique_lock lock(c.mutex_);
    if (pages < c.last_pages_) c.copied_ = 0;  // the WAL started over
    c.last_pages_ = pages;
    if (pages < kCheckpointPages) return SQLITE_OK;
    if (pages < kBackstopPages) {
      if (c.requested_ || c.running_) return SQLITE_OK;
      if (pages - c.copied_ > kCatchUpPages) {
        c.requested_ = true;
        lock.unlock();
        c.wake_.notify_one();
        return SQLITE_OK;
      }
    }
    if (pages >= kBackstopPages) {
      // Past the backstop the writer waits for the thread's copy to end
      // (a checkpoint beside another gets SQLITE_BUSY at once, whatever the
      // busy timeout) and copies the rest itself: it slows down rather than
      // the WAL growing, as it would while a slow disk holds up the thread.
      c.requested_ = false;
      c.idle_.wait(lock, [&c] { return !c.running_; });
    }
    lock.unlock();
    // FULL also waits (the busy timeout) for readers of older snapshots.
    // Below the backstop, PASSIVE: SQLITE_BUSY means the thread is copying
    // right now, and the next commit tries again.
    const int rc = sqlite3_wal_checkpoint_v2(
        db, name, pages >= kBackstopPages ? SQLITE_CHECKPOINT_FULL : SQLITE_CHECKPOINT_PASSIVE,
        nullptr, nullptr);
    if (rc == SQLITE_OK) {
      lock.lock();
      c.copied_ = 0;  // the WAL starts over at the next transaction
    } else if (rc != SQLITE_BUSY) {
      WarnCheckpoint(rc);
    }
    return SQLITE_OK;
  }

 private:
  void Run() {
    std::unique_lock lock(mutex_);
    for (;;) {
      wake_.wait(lock, [this] { return requested_ || stop_; });
      if (stop_) return;
      requested_ = false;
      running_ = true;
      lock.unlock();
      // PASSIVE never blocks the writer.
      int frames = 0, copied = 0;
      const int rc = sqlite3_wal_checkpoint_v2(db_.getHandle(), nullptr, SQLITE_CHECKPOINT_PASSIVE,
                                               &frames, &copied);
      if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
        WarnCheckpoint(rc);
      }
      lock.lock();
      running_ = false;
      if (rc == SQLITE_OK) copied_ = copied;
      idle_.notify_all();
    }
  }

  SQLite::Database db_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable idle_;  // the thread finished a copy
  bool requested_ = false;
  bool running_ = false;
  int copied_ = 0;      // frames of the WAL the thread copied last
  int last_pages_ = 0;  // frames in the WAL after the last commit
  bool stop_ = false;
  std::thread thread_;
};

// A purchase as recorded, with its touchpoints, for re-planning.
struct StoredPurchase {
  std::int64_t row = 0;
  Purchase purchase;
  const Zone* zone = nullptr;  // the zone it was planned in
  std::vector<ExistingTouchpoint> touchpoints;
};

}  // namespace

struct SqliteStore::Impl {
  Impl(const std::string& file, int flags) : db(file, flags), path(file) {}

  SQLite::Database db;
  std::string path;
  // Declared after `db`: stops and closes its connection before `db` closes.
  std::unique_ptr<Checkpointer> checkpointer;
  int lock_fd = -1;
  // PRAGMA max_page_count as set from database_max_size, if any.
  std::optional<std::int64_t> max_pages;
  std::shared_ptr<const Rules> rules;
  // Cadence name -> the sinks it routes to, and the history line of a fire.
  struct Route {
    std::string sink;
    Sink::Type type = Sink::Type::kQueue;
  };
  struct Routing {
    std::vector<Route> routes;
    std::string fired_reason;  // e.g. "queued on outbox; handed to webhook crm"
  };
  std::unordered_map<std::string, Routing, StringHash, std::equal_to<>> routing_of;
  const Routing no_routing{{}, "fired; no sink to hand it to"};
  const Routing& RoutingOf(std::string_view cadence) const {
    auto it = routing_of.find(cadence);
    return it == routing_of.end() ? no_routing : it->second;
  }
  ZoneCache zones;
  std::vector<DueRow> due;
  // Makes leased messages' events on this connection (Lease()).
  std::unique_ptr<EventRows> event_rows;
  // Retention: the touchpoints with a message enqueued before `cutoff`,
  // sorted. A message is enqueued when its touchpoint fires, so none is
  // added for a touchpoint fired before a cutoff once it is read: reading it
  // once per cutoff only errs by keeping one whose message was acked since.
  struct Queued {
    std::optional<std::int64_t> cutoff;
    std::vector<std::int64_t> touchpoints;
  } queued_before;

  SQLite::Statement match{db,
                          "SELECT b.buyer_id, p.product, p.quantity, p.amount, p.purchased_at, "
                          "p.timezone, p.attributes, p.zone FROM purchases p JOIN buyers b ON "
                          "b.id = p.buyer WHERE p.order_id = ?"};
  SQLite::Statement buyer_get{db, "SELECT id, opted_out FROM buyers WHERE buyer_id = ?"};
  SQLite::Statement buyer_insert{db, "INSERT INTO buyers (buyer_id, created_at) VALUES (?, ?)"};
  SQLite::Statement buyer_history{
      db,
      "SELECT purchased_at, product, amount FROM purchases WHERE buyer = ? "
      "ORDER BY purchased_at, id"};
  SQLite::Statement purchase_insert{
      db,
      "INSERT INTO purchases (order_id, buyer, product, quantity, amount, purchased_at, "
      "timezone, zone, tier, attributes, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"};
  SQLite::Statement touchpoint_insert{
      db,
      "INSERT INTO touchpoints (purchase, buyer, cadence, step, topic, cadence_order, "
      "step_order, cancel_on_repurchase, state, due_at, next_at, reason) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"};
  SQLite::Statement history_insert{
      db, "INSERT INTO touchpoint_history (touchpoint, at, state, reason) VALUES (?, ?, ?, ?)"};
  SQLite::Statement cancel_earlier{
      db,
      "UPDATE touchpoints SET state = 2, reason = ?1 WHERE buyer = ?2 AND state = 0 AND "
      "cancel_on_repurchase = 1 AND purchase IN (SELECT id FROM purchases WHERE buyer = ?2 "
      "AND purchased_at <= ?3 AND order_id <> ?4) RETURNING id, cadence"};
  SQLite::Statement set_opted_out{db, "UPDATE buyers SET opted_out = ? WHERE id = ?"};
  SQLite::Statement suppress{db,
                             "UPDATE touchpoints SET state = 3, reason = ? WHERE buyer = ? AND "
                             "state = 0 RETURNING id, cadence"};
  SQLite::Statement next_wakeup{
      db, "SELECT next_at FROM touchpoints WHERE state = 0 ORDER BY next_at LIMIT 1"};
  // What the scheduler decides on: events are made from the rows later.
  SQLite::Statement take_due{db, std::string("SELECT ") + kDueColumns + kTouchpointJoins +
                                     "WHERE t.state = 0 AND t.next_at <= ? ORDER BY t.next_at, "
                                     "t.due_at, t.cadence_order, t.step_order, t.id LIMIT ?"};

  // Dead-lettered touchpoints were fired too: they count against the cap.
  SQLite::Statement count_fired{
      db,
      "SELECT COUNT(*) FROM touchpoints WHERE buyer = (SELECT buyer FROM touchpoints WHERE id = "
      "?) AND state IN (1, 5) AND fire_at >= ? AND fire_at < ?"};
  // Marks a batch (row ids as a JSON array) fired; one no longer pending
  // stays as it is. ApplyOutcomes() knows beforehand which are pending:
  // RETURNING would say, but doubled the statement's cost per row.
  SQLite::Statement fire{db,
                         "UPDATE touchpoints SET state = 1, fire_at = ?1 WHERE id IN "
                         "(SELECT value FROM json_each(?2)) AND state = 0"};
  // Which of a batch (row ids as a JSON array) are still pending.
  SQLite::Statement still_pending{
      db, "SELECT id FROM touchpoints WHERE id IN (SELECT value FROM json_each(?1)) AND state = 0"};
  // Changes by this connection, and commits by others: while both stay as
  // they were when TakeDue() read its rows, those rows are still pending.
  SQLite::Statement data_version{db, "PRAGMA data_version"};
  using FileVersion = std::pair<std::int64_t, std::int64_t>;
  FileVersion Version() {
    data_version.tryReset();
    data_version.executeStep();
    const FileVersion v{sqlite3_total_changes64(db.getHandle()),
                        data_version.getColumn(0).getInt64()};
    data_version.tryReset();
    return v;
  }
  std::optional<FileVersion> due_version;  // as TakeDue() left it
  SQLite::Statement defer{db, "UPDATE touchpoints SET next_at = ? WHERE id = ? AND state = 0"};
  SQLite::Statement skip{db,
                         "UPDATE touchpoints SET state = 4, reason = ? WHERE id = ? AND state = 0"};
  // Rows inserted kRowsPerInsert per statement: one statement per row costs
  // about as much again as the row.
  static constexpr int kRowsPerInsert = 32;
  static std::string InsertRows(const char* head, int columns, int rows) {
    std::string row = "(?";
    for (int c = 1; c < columns; ++c) row += ", ?";
    row += ')';
    std::string sql = head;
    for (int i = 0; i < rows; ++i) sql += (i == 0 ? " " : ", ") + row;
    return sql;
  }
  static constexpr const char* kEnqueue =
      "INSERT INTO queue_messages (queue, touchpoint, visible_at, enqueued_at) VALUES";
  static constexpr const char* kOutboxInsert =
      "INSERT INTO deliveries (sink, touchpoint, event, next_attempt_at, created_at) VALUES";
  SQLite::Statement enqueue{db, InsertRows(kEnqueue, 4, 1)};
  SQLite::Statement enqueue_many{db, InsertRows(kEnqueue, 4, kRowsPerInsert)};
  SQLite::Statement outbox_insert{db, InsertRows(kOutboxInsert, 5, 1)};
  SQLite::Statement outbox_insert_many{db, InsertRows(kOutboxInsert, 5, kRowsPerInsert)};
  // Webhooks go by their own retry schedules; a stream keeps fire order.
  SQLite::Statement outbox_due{
      db,
      "SELECT d.id, d.touchpoint, p.order_id, t.cadence, t.step, d.event, d.attempts "
      "FROM deliveries d JOIN touchpoints t ON t.id = d.touchpoint "
      "JOIN purchases p ON p.id = t.purchase WHERE d.sink = ? AND d.state = 0 "
      "AND d.next_attempt_at <= ? ORDER BY d.next_attempt_at, d.id LIMIT ?"};
  SQLite::Statement outbox_in_order{
      db,
      "SELECT d.id, d.touchpoint, p.order_id, t.cadence, t.step, d.event, d.attempts "
      "FROM deliveries d JOIN touchpoints t ON t.id = d.touchpoint "
      "JOIN purchases p ON p.id = t.purchase WHERE d.sink = ? AND d.state = 0 "
      "AND d.next_attempt_at <= ? ORDER BY d.id LIMIT ?"};
  SQLite::Statement outbox_next{
      db,
      "SELECT MIN(next_attempt_at) FROM deliveries WHERE sink = ? AND state = 0 AND "
      "next_attempt_at > ?"};
  SQLite::Statement delivered{db, "DELETE FROM deliveries WHERE id = ? AND state = 0"};
  // A retry (?1 = 0) waits until ?3; a dead letter (?1 = 1) died at ?3.
  SQLite::Statement failed_attempt{
      db,
      "UPDATE deliveries SET state = ?1, attempts = ?2, "
      "next_attempt_at = CASE ?1 WHEN 0 THEN ?3 ELSE next_attempt_at END, last_error = ?4, "
      "dead_at = CASE ?1 WHEN 1 THEN ?3 END WHERE id = ?5 AND state = 0"};
  SQLite::Statement touchpoint_dead{
      db, "UPDATE touchpoints SET state = 5, reason = ? WHERE id = ? AND state IN (1, 5)"};
  // The touchpoint's current state goes with the entry.
  SQLite::Statement delivery_history{
      db,
      "INSERT INTO touchpoint_history (touchpoint, at, state, reason) "
      "SELECT id, ?, state, ? FROM touchpoints WHERE id = ?"};
  // A lease reads the longest visible messages, then hides them (ids as a
  // JSON array) in one UPDATE; each keeps the lease's random part as its
  // receipt.
  SQLite::Statement lease_take{
      db,
      "SELECT id, deliveries, touchpoint FROM queue_messages WHERE queue = ?1 AND "
      "visible_at <= ?2 ORDER BY visible_at, id LIMIT ?3"};
  SQLite::Statement lease{
      db,
      "UPDATE queue_messages SET receipt = ?1, visible_at = ?2, deliveries = deliveries + 1 "
      "WHERE id IN (SELECT value FROM json_each(?3))"};
  // The current messages among one lease's receipts (ids as a JSON array),
  // by row id: `+queue` keeps the planner off the queue's index, which
  // would scan the queue. Then all an ack's are deleted by id.
  SQLite::Statement ack{db,
                        "SELECT id, touchpoint FROM queue_messages WHERE +queue = ?1 AND "
                        "receipt = ?2 AND id IN (SELECT value FROM json_each(?3))"};
  SQLite::Statement ack_delete{
      db, "DELETE FROM queue_messages WHERE id IN (SELECT value FROM json_each(?1))"};
  // The stored events of acked messages (touchpoint row ids as a JSON
  // array, each once: a queue has one message per touchpoint): those no
  // other message needs go, the others count one message less.
  SQLite::Statement drop_queue_events{
      db,
      "DELETE FROM queue_events WHERE touchpoint IN (SELECT value FROM json_each(?1)) AND "
      "messages <= 1"};
  SQLite::Statement release_queue_events{
      db,
      "UPDATE queue_events SET messages = messages - 1 WHERE touchpoint IN "
      "(SELECT value FROM json_each(?1))"};
  // One history line for each touchpoint in a JSON array of row ids.
  SQLite::Statement history_each{db,
                                 "INSERT INTO touchpoint_history (touchpoint, at, state, reason) "
                                 "SELECT value, ?1, ?2, ?3 FROM json_each(?4)"};

  // Re-planning (a reload): prepared once, used per purchase and touchpoint.
  SQLite::Statement purchases_of{
      db,
      "SELECT id, order_id, product, quantity, amount, purchased_at, timezone, zone, attributes "
      "FROM purchases WHERE buyer = ? ORDER BY purchased_at, id"};
  SQLite::Statement touchpoints_of{
      db,
      "SELECT purchase, cadence, step, state, due_at, next_at, id FROM touchpoints "
      "WHERE buyer = ? ORDER BY id"};
  SQLite::Statement purchase_by_order{db, "SELECT id, buyer FROM purchases WHERE order_id = ?"};
  // A purchase's new tier (?1; buyer ?2, purchase ?3). Its fired touchpoints
  // keep the tier they fired with: their queued events are made from it.
  SQLite::Statement pin_tier{
      db,
      "UPDATE touchpoints SET tier = p.tier FROM purchases p WHERE p.id = ?3 AND p.tier <> ?1 "
      "AND touchpoints.buyer = ?2 AND touchpoints.purchase = ?3 "
      "AND touchpoints.state IN (1, 5) AND touchpoints.tier IS NULL"};
  SQLite::Statement purchase_tier{db,
                                  "UPDATE purchases SET tier = ?1 WHERE id = ?3 AND tier <> ?1"};
  // Writes only when something differs, so an unchanged step costs no write.
  SQLite::Statement replan_update{
      db,
      "UPDATE touchpoints SET topic = ?1, cadence_order = ?2, step_order = ?3, "
      "cancel_on_repurchase = ?4, due_at = ?5, next_at = ?6 WHERE id = ?7 AND state = 0 AND "
      "(topic != ?1 OR cadence_order != ?2 OR step_order != ?3 OR cancel_on_repurchase != ?4 OR "
      "due_at != ?5 OR next_at != ?6) RETURNING id"};
  SQLite::Statement replan_cancel{
      db, "UPDATE touchpoints SET state = 2, reason = ? WHERE id = ? AND state = 0 RETURNING id"};

  // A re-plan's sweep: where it is in the pending index's order (from the
  // start: the least values), and the buyers (by row id) it re-planned.
  struct Sweep {
    std::int64_t next_at = INT64_MIN, due_at = INT64_MIN, cadence_order = INT64_MIN,
                 step_order = INT64_MIN, id = INT64_MIN;
  } sweep;
  std::vector<bool> replanned;
  // The pending touchpoints after the sweep's position, in firing order.
  SQLite::Statement sweep_rows{
      db,
      "SELECT id, buyer, next_at, due_at, cadence_order, step_order FROM touchpoints WHERE "
      "state = 0 AND (next_at, due_at, cadence_order, step_order, id) > (?1, ?2, ?3, ?4, ?5) "
      "ORDER BY next_at, due_at, cadence_order, step_order, id LIMIT ?6"};
  SQLite::Statement buyer_name{db, "SELECT buyer_id FROM buyers WHERE id = ?"};
  SQLite::Statement save_sweep{
      db,
      "UPDATE planning SET replanning = ?1, next_at = ?2, due_at = ?3, cadence_order = ?4, "
      "step_order = ?5, touchpoint = ?6 WHERE id = 1"};

  void BindSweep(SQLite::Statement& q, int first, const std::optional<Sweep>& at) {
    if (!at) {
      for (int i = 0; i < 5; ++i) q.bind(first + i);
      return;
    }
    q.bind(first, at->next_at);
    q.bind(first + 1, at->due_at);
    q.bind(first + 2, at->cadence_order);
    q.bind(first + 3, at->step_order);
    q.bind(first + 4, at->id);
  }
  // `at`: a re-plan under way continues from there; nullopt: none.
  void SavePlanning(std::string_view fingerprint, const std::optional<Sweep>& at) {
    SQLite::Statement q(db,
                        "INSERT OR REPLACE INTO planning (id, fingerprint, replanning, next_at, "
                        "due_at, cadence_order, step_order, touchpoint) "
                        "VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7)");
    BindText(q, 1, fingerprint);
    q.bind(2, at ? 1 : 0);
    BindSweep(q, 3, at);
    q.exec();
  }
  void SaveSweep(const std::optional<Sweep>& at) {
    save_sweep.tryReset();
    save_sweep.bind(1, at ? 1 : 0);
    BindSweep(save_sweep, 2, at);
    save_sweep.exec();
  }

  // A buyer's purchases by purchased_at (ties in arrival order), each with
  // its touchpoints (their handles are row ids). Throws SQLite's errors.
  std::vector<StoredPurchase> LoadPurchases(std::int64_t buyer, const std::string& buyer_id) {
    std::vector<StoredPurchase> out;
    auto& p = purchases_of;
    p.tryReset();
    p.bind(1, buyer);
    std::unordered_map<std::int64_t, std::size_t> index;
    while (p.executeStep()) {
      StoredPurchase& sp = out.emplace_back();
      sp.row = p.getColumn(0).getInt64();
      index.emplace(sp.row, out.size() - 1);
      sp.purchase.order_id = p.getColumn(1).getString();
      sp.purchase.buyer_id = buyer_id;
      sp.purchase.product = p.getColumn(2).getString();
      sp.purchase.quantity = p.getColumn(3).getInt64();
      sp.purchase.amount = p.getColumn(4).getDouble();
      sp.purchase.purchased_at = FromMs(p.getColumn(5).getInt64());
      sp.purchase.timezone = p.getColumn(6).getString();
      sp.zone = zones.Named(TextView(p.getColumn(7)));
      sp.purchase.attributes = Text(p.getColumn(8));
    }
    p.tryReset();
    auto& t = touchpoints_of;
    t.tryReset();
    t.bind(1, buyer);
    while (t.executeStep()) {
      auto it = index.find(t.getColumn(0).getInt64());
      if (it == index.end()) continue;
      StoredPurchase& sp = out[it->second];
      std::string cadence = t.getColumn(1).getString();
      std::string id = TouchpointId(sp.purchase.order_id, cadence, t.getColumn(2).getText());
      sp.touchpoints.push_back(
          {std::move(id), std::move(cadence), StateFrom(t.getColumn(3).getInt()),
           FromMs(t.getColumn(4).getInt64()), FromMs(t.getColumn(5).getInt64()),
           static_cast<std::uint64_t>(t.getColumn(6).getInt64())});
    }
    t.tryReset();
    return out;
  }

  // Records a purchase's new tier (unless -1) and applies the changes.
  // Updates and cancels find their touchpoint by its handle. Each moved,
  // added or cancelled touchpoint gets a history line; an update that
  // changes nothing writes nothing. Throws SQLite's errors.
  void ApplyChanges(std::int64_t purchase_row, std::int64_t buyer, int tier,
                    std::span<const ReplanChange> changes, Instant now, ReplanCounts& counts) {
    // Runs an UPDATE ... RETURNING id; the id, or 0 when no row changed.
    auto returned_id = [](SQLite::Statement& q) -> std::int64_t {
      const std::int64_t id = q.executeStep() ? q.getColumn(0).getInt64() : 0;
      q.tryReset();
      return id;
    };
    if (tier >= 0) {
      for (SQLite::Statement* q : {&pin_tier, &purchase_tier}) {
        q->tryReset();
        BindText(*q, 1, rules->tiers[static_cast<std::size_t>(tier)].name);
        q->bind(2, buyer);
        q->bind(3, purchase_row);
        q->exec();
      }
    }
    for (const ReplanChange& c : changes) {
      const PlannedTouchpoint& t = c.touchpoint;
      switch (c.kind) {
        case ReplanChange::Kind::kAdd: {
          const std::int64_t row = InsertTouchpoint(purchase_row, buyer, t);
          AddHistory(row, now, TouchpointState::kPending,
                     "rules changed: a new step, due " + FormatRfc3339(t.due_at, UtcZone()));
          ++counts.added;
          ++counts.added_by_cadence[c.cadence];
          break;
        }
        case ReplanChange::Kind::kUpdate: {
          auto& q = replan_update;
          q.tryReset();
          BindText(q, 1, rules->cadences[t.cadence].steps[t.step].topic);
          q.bind(2, t.cadence);
          q.bind(3, t.step);
          q.bind(4, t.cancel_on_repurchase ? 1 : 0);
          q.bind(5, Ms(t.due_at));
          q.bind(6, Ms(t.next_at));
          q.bind(7, static_cast<std::int64_t>(c.handle));
          const std::int64_t row = returned_id(q);
          if (row == 0) break;  // nothing differed
          if (c.previous_due_at != t.due_at) {
            AddHistory(row, now, TouchpointState::kPending,
                       "rules changed: due " + FormatRfc3339(t.due_at, UtcZone()) + " (was " +
                           FormatRfc3339(c.previous_due_at, UtcZone()) + ")");
            ++counts.moved;
          } else {
            ++counts.updated;
          }
          break;
        }
        case ReplanChange::Kind::kCancel: {
          auto& q = replan_cancel;
          q.tryReset();
          BindText(q, 1, c.reason);
          q.bind(2, static_cast<std::int64_t>(c.handle));
          const std::int64_t row = returned_id(q);
          if (row == 0) break;
          AddHistory(row, now, TouchpointState::kCancelled, c.reason);
          ++counts.cancelled;
          ++counts.cancelled_by_cadence[c.cadence];
          break;
        }
      }
    }
  }

  // Re-plans, under `rules`, every purchase of the buyer (row id) that has
  // a pending touchpoint. Throws SQLite's errors.
  void ReplanBuyer(std::int64_t buyer, Instant now, ReplanCounts& counts) {
    buyer_name.tryReset();
    buyer_name.bind(1, buyer);
    if (!buyer_name.executeStep()) {
      buyer_name.tryReset();
      return;
    }
    const std::string buyer_id = buyer_name.getColumn(0).getString();
    buyer_name.tryReset();
    const std::vector<StoredPurchase> purchases = LoadPurchases(buyer, buyer_id);
    std::vector<PastPurchase> all;
    all.reserve(purchases.size());
    for (const StoredPurchase& p : purchases) {
      all.push_back(
          {p.purchase.purchased_at, rules->ProductIndex(p.purchase.product), p.purchase.amount});
    }
    std::vector<PastPurchase> others;
    for (std::size_t i = 0; i < purchases.size(); ++i) {
      const StoredPurchase& p = purchases[i];
      const bool pending = std::any_of(
          p.touchpoints.begin(), p.touchpoints.end(),
          [](const ExistingTouchpoint& t) { return t.state == TouchpointState::kPending; });
      if (!pending) continue;
      others.assign(all.begin(), all.end());
      others.erase(others.begin() + static_cast<std::ptrdiff_t>(i));
      const PurchaseReplan plan =
          ReplanPurchase(*rules, others, p.purchase, all[i].product, p.zone, p.touchpoints, now);
      ApplyChanges(p.row, buyer, plan.tier, plan.changes, now, counts);
    }
  }

  void Exec(std::string_view sql) { db.exec(std::string(sql)); }
  // Exec, with an error naming `what` instead of an exception.
  Status Run(const char* what, const char* sql) {
    return Guard(what, [&] {
      db.exec(sql);
      return Status::Ok();
    });
  }

  // SELECT COUNT(*) ... with one text parameter.
  StatusOr<std::int64_t> Count(const char* what, const char* sql, std::string_view arg) {
    return Guard(what, [&]() -> StatusOr<std::int64_t> {
      SQLite::Statement q(db, sql);
      BindText(q, 1, arg);
      q.executeStep();
      return q.getColumn(0).getInt64();
    });
  }

  void SetRules(std::shared_ptr<const Rules> r) {
    rules = std::move(r);
    // SQLite answers SQLITE_FULL past the cap, as on a full disk. No cap
    // is SQLite's own maximum; a cap under the file's size holds it there.
    const std::int64_t page_size = db.execAndGet("PRAGMA page_size").getInt64();
    const std::int64_t pages =
        rules->database_max_size ? static_cast<std::int64_t>(*rules->database_max_size) / page_size
                                 : std::int64_t{4294967294};
    const std::int64_t set =
        db.execAndGet("PRAGMA max_page_count = " + std::to_string(pages)).getInt64();
    max_pages.reset();
    if (rules->database_max_size) max_pages = set;
    routing_of.clear();
    for (const Cadence& c : rules->cadences) {
      Routing& routing = routing_of[c.name];
      auto add = [&](const Sink& s) {
        routing.routes.push_back({s.name, s.type});
        if (!routing.fired_reason.empty()) routing.fired_reason += "; ";
        routing.fired_reason +=
            s.type == Sink::Type::kQueue
                ? "queued on " + s.name
                : "handed to " + std::string(SinkTypeName(s.type)) + " " + s.name;
      };
      if (c.sinks.empty()) {
        for (const Sink& s : rules->sinks) add(s);
      } else {
        for (int i : c.sinks) add(rules->sinks[i]);
      }
      if (routing.routes.empty()) routing.fired_reason = no_routing.fired_reason;
    }
  }

  // Inserts `count` rows with `many` (kRowsPerInsert rows a statement),
  // the rest with `one`; bind(statement, first parameter, row) binds a row.
  template <typename Bind>
  static void InsertMany(SQLite::Statement& many, SQLite::Statement& one, std::size_t count,
                         int columns, Bind bind) {
    std::size_t i = 0;
    for (; i + kRowsPerInsert <= count; i += kRowsPerInsert) {
      many.tryReset();
      for (int k = 0; k < kRowsPerInsert; ++k) bind(many, columns * k + 1, i + k);
      many.exec();
    }
    for (; i < count; ++i) {
      one.tryReset();
      bind(one, 1, i);
      one.exec();
    }
  }

  // True while the caller rolls back on any error (inside Savepoint(), or
  // ReplanPending() inside Begin()): each call then needs no savepoint of its
  // own. A savepoint per call made SQLite copy every page a purchase touched
  // into its sub-journal, several KiB per touchpoint written.
  bool enclosed = false;

  // Atomic on its own, or as part of the caller's transaction; inside an
  // enclosing savepoint, atomic with it.
  Status Atomically(const char* what, const std::function<void()>& fn) {
    if (enclosed) {
      try {
        fn();
        return Status::Ok();
      } catch (const std::exception& e) {
        return Failed(what, e);
      }
    }
    try {
      Exec("SAVEPOINT op");
    } catch (const std::exception& e) {
      return Failed(what, e);
    }
    try {
      fn();
      Exec("RELEASE op");
      return Status::Ok();
    } catch (const std::exception& e) {
      try {
        Exec("ROLLBACK TO op");
        Exec("RELEASE op");
      } catch (const std::exception&) {
        // The transaction is gone already (SQLite rolled it back itself).
      }
      return Failed(what, e);
    }
  }

  // Resets its statement before returning: a statement left on a row keeps
  // its read snapshot, and a later write on this connection fails
  // (SQLITE_BUSY_SNAPSHOT) if another connection committed since.
  std::optional<std::int64_t> FindBuyer(std::string_view buyer_id, bool* opted_out = nullptr) {
    buyer_get.tryReset();
    BindText(buyer_get, 1, buyer_id);
    std::optional<std::int64_t> id;
    if (buyer_get.executeStep()) {
      id = buyer_get.getColumn(0).getInt64();
      if (opted_out != nullptr) *opted_out = buyer_get.getColumn(1).getInt() != 0;
    }
    buyer_get.tryReset();
    return id;
  }

  std::int64_t EnsureBuyer(std::string_view buyer_id, Instant now) {
    if (auto id = FindBuyer(buyer_id)) return *id;
    buyer_insert.tryReset();
    BindText(buyer_insert, 1, buyer_id);
    buyer_insert.bind(2, Ms(now));
    buyer_insert.exec();
    return db.getLastInsertRowid();
  }

  void AddHistory(std::int64_t touchpoint, Instant at, TouchpointState state,
                  std::string_view reason) {
    history_insert.tryReset();
    history_insert.bind(1, touchpoint);
    history_insert.bind(2, Ms(at));
    history_insert.bind(3, StateCode(state));
    BindText(history_insert, 4, reason);
    history_insert.exec();
  }

  std::int64_t InsertTouchpoint(std::int64_t purchase_row, std::int64_t buyer,
                                const PlannedTouchpoint& planned) {
    const Cadence& cadence = rules->cadences[planned.cadence];
    const Step& step = cadence.steps[planned.step];
    auto& t = touchpoint_insert;
    t.tryReset();
    t.bind(1, purchase_row);
    t.bind(2, buyer);
    BindText(t, 3, cadence.name);
    BindText(t, 4, step.id);
    BindText(t, 5, step.topic);
    t.bind(6, planned.cadence);
    t.bind(7, planned.step);
    t.bind(8, planned.cancel_on_repurchase ? 1 : 0);
    t.bind(9, StateCode(planned.state));
    t.bind(10, Ms(planned.due_at));
    t.bind(11, Ms(planned.next_at));
    BindTextOrNull(t, 12, planned.reason);
    t.exec();
    return db.getLastInsertRowid();
  }

  // Runs an UPDATE ... RETURNING id and records the transition of each row.
  // The UPDATE returns (id, cadence); counts go to `counts` by cadence.
  void FinishReturned(SQLite::Statement& q, Instant now, TouchpointState state,
                      std::string_view reason, CadenceCounts& counts) {
    std::vector<std::int64_t> ids;
    while (q.executeStep()) {
      ids.push_back(q.getColumn(0).getInt64());
      ++counts[q.getColumn(1).getString()];
    }
    q.tryReset();
    for (std::int64_t id : ids) AddHistory(id, now, state, reason);
  }
};

SqliteStore::SqliteStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

SqliteStore::~SqliteStore() {
  const int fd = impl_->lock_fd;
  impl_.reset();  // closes the database first: its POSIX locks die with our last fd
  if (fd >= 0) ::close(fd);
}

StatusOr<std::unique_ptr<SqliteStore>> SqliteStore::Open(const std::string& path,
                                                         std::shared_ptr<const Rules> rules) {
  // SQLite's memory statistics take a global mutex on every allocation and
  // nothing here reads them. Only possible before SQLite initialises; a
  // later call is refused (SQLITE_MISUSE) and changes nothing.
  static const bool kNoMemoryStatistics = [] {
    return sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0) == SQLITE_OK;
  }();
  (void)kNoMemoryStatistics;
  // Lock first, so a second daemon does not even migrate the file. Locking
  // with flock() does not interfere with SQLite's own fcntl() locks.
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) return Status::Error("cannot open database " + path + ": " + std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    ::close(fd);
    return Status::Error("database " + path +
                         (err == EWOULDBLOCK
                              ? " is in use by another touchpointd"
                              : std::string(": cannot lock: ") + std::strerror(err)));
  }
  try {
    SQLite::Database db(path, SQLite::OPEN_READWRITE);
    db.setBusyTimeout(5000);
    db.exec("PRAGMA journal_mode = WAL");
    if (Status s = Migrate(db, kMigrationCount); !s.ok()) {
      ::close(fd);
      return Status::Error("database " + path + ": " + s.message());
    }
  } catch (const std::exception& e) {
    ::close(fd);
    return Failed("cannot open database " + path, e);
  }
  try {
    // One thread owns the connection: SQLite's per-call connection mutex
    // (serialized mode) buys nothing and costs a lock per API call.
    auto impl = std::make_unique<Impl>(path, SQLite::OPEN_READWRITE | SQLite::OPEN_NOMUTEX);
    impl->lock_fd = fd;
    impl->db.setBusyTimeout(5000);
    impl->Exec(rules->database_sync == Rules::DatabaseSync::kFull ? "PRAGMA synchronous = FULL"
                                                                  : "PRAGMA synchronous = NORMAL");
    // A statement that changes several rows inside a transaction keeps the
    // pages it changes in a statement journal, so that it can fail alone.
    // On disk that costs a write per page; in memory, a copy.
    impl->Exec("PRAGMA temp_store = MEMORY");
    // Checkpoints run on their own thread; a WAL that grew past the limit
    // meanwhile is truncated back when it restarts.
    impl->Exec("PRAGMA journal_size_limit = 67108864");
    impl->checkpointer = std::make_unique<Checkpointer>(path);
    sqlite3_wal_hook(impl->db.getHandle(), &Checkpointer::OnCommit, impl->checkpointer.get());
    impl->SetRules(std::move(rules));
    impl->event_rows = std::make_unique<EventRows>(impl->db);
    auto store = std::unique_ptr<SqliteStore>(new SqliteStore(std::move(impl)));
    if (auto planning = store->Planning(); !planning.ok()) return planning.status();
    return store;
  } catch (const std::exception& e) {
    ::close(fd);
    return Failed("cannot open database " + path, e);
  }
}

Status SqliteStore::MigrateTo(const std::string& path, int version) {
  if (version < 0 || version > kMigrationCount) {
    return Status::Error("no schema version " + std::to_string(version));
  }
  return Guard("migrate", [&]() -> Status {
    SQLite::Database db(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    return Migrate(db, version);
  });
}

StatusOr<StorageSpace> SqliteStore::Space() {
  auto space = MeasureFilesystem(impl_->path);
  if (!space.ok()) return space;
  return Guard("measure the database", [&]() -> StatusOr<StorageSpace> {
    SQLite::Database& db = impl_->db;
    const auto page_size = static_cast<std::uint64_t>(db.execAndGet("PRAGMA page_size").getInt64());
    const auto pages = static_cast<std::uint64_t>(db.execAndGet("PRAGMA page_count").getInt64());
    const auto free_pages =
        static_cast<std::uint64_t>(db.execAndGet("PRAGMA freelist_count").getInt64());
    space->free_pages = free_pages * page_size;
    if (impl_->max_pages) {
      const auto cap = static_cast<std::uint64_t>(*impl_->max_pages) * page_size;
      space->cap = cap;
      space->cap_left = cap > pages * page_size ? cap - pages * page_size : 0;
    }
    return *space;
  });
}

StatusOr<int> SqliteStore::SchemaVersion() {
  return Guard("schema version", [&]() -> StatusOr<int> { return ReadVersion(impl_->db); });
}

Status SqliteStore::Begin() { return impl_->Run("begin", "BEGIN IMMEDIATE"); }
Status SqliteStore::Commit() { return impl_->Run("commit", "COMMIT"); }
Status SqliteStore::Rollback() {
  impl_->enclosed = false;
  // Nothing to undo when SQLite already rolled the transaction back itself.
  if (sqlite3_get_autocommit(impl_->db.getHandle()) != 0) return Status::Ok();
  return impl_->Run("rollback", "ROLLBACK");
}
Status SqliteStore::Savepoint() {
  Status s = impl_->Run("savepoint", "SAVEPOINT request");
  impl_->enclosed = s.ok();
  return s;
}
Status SqliteStore::Release() {
  impl_->enclosed = false;
  return impl_->Run("release", "RELEASE request");
}
Status SqliteStore::RollbackTo() {
  impl_->enclosed = false;
  return impl_->Run("rollback to savepoint", "ROLLBACK TO request; RELEASE request");
}

StatusOr<PurchaseMatch> SqliteStore::MatchPurchase(const Purchase& purchase, const Zone* zone) {
  return Guard("match purchase", [&]() -> StatusOr<PurchaseMatch> {
    auto& q = impl_->match;
    q.tryReset();
    BindText(q, 1, purchase.order_id);
    if (!q.executeStep()) return PurchaseMatch{};
    Purchase stored;
    stored.order_id = purchase.order_id;
    stored.buyer_id = q.getColumn(0).getString();
    stored.product = q.getColumn(1).getString();
    stored.quantity = q.getColumn(2).getInt64();
    stored.amount = q.getColumn(3).getDouble();
    stored.purchased_at = FromMs(q.getColumn(4).getInt64());
    stored.timezone = q.getColumn(5).getString();
    stored.attributes = Text(q.getColumn(6));
    // The zone it was planned in: a timezone naming it is the same one.
    if (zone != nullptr && q.getColumn(7).getString() == zone->name()) {
      stored.timezone = purchase.timezone;
    }
    q.tryReset();
    const std::string_view differs = stored.FirstDifference(purchase);
    if (differs.empty()) return PurchaseMatch{PurchaseMatch::Kind::kSame};
    return PurchaseMatch{PurchaseMatch::Kind::kConflict, std::string(differs)};
  });
}

StatusOr<BuyerState> SqliteStore::LoadBuyer(std::string_view buyer_id) {
  return Guard("load buyer", [&]() -> StatusOr<BuyerState> {
    BuyerState state;
    auto id = impl_->FindBuyer(buyer_id, &state.opted_out);
    if (!id) return state;
    auto& q = impl_->buyer_history;
    q.tryReset();
    q.bind(1, *id);
    while (q.executeStep()) {
      state.history.push_back({FromMs(q.getColumn(0).getInt64()),
                               impl_->rules->ProductIndex(q.getColumn(1).getString()),
                               q.getColumn(2).getDouble()});
    }
    return state;
  });
}

Status SqliteStore::AddPurchase(const Purchase& purchase, const Zone* zone, int tier,
                                std::span<const PlannedTouchpoint> touchpoints, Instant now) {
  Impl& m = *impl_;
  return m.Atomically("add purchase", [&] {
    const Rules& rules = *m.rules;
    const std::int64_t buyer = m.EnsureBuyer(purchase.buyer_id, now);
    auto& p = m.purchase_insert;
    p.tryReset();
    BindText(p, 1, purchase.order_id);
    p.bind(2, buyer);
    BindText(p, 3, purchase.product);
    p.bind(4, purchase.quantity);
    p.bind(5, purchase.amount);
    p.bind(6, Ms(purchase.purchased_at));
    BindText(p, 7, purchase.timezone);
    BindText(p, 8, zone->name());
    BindText(p, 9, rules.tiers[tier].name);
    BindTextOrNull(p, 10, purchase.attributes);
    p.bind(11, Ms(now));
    p.exec();
    const std::int64_t purchase_row = m.db.getLastInsertRowid();
    for (const PlannedTouchpoint& planned : touchpoints) {
      const std::int64_t row = m.InsertTouchpoint(purchase_row, buyer, planned);
      if (planned.state != TouchpointState::kPending) {
        m.AddHistory(row, now, planned.state, planned.reason);
      }
    }
  });
}

StatusOr<CadenceCounts> SqliteStore::CancelEarlier(std::string_view buyer_id, Instant up_to,
                                                   std::string_view except_order, Instant now,
                                                   std::string_view reason) {
  Impl& m = *impl_;
  CadenceCounts counts;
  Status s = m.Atomically("cancel earlier touchpoints", [&] {
    auto buyer = m.FindBuyer(buyer_id);
    if (!buyer) return;
    auto& q = m.cancel_earlier;
    q.tryReset();
    BindText(q, 1, reason);
    q.bind(2, *buyer);
    q.bind(3, Ms(up_to));
    BindText(q, 4, except_order);
    m.FinishReturned(q, now, TouchpointState::kCancelled, reason, counts);
  });
  if (!s.ok()) return s;
  return counts;
}

StatusOr<CadenceCounts> SqliteStore::SetOptedOut(std::string_view buyer_id, bool opted_out,
                                                 Instant now) {
  Impl& m = *impl_;
  CadenceCounts counts;
  Status s = m.Atomically("set opt-out", [&] {
    const std::int64_t buyer = m.EnsureBuyer(buyer_id, now);
    m.set_opted_out.tryReset();
    m.set_opted_out.bind(1, opted_out ? 1 : 0);
    m.set_opted_out.bind(2, buyer);
    m.set_opted_out.exec();
    if (!opted_out) return;
    auto& q = m.suppress;
    q.tryReset();
    static constexpr std::string_view kReason = "opted out";
    BindText(q, 1, kReason);
    q.bind(2, buyer);
    m.FinishReturned(q, now, TouchpointState::kSuppressed, kReason, counts);
  });
  if (!s.ok()) return s;
  return counts;
}

StatusOr<std::optional<Instant>> SqliteStore::NextWakeup() {
  return Guard("next wakeup", [&]() -> StatusOr<std::optional<Instant>> {
    auto& q = impl_->next_wakeup;
    q.tryReset();
    if (!q.executeStep()) return std::optional<Instant>();
    const Instant at = FromMs(q.getColumn(0).getInt64());
    q.tryReset();
    return std::optional<Instant>(at);
  });
}

StatusOr<std::vector<DueTouchpoint>> SqliteStore::TakeDue(Instant now, std::size_t max) {
  Impl& m = *impl_;
  return Guard("take due touchpoints", [&]() -> StatusOr<std::vector<DueTouchpoint>> {
    m.due.clear();
    auto& q = m.take_due;
    q.tryReset();
    q.bind(1, Ms(now));
    q.bind(2, static_cast<std::int64_t>(max));
    while (q.executeStep()) ReadDue(q, m.zones, m.due.emplace_back());
    q.tryReset();
    m.due_version = m.Version();
    // Views are made only now: the vector no longer moves its strings.
    std::vector<DueTouchpoint> out;
    out.reserve(m.due.size());
    for (const DueRow& r : m.due) out.push_back({static_cast<std::uint64_t>(r.rowid), r.View()});
    return out;
  });
}

StatusOr<int> SqliteStore::CountFired(const DueTouchpoint& due, Instant from, Instant to) {
  return Guard("count fired touchpoints", [&]() -> StatusOr<int> {
    auto& q = impl_->count_fired;
    q.tryReset();
    q.bind(1, static_cast<std::int64_t>(due.handle));
    q.bind(2, Ms(from));
    q.bind(3, Ms(to));
    q.executeStep();
    const int n = q.getColumn(0).getInt();
    q.tryReset();
    return n;
  });
}

Status SqliteStore::ApplyOutcomes(std::span<const DueTouchpoint> due,
                                  std::span<const FiringOutcome> outcomes) {
  Impl& m = *impl_;
  if (due.size() != outcomes.size()) return Status::Error("apply outcomes: size mismatch");
  return m.Atomically("apply firing outcomes", [&] {
    // Fired ones in bulk, per fire time (in practice one per batch): a
    // statement for all of them, not one per touchpoint.
    std::map<std::int64_t, std::string> fired_at;  // fire time -> row ids
    for (std::size_t i = 0; i < due.size(); ++i) {
      if (outcomes[i].kind != FiringOutcome::Kind::kFired) continue;
      std::string& ids = fired_at[Ms(outcomes[i].at)];
      ids += ids.empty() ? '[' : ',';
      ids += std::to_string(due[i].handle);
    }
    // The rows TakeDue() just read as pending, and nothing written since
    // (here or by another connection): they all are still. Otherwise each
    // one is checked.
    bool unchanged = m.due_version && *m.due_version == m.Version() && due.size() == m.due.size();
    for (std::size_t i = 0; unchanged && i < due.size(); ++i) {
      unchanged = static_cast<std::int64_t>(due[i].handle) == m.due[i].rowid;
    }
    m.due_version.reset();
    std::vector<std::int64_t> fired;  // still pending, so fired now
    for (auto& [at, ids] : fired_at) {
      ids += ']';
      m.fire.tryReset();
      m.fire.bind(1, at);
      BindText(m.fire, 2, ids);
      if (unchanged) {
        for (std::size_t i = 0; i < due.size(); ++i) {
          if (outcomes[i].kind == FiringOutcome::Kind::kFired && Ms(outcomes[i].at) == at) {
            fired.push_back(static_cast<std::int64_t>(due[i].handle));
          }
        }
      } else {
        auto& p = m.still_pending;
        p.tryReset();
        BindText(p, 1, ids);
        while (p.executeStep()) fired.push_back(p.getColumn(0).getInt64());
        p.tryReset();
      }
      m.fire.exec();
      m.fire.tryReset();
    }
    std::sort(fired.begin(), fired.end());

    // A row per sink: queue messages (their event is made when handed out)
    // and outbox entries (the event in each, made now from the rows, as a
    // lease makes it: `fire_at` is set).
    struct Row {
      const std::string* sink = nullptr;
      std::int64_t touchpoint = 0;
      const std::string* event = nullptr;  // outbox entries only
      std::int64_t at = 0;  // visible from / first attempt at, and created at: the fire
    };
    std::vector<Row> queued, outboxed;
    std::vector<std::int64_t> pushed;  // the touchpoints with outbox entries, for their events
    // History lines by (reason, time): one statement each.
    std::map<std::pair<std::string_view, std::int64_t>, std::string> history;
    for (std::size_t i = 0; i < due.size(); ++i) {
      const FiringOutcome& o = outcomes[i];
      const auto rowid = static_cast<std::int64_t>(due[i].handle);
      if (o.kind != FiringOutcome::Kind::kFired ||
          !std::binary_search(fired.begin(), fired.end(), rowid)) {
        continue;
      }
      const Impl::Routing& routing = m.RoutingOf(due[i].view.cadence);
      for (const Impl::Route& route : routing.routes) {
        const Row r{&route.sink, rowid, nullptr, Ms(o.at)};
        if (route.type == Sink::Type::kQueue) {
          queued.push_back(r);
          continue;
        }
        if (outboxed.empty() || outboxed.back().touchpoint != rowid) {
          pushed.push_back(rowid);
        }
        outboxed.push_back(r);
      }
      std::string& ids = history[{routing.fired_reason, Ms(o.at)}];
      ids += ids.empty() ? '[' : ',';
      ids += std::to_string(rowid);
    }
    Impl::InsertMany(m.enqueue_many, m.enqueue, queued.size(), 4,
                     [&](SQLite::Statement& q, int p, std::size_t i) {
                       q.bindNoCopy(p, *queued[i].sink);
                       q.bind(p + 1, queued[i].touchpoint);
                       q.bind(p + 2, queued[i].at);
                       q.bind(p + 3, queued[i].at);
                     });
    const auto events = m.event_rows->Make(pushed, /*stored=*/false);
    for (Row& r : outboxed) {
      auto it = events.find(r.touchpoint);
      if (it == events.end()) {
        throw std::runtime_error("touchpoint row " + std::to_string(r.touchpoint) +
                                 " vanished while firing");
      }
      r.event = &it->second;
    }
    Impl::InsertMany(m.outbox_insert_many, m.outbox_insert, outboxed.size(), 5,
                     [&](SQLite::Statement& q, int p, std::size_t i) {
                       q.bindNoCopy(p, *outboxed[i].sink);
                       q.bind(p + 1, outboxed[i].touchpoint);
                       q.bindNoCopy(p + 2, *outboxed[i].event);
                       q.bind(p + 3, outboxed[i].at);
                       q.bind(p + 4, outboxed[i].at);
                     });
    for (auto& [key, ids] : history) {
      ids += ']';
      auto& h = m.history_each;
      h.tryReset();
      h.bind(1, key.second);
      h.bind(2, StateCode(TouchpointState::kFired));
      BindText(h, 3, key.first);
      BindText(h, 4, ids);
      h.exec();
    }

    for (std::size_t i = 0; i < due.size(); ++i) {
      const auto rowid = static_cast<std::int64_t>(due[i].handle);
      const FiringOutcome& o = outcomes[i];
      switch (o.kind) {
        case FiringOutcome::Kind::kFired:
          break;
        case FiringOutcome::Kind::kDeferred:
          m.defer.tryReset();
          m.defer.bind(1, Ms(o.at));
          m.defer.bind(2, rowid);
          if (m.defer.exec() == 0) break;
          m.AddHistory(rowid, due[i].view.next_at, TouchpointState::kPending,
                       "deferred to " + FormatRfc3339(o.at, due[i].view.zone) + ": " + o.reason);
          break;
        case FiringOutcome::Kind::kSkipped:
          m.skip.tryReset();
          BindText(m.skip, 1, o.reason);
          m.skip.bind(2, rowid);
          if (m.skip.exec() == 0) break;
          m.AddHistory(rowid, o.at, TouchpointState::kSkipped, o.reason);
          break;
      }
    }
  });
}

StatusOr<std::optional<BuyerReport>> SqliteStore::GetBuyer(std::string_view buyer_id) {
  Impl& m = *impl_;
  return Guard("get buyer", [&]() -> StatusOr<std::optional<BuyerReport>> {
    BuyerReport report;
    report.buyer_id = std::string(buyer_id);
    auto buyer = m.FindBuyer(buyer_id, &report.opted_out);
    if (!buyer) return std::optional<BuyerReport>();
    SQLite::Statement p(m.db,
                        "SELECT order_id, product, quantity, amount, purchased_at, timezone, zone, "
                        "tier, attributes, received_at FROM purchases WHERE buyer = ? "
                        "ORDER BY purchased_at, id");
    p.bind(1, *buyer);
    while (p.executeStep()) {
      PurchaseRecord& r = report.purchases.emplace_back();
      r.purchase.order_id = p.getColumn(0).getString();
      r.purchase.buyer_id = report.buyer_id;
      r.purchase.product = p.getColumn(1).getString();
      r.purchase.quantity = p.getColumn(2).getInt64();
      r.purchase.amount = p.getColumn(3).getDouble();
      r.purchase.purchased_at = FromMs(p.getColumn(4).getInt64());
      r.purchase.timezone = p.getColumn(5).getString();
      r.zone = p.getColumn(6).getString();
      r.tier = p.getColumn(7).getString();
      r.purchase.attributes = Text(p.getColumn(8));
      r.received_at = FromMs(p.getColumn(9).getInt64());
    }
    if (!report.purchases.empty()) report.tier = report.purchases.back().tier;

    SQLite::Statement t(
        m.db,
        "SELECT t.id, p.order_id, t.cadence, t.step, t.topic, COALESCE(t.tier, p.tier), "
        "p.product, p.zone, t.due_at, t.next_at, t.fire_at, t.state, t.reason FROM touchpoints t "
        "JOIN purchases p ON p.id = t.purchase WHERE t.buyer = ? "
        "ORDER BY t.due_at, t.cadence_order, t.step_order, t.id");
    t.bind(1, *buyer);
    std::unordered_map<std::int64_t, std::size_t> index;
    while (t.executeStep()) {
      index.emplace(t.getColumn(0).getInt64(), report.touchpoints.size());
      TouchpointRecord& r = report.touchpoints.emplace_back();
      r.order_id = t.getColumn(1).getString();
      r.cadence = t.getColumn(2).getString();
      r.step = t.getColumn(3).getString();
      r.id = TouchpointId(r.order_id, r.cadence, r.step);
      r.topic = t.getColumn(4).getString();
      r.tier = t.getColumn(5).getString();
      r.product = t.getColumn(6).getString();
      r.zone = t.getColumn(7).getString();
      r.due_at = FromMs(t.getColumn(8).getInt64());
      r.next_at = FromMs(t.getColumn(9).getInt64());
      if (!t.getColumn(10).isNull()) r.fire_at = FromMs(t.getColumn(10).getInt64());
      r.state = StateFrom(t.getColumn(11).getInt());
      r.reason = Text(t.getColumn(12));
    }
    SQLite::Statement h(m.db,
                        "SELECT h.touchpoint, h.at, h.state, h.reason FROM touchpoint_history h "
                        "JOIN touchpoints t ON t.id = h.touchpoint WHERE t.buyer = ? "
                        "ORDER BY h.rowid");
    h.bind(1, *buyer);
    while (h.executeStep()) {
      auto it = index.find(h.getColumn(0).getInt64());
      if (it == index.end()) continue;
      report.touchpoints[it->second].history.push_back({FromMs(h.getColumn(1).getInt64()),
                                                        StateFrom(h.getColumn(2).getInt()),
                                                        h.getColumn(3).getString()});
    }
    return std::optional<BuyerReport>(std::move(report));
  });
}

StatusOr<int> SqliteStore::PendingOf(std::string_view buyer_id) {
  Impl& m = *impl_;
  return Guard("count pending", [&]() -> StatusOr<int> {
    auto buyer = m.FindBuyer(buyer_id);
    if (!buyer) return 0;
    SQLite::Statement q(m.db, "SELECT COUNT(*) FROM touchpoints WHERE buyer = ? AND state = 0");
    q.bind(1, *buyer);
    q.executeStep();
    return q.getColumn(0).getInt();
  });
}

StatusOr<std::vector<LeasedRow>> SqliteStore::TakeLease(std::string_view queue, int max,
                                                        Millis visibility, Instant now) {
  Impl& m = *impl_;
  std::vector<LeasedRow> rows;
  Status s = Guard("lease", [&] {
    // One random part per lease (96 bits): a receipt, the message's id and
    // this part, is still unguessable and unique per message and hand-out.
    const std::string token = RandomHex(12);
    auto& q = m.lease_take;
    q.tryReset();
    BindText(q, 1, queue);
    q.bind(2, Ms(now));
    q.bind(3, max);
    std::string ids;
    while (q.executeStep()) {
      LeasedRow& r = rows.emplace_back();
      r.id = q.getColumn(0).getInt64();
      r.message.deliveries = q.getColumn(1).getInt() + 1;
      r.touchpoint = q.getColumn(2).getInt64();
      r.message.receipt = std::to_string(r.id) + "." + token;
      ids += ids.empty() ? '[' : ',';
      ids += std::to_string(r.id);
    }
    q.tryReset();
    if (rows.empty()) return Status::Ok();
    ids += ']';
    auto& u = m.lease;
    u.tryReset();
    BindText(u, 1, token);
    u.bind(2, Ms(now + visibility));
    BindText(u, 3, ids);
    u.exec();
    return Status::Ok();
  });
  if (!s.ok()) return s;
  // RETURNING has no defined order: hand them out in enqueue order.
  std::sort(rows.begin(), rows.end(),
            [](const LeasedRow& a, const LeasedRow& b) { return a.id < b.id; });
  return rows;
}

StatusOr<std::vector<LeasedMessage>> SqliteStore::Lease(std::string_view queue, int max,
                                                        Millis visibility, Instant now) {
  auto rows = TakeLease(queue, max, visibility, now);
  if (!rows.ok()) return rows.status();
  if (Status s = impl_->event_rows->Fill(*rows, queue); !s.ok()) return s;
  std::vector<LeasedMessage> out;
  out.reserve(rows->size());
  for (LeasedRow& r : *rows) out.push_back(std::move(r.message));
  return out;
}

StatusOr<int> SqliteStore::Ack(std::string_view queue, std::span<const std::string> receipts,
                               Instant now) {
  Impl& m = *impl_;
  // Receipts by their lease's random part, each with its message ids as a
  // JSON array: one DELETE per lease, usually one per ack.
  std::map<std::string_view, std::string, std::less<>> ids_by_lease;
  for (const std::string& receipt : receipts) {
    const auto dot = receipt.find('.');
    // Row ids are 1 to 18 digits with no leading zero (that would not be JSON).
    if (dot == std::string::npos || dot == 0 || dot > 18 || receipt[0] == '0' ||
        dot + 1 == receipt.size()) {
      continue;
    }
    if (!std::all_of(receipt.begin(), receipt.begin() + static_cast<std::ptrdiff_t>(dot),
                     [](char c) { return c >= '0' && c <= '9'; })) {
      continue;
    }
    std::string& ids = ids_by_lease[std::string_view(receipt).substr(dot + 1)];
    ids += ids.empty() ? '[' : ',';
    ids.append(receipt, 0, dot);
  }
  int acked = 0;
  const std::string reason = "acked on " + std::string(queue);
  Status s = m.Atomically("ack", [&] {
    std::string messages, touchpoints;  // the current ones, as JSON arrays
    for (auto& [token, ids] : ids_by_lease) {
      ids += ']';
      auto& q = m.ack;
      q.tryReset();
      BindText(q, 1, queue);
      BindText(q, 2, token);
      BindText(q, 3, ids);
      while (q.executeStep()) {
        messages += messages.empty() ? '[' : ',';
        messages += std::to_string(q.getColumn(0).getInt64());
        touchpoints += touchpoints.empty() ? '[' : ',';
        touchpoints += std::to_string(q.getColumn(1).getInt64());
        ++acked;
      }
      q.tryReset();
    }
    if (acked == 0) return;
    messages += ']';
    touchpoints += ']';
    auto& d = m.ack_delete;
    d.tryReset();
    BindText(d, 1, messages);
    d.exec();
    if (m.event_rows->stored_left()) {
      auto& e = m.drop_queue_events;
      e.tryReset();
      BindText(e, 1, touchpoints);
      if (e.exec() < acked) {  // some event still serves another queue, or none was stored
        auto& r = m.release_queue_events;
        r.tryReset();
        BindText(r, 1, touchpoints);
        r.exec();
      }
    }
    auto& h = m.history_each;
    h.tryReset();
    h.bind(1, Ms(now));
    h.bind(2, StateCode(TouchpointState::kFired));
    BindText(h, 3, reason);
    BindText(h, 4, touchpoints);
    h.exec();
  });
  if (!s.ok()) return s;
  return acked;
}

StatusOr<std::int64_t> SqliteStore::PendingCount() {
  return Guard("count pending touchpoints", [&]() -> StatusOr<std::int64_t> {
    SQLite::Statement q(impl_->db, kPendingCount);
    q.executeStep();
    return q.getColumn(0).getInt64();
  });
}

StatusOr<std::int64_t> SqliteStore::QueueDepth(std::string_view queue) {
  return impl_->Count("queue depth", kQueueDepth, queue);
}

StatusOr<std::vector<OutboxItem>> SqliteStore::DueDeliveries(std::string_view sink, Instant now,
                                                             std::size_t max, bool in_order) {
  Impl& m = *impl_;
  return Guard("read the outbox", [&]() -> StatusOr<std::vector<OutboxItem>> {
    auto& q = in_order ? m.outbox_in_order : m.outbox_due;
    q.tryReset();
    BindText(q, 1, sink);
    q.bind(2, Ms(now));
    q.bind(3, static_cast<std::int64_t>(max));
    std::vector<OutboxItem> out;
    while (q.executeStep()) {
      out.push_back({q.getColumn(0).getInt64(), q.getColumn(1).getInt64(),
                     TouchpointId(q.getColumn(2).getText(), q.getColumn(3).getText(),
                                  q.getColumn(4).getText()),
                     q.getColumn(5).getString(), q.getColumn(6).getInt()});
    }
    q.tryReset();
    return out;
  });
}

StatusOr<std::optional<Instant>> SqliteStore::NextDeliveryAfter(std::string_view sink,
                                                                Instant now) {
  return Guard("read the outbox", [&]() -> StatusOr<std::optional<Instant>> {
    auto& q = impl_->outbox_next;
    q.tryReset();
    BindText(q, 1, sink);
    q.bind(2, Ms(now));
    std::optional<Instant> at;
    if (q.executeStep() && !q.getColumn(0).isNull()) at = FromMs(q.getColumn(0).getInt64());
    q.tryReset();
    return at;
  });
}

Status SqliteStore::RecordDeliveries(std::span<const DeliveryResult> results) {
  Impl& m = *impl_;
  return m.Atomically("record deliveries", [&] {
    for (const DeliveryResult& r : results) {
      int changed = 0;
      switch (r.kind) {
        case DeliveryResult::Kind::kDelivered:
          m.delivered.tryReset();
          m.delivered.bind(1, r.id);
          changed = m.delivered.exec();
          break;
        case DeliveryResult::Kind::kRetry:
        case DeliveryResult::Kind::kDead: {
          const bool dead = r.kind == DeliveryResult::Kind::kDead;
          auto& q = m.failed_attempt;
          q.tryReset();
          q.bind(1, dead ? 1 : 0);
          q.bind(2, r.attempts);
          q.bind(3, Ms(dead ? r.at : r.next_attempt_at));
          BindText(q, 4, r.error);
          q.bind(5, r.id);
          changed = q.exec();
          if (dead && changed > 0) {
            m.touchpoint_dead.tryReset();
            BindText(m.touchpoint_dead, 1, r.history);
            m.touchpoint_dead.bind(2, r.touchpoint);
            m.touchpoint_dead.exec();
          }
          break;
        }
      }
      if (changed == 0) continue;  // replayed or gone meanwhile
      m.delivery_history.tryReset();
      m.delivery_history.bind(1, Ms(r.at));
      BindText(m.delivery_history, 2, r.history);
      m.delivery_history.bind(3, r.touchpoint);
      m.delivery_history.exec();
    }
  });
}

StatusOr<std::vector<DeadLetter>> SqliteStore::DeadLetters(std::string_view sink,
                                                           std::int64_t after, int limit) {
  Impl& m = *impl_;
  return Guard("list dead letters", [&]() -> StatusOr<std::vector<DeadLetter>> {
    SQLite::Statement q(
        m.db,
        "SELECT d.id, d.sink, p.order_id, t.cadence, t.step, d.event, d.attempts, d.last_error, "
        "d.dead_at FROM deliveries d JOIN touchpoints t ON t.id = d.touchpoint "
        "JOIN purchases p ON p.id = t.purchase "
        "WHERE d.state = 1 AND d.id > ?1 AND (?2 = '' OR d.sink = ?2) ORDER BY d.id LIMIT ?3");
    q.bind(1, after);
    BindText(q, 2, sink);
    q.bind(3, limit);
    std::vector<DeadLetter> out;
    while (q.executeStep()) {
      out.push_back({q.getColumn(0).getInt64(), q.getColumn(1).getString(),
                     TouchpointId(q.getColumn(2).getText(), q.getColumn(3).getText(),
                                  q.getColumn(4).getText()),
                     q.getColumn(5).getString(), q.getColumn(6).getInt(), Text(q.getColumn(7)),
                     FromMs(q.getColumn(8).getInt64())});
    }
    return out;
  });
}

StatusOr<int> SqliteStore::ReplayDeadLetters(std::int64_t id, std::string_view sink, Instant now) {
  Impl& m = *impl_;
  int count = 0;
  Status s = m.Atomically("replay dead letters", [&] {
    SQLite::Statement q(
        m.db,
        "UPDATE deliveries SET state = 0, attempts = 0, next_attempt_at = ?1, dead_at = NULL "
        "WHERE state = 1 AND (?2 = 0 OR id = ?2) AND (?3 = '' OR sink = ?3) "
        "RETURNING touchpoint, sink");
    q.bind(1, Ms(now));
    q.bind(2, id);
    BindText(q, 3, sink);
    std::vector<std::pair<std::int64_t, std::string>> replayed;
    while (q.executeStep())
      replayed.emplace_back(q.getColumn(0).getInt64(), q.getColumn(1).getString());
    q.tryReset();
    // A touchpoint is fired again once none of its deliveries is dead.
    SQLite::Statement revive(m.db,
                             "UPDATE touchpoints SET state = 1, reason = NULL WHERE id = ? AND "
                             "state = 5 AND NOT EXISTS (SELECT 1 FROM deliveries WHERE "
                             "touchpoint = touchpoints.id AND state = 1)");
    for (const auto& [touchpoint, name] : replayed) {
      revive.tryReset();
      revive.bind(1, touchpoint);
      revive.exec();
      m.delivery_history.tryReset();
      m.delivery_history.bind(1, Ms(now));
      BindText(m.delivery_history, 2, "dead letter replayed on " + name);
      m.delivery_history.bind(3, touchpoint);
      m.delivery_history.exec();
      ++count;
    }
  });
  if (!s.ok()) return s;
  return count;
}

StatusOr<std::vector<std::pair<std::string, std::int64_t>>> SqliteStore::OutboxBySink() {
  return Guard("outbox sinks",
               [&]() -> StatusOr<std::vector<std::pair<std::string, std::int64_t>>> {
                 SQLite::Statement q(impl_->db, kOutboxBySink);
                 std::vector<std::pair<std::string, std::int64_t>> out;
                 while (q.executeStep()) {
                   out.emplace_back(q.getColumn(0).getString(), q.getColumn(1).getInt64());
                 }
                 return out;
               });
}

StatusOr<std::int64_t> SqliteStore::OutboxDepth(std::string_view sink) {
  return impl_->Count("outbox depth",
                      "SELECT COUNT(*) FROM deliveries WHERE sink = ? AND state = 0", sink);
}

StatusOr<std::int64_t> SqliteStore::DeadLetterCount(std::string_view sink) {
  return impl_->Count("dead letter count", kDeadLetterCount, sink);
}

void SqliteStore::SetRules(std::shared_ptr<const Rules> rules) {
  impl_->SetRules(std::move(rules));
}

StatusOr<PlanningState> SqliteStore::Planning() {
  Impl& m = *impl_;
  return Guard("read the planning state", [&]() -> StatusOr<PlanningState> {
    PlanningState state;
    SQLite::Statement q(m.db,
                        "SELECT fingerprint, replanning, next_at, due_at, cadence_order, "
                        "step_order, touchpoint FROM planning WHERE id = 1");
    if (!q.executeStep()) return state;
    state.fingerprint = q.getColumn(0).getString();
    state.replanning = q.getColumn(1).getInt() != 0;
    m.sweep = Impl::Sweep{};
    m.replanned.clear();
    if (state.replanning && !q.getColumn(2).isNull()) {
      m.sweep = {q.getColumn(2).getInt64(), q.getColumn(3).getInt64(), q.getColumn(4).getInt64(),
                 q.getColumn(5).getInt64(), q.getColumn(6).getInt64()};
    }
    return state;
  });
}

Status SqliteStore::SetPlanning(std::string_view fingerprint, bool replan) {
  Impl& m = *impl_;
  return m.Atomically("record the planning state", [&] {
    m.SavePlanning(fingerprint, replan ? std::optional<Impl::Sweep>(Impl::Sweep{}) : std::nullopt);
    m.sweep = Impl::Sweep{};
    m.replanned.clear();
  });
}

StatusOr<ReplanStep> SqliteStore::ReplanSome(std::chrono::steady_clock::time_point deadline,
                                             Instant now) {
  Impl& m = *impl_;
  ReplanStep step;
  if (Status s = Begin(); !s.ok()) return s;
  m.enclosed = true;  // all or nothing: no savepoint per buyer
  try {
    constexpr int kRowsPerRead = 256;
    struct Row {
      Impl::Sweep at;
      std::int64_t buyer;
    };
    std::vector<Row> rows;
    bool out_of_time = false;
    while (!out_of_time) {
      auto& q = m.sweep_rows;
      q.tryReset();
      q.bind(1, m.sweep.next_at);
      q.bind(2, m.sweep.due_at);
      q.bind(3, m.sweep.cadence_order);
      q.bind(4, m.sweep.step_order);
      q.bind(5, m.sweep.id);
      q.bind(6, kRowsPerRead);
      rows.clear();
      while (q.executeStep()) {
        rows.push_back(
            {{q.getColumn(2).getInt64(), q.getColumn(3).getInt64(), q.getColumn(4).getInt64(),
              q.getColumn(5).getInt64(), q.getColumn(0).getInt64()},
             q.getColumn(1).getInt64()});
      }
      q.tryReset();
      if (rows.empty()) {
        step.done = true;
        break;
      }
      for (const Row& r : rows) {
        m.sweep = r.at;
        const auto buyer = static_cast<std::size_t>(r.buyer);
        if (buyer >= m.replanned.size()) m.replanned.resize(buyer + 1 + buyer / 4, false);
        if (m.replanned[buyer]) continue;
        m.replanned[buyer] = true;
        m.ReplanBuyer(r.buyer, now, step.counts);
        ++step.buyers;
        if (std::chrono::steady_clock::now() >= deadline) {
          out_of_time = true;
          break;
        }
      }
      // Rows of buyers done already (a moved touchpoint comes round again)
      // cost a read each: the deadline holds for them too.
      if (std::chrono::steady_clock::now() >= deadline) out_of_time = true;
    }
    m.SaveSweep(step.done ? std::nullopt : std::optional<Impl::Sweep>(m.sweep));
  } catch (const std::exception& e) {
    m.enclosed = false;
    (void)Rollback();
    (void)Planning();  // back to the position the file holds
    return Failed("re-plan", e);
  }
  m.enclosed = false;
  if (Status s = Commit(); !s.ok()) {
    (void)Rollback();
    (void)Planning();
    return s;
  }
  if (step.done) m.replanned.clear();
  step.covered = step.done ? Instant::max() : FromMs(m.sweep.next_at);
  return step;
}

void ReplanCounts::Add(const ReplanCounts& other) {
  moved += other.moved;
  updated += other.updated;
  added += other.added;
  cancelled += other.cancelled;
  for (const auto& [cadence, n] : other.cancelled_by_cadence) cancelled_by_cadence[cadence] += n;
  for (const auto& [cadence, n] : other.added_by_cadence) added_by_cadence[cadence] += n;
}

StatusOr<PruneResult> SqliteStore::PruneFinished(Instant cutoff, std::int64_t after,
                                                 std::int64_t span) {
  Impl& m = *impl_;
  PruneResult result;
  Status s = m.Atomically("prune finished touchpoints", [&] {
    // Finished (fired, cancelled, suppressed, skipped; never dead) and due
    // and fired before the cutoff, with nothing left to deliver.
    SQLite::Statement find(
        m.db,
        "SELECT t.id FROM touchpoints t WHERE t.id > ?1 AND t.id <= ?2 AND t.state IN (1, 2, 3, 4) "
        "AND t.due_at < ?3 AND COALESCE(t.fire_at, 0) < ?3 "
        "AND NOT EXISTS (SELECT 1 FROM queue_events e WHERE e.touchpoint = t.id) "
        "AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.touchpoint = t.id)");
    find.bind(1, after);
    find.bind(2, after + span);
    find.bind(3, Ms(cutoff));
    Impl::Queued& queued = m.queued_before;
    if (queued.cutoff != Ms(cutoff)) {
      queued.touchpoints.clear();
      SQLite::Statement q(m.db,
                          "SELECT DISTINCT touchpoint FROM queue_messages WHERE enqueued_at < ? "
                          "ORDER BY touchpoint");
      q.bind(1, Ms(cutoff));
      while (q.executeStep()) queued.touchpoints.push_back(q.getColumn(0).getInt64());
      queued.cutoff = Ms(cutoff);
    }
    std::vector<std::int64_t> ids;
    while (find.executeStep()) {
      const std::int64_t id = find.getColumn(0).getInt64();
      if (!std::binary_search(queued.touchpoints.begin(), queued.touchpoints.end(), id)) {
        ids.push_back(id);
      }
    }
    SQLite::Statement history(m.db, "DELETE FROM touchpoint_history WHERE touchpoint = ?");
    SQLite::Statement touchpoint(m.db, "DELETE FROM touchpoints WHERE id = ?");
    for (std::int64_t id : ids) {
      history.tryReset();
      history.bind(1, id);
      history.exec();
      touchpoint.tryReset();
      touchpoint.bind(1, id);
      touchpoint.exec();
    }
    result.deleted = static_cast<std::int64_t>(ids.size());
    SQLite::Statement last(m.db, "SELECT MAX(id) FROM touchpoints");
    last.executeStep();
    const std::int64_t max_id = last.getColumn(0).isNull() ? 0 : last.getColumn(0).getInt64();
    result.next = after + span;
    result.done = result.next >= max_id;
  });
  if (!s.ok()) return s;
  return result;
}

Status SqliteStore::Backup(const std::string& from, const std::string& to) {
  std::error_code ec;
  if (std::filesystem::exists(to, ec)) {
    return Status::Error(to + " exists; remove it or choose another name");
  }
  const std::string partial = to + ".partial";
  std::filesystem::remove(partial, ec);
  if (::access(from.c_str(), R_OK) != 0) {
    return Status::Error("cannot read the database " + from + ": " + std::strerror(errno));
  }
  // Made here first so a missing or read-only folder is named with the
  // system's reason (SQLite would only say "unable to open database file").
  if (const int fd = ::open(partial.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
      fd >= 0) {
    ::close(fd);
  } else {
    return Status::Error("cannot write " + partial + ": " + std::strerror(errno));
  }
  Status s = Guard("backup", [&]() -> Status {
    // Read-write only so a WAL file can be read without its writer: nothing
    // is written to `from`.
    SQLite::Database source(from, SQLite::OPEN_READWRITE);
    source.setBusyTimeout(5000);
    {
      SQLite::Database target(partial, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
      // One step copies every page under one read transaction: a consistent
      // snapshot, however busy the daemon is meanwhile.
      SQLite::Backup backup(target, source);
      backup.executeStep(-1);
    }
    SQLite::Database copy(partial, SQLite::OPEN_READWRITE);
    copy.exec("PRAGMA journal_mode = DELETE");  // one self-contained file
    SQLite::Statement check(copy, "PRAGMA integrity_check");
    check.executeStep();
    const std::string verdict = check.getColumn(0).getString();
    if (verdict != "ok") return Status::Error("the copy fails its integrity check: " + verdict);
    return Status::Ok();
  });
  if (!s.ok()) {
    std::filesystem::remove(partial, ec);
    return s;
  }
  // The copy holds the same buyers' data: give it the original's mode, not
  // the umask's (often world-readable).
  std::filesystem::permissions(partial, std::filesystem::status(from, ec).permissions(), ec);
  std::filesystem::rename(partial, to, ec);
  if (ec) return Status::Error("cannot rename " + partial + " to " + to + ": " + ec.message());
  return Status::Ok();
}

struct StoreReader::Impl {
  explicit Impl(const std::string& path)
      : db(path, SQLite::OPEN_READONLY | SQLite::OPEN_NOMUTEX), rows(db) {
    db.setBusyTimeout(5000);
  }

  void Post(std::function<void()> job) {
    {
      std::lock_guard lock(mutex);
      jobs.push_back(std::move(job));
    }
    wake.notify_one();
  }

  void Run() {
    std::unique_lock lock(mutex);
    for (;;) {
      wake.wait(lock, [this] { return !jobs.empty() || stop; });
      if (jobs.empty()) return;  // stopping, and nothing left
      std::function<void()> job = std::move(jobs.front());
      jobs.pop_front();
      lock.unlock();
      job();
      lock.lock();
    }
  }

  // Used on the thread only.
  SQLite::Database db;
  EventRows rows;

  std::mutex mutex;
  std::condition_variable wake;
  std::deque<std::function<void()>> jobs;
  bool stop = false;
  std::thread thread;  // last: started once the rest exists
};

StatusOr<std::unique_ptr<StoreReader>> StoreReader::Open(const std::string& path) {
  try {
    auto impl = std::make_unique<Impl>(path);
    impl->thread = std::thread([p = impl.get()] { p->Run(); });
    return std::unique_ptr<StoreReader>(new StoreReader(std::move(impl)));
  } catch (const std::exception& e) {
    return Status::Error("cannot open database " + path + " to read it: " + e.what());
  }
}

StoreReader::StoreReader(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

StoreReader::~StoreReader() {
  {
    std::lock_guard lock(impl_->mutex);
    impl_->stop = true;
  }
  impl_->wake.notify_one();
  impl_->thread.join();
}

void StoreReader::Fill(std::vector<LeasedRow> leased, std::string queue, Filled done) {
  impl_->Post([impl = impl_.get(), leased = std::move(leased), queue = std::move(queue),
               done = std::move(done)]() mutable {
    if (Status s = impl->rows.Fill(leased, queue); !s.ok()) return done(s);
    done(std::move(leased));
  });
}

void StoreReader::Count(std::vector<std::string> queues, std::vector<std::string> push_sinks,
                        Counted done) {
  impl_->Post([impl = impl_.get(), queues = std::move(queues), push_sinks = std::move(push_sinks),
               done = std::move(done)] {
    done(Guard("count for metrics", [&]() -> StatusOr<StoreGauges> {
      return ReadGauges(impl->db, queues, push_sinks);
    }));
  });
}

}  // namespace tp
