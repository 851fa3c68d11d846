#include "store/schema.h"

#include <SQLiteCpp/SQLiteCpp.h>

#include <iterator>
#include <string>

namespace tp {
namespace {

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
    // 8 -> 9: engagement events (POST /v1/events), each credited to the
    // touchpoint it names or the one fired last before it within the
    // attribution window (a touchpoint row id, NULL for none; not a foreign
    // key, since retention may delete the touchpoint).
    R"sql(
CREATE TABLE events (
  id            INTEGER PRIMARY KEY,
  event_id      TEXT NOT NULL UNIQUE,
  buyer         INTEGER NOT NULL REFERENCES buyers(id),
  type          TEXT NOT NULL,
  at            INTEGER NOT NULL,
  touchpoint_id TEXT,
  credited      INTEGER,
  attributes    TEXT,
  received_at   INTEGER NOT NULL
);
CREATE INDEX events_by_buyer ON events(buyer, at);
)sql",
    // 9 -> 10: each buyer's fired (and dead-lettered) touchpoints in time
    // order, with what crediting, the frequency cap's count and the
    // outcomes report read of them, so an event finds the last one fired
    // before it in one seek, and the report reads them without visiting the
    // table; and each buyer's events with their type and credit, for the
    // report and a step's `when`. One more B-tree write per fire.
    R"sql(
CREATE INDEX touchpoints_fired ON touchpoints(buyer, fire_at, id, cadence, topic, purchase,
                                              state)
  WHERE state IN (1, 5);
DROP INDEX events_by_buyer;
CREATE INDEX events_by_buyer ON events(buyer, at, id, type, credited);
)sql",
    // 10 -> 11: where a fired touchpoint went, recorded as it fires (sink
    // names, comma-separated; NULL for one fired before this version), so
    // a frequency cap scoped to sinks counts what went to them even after
    // a reload routes that step elsewhere; in touchpoints_fired, so the
    // caps read it from the index alone.
    R"sql(
ALTER TABLE touchpoints ADD COLUMN sinks TEXT;
DROP INDEX touchpoints_fired;
CREATE INDEX touchpoints_fired ON touchpoints(buyer, fire_at, id, cadence, topic, purchase,
                                              state, sinks)
  WHERE state IN (1, 5);
)sql",
    // 11 -> 12: the touchpoints due at one instant by buyer (each buyer's
    // own order unchanged), the order PostgreSQL's daemons claim in so
    // that their claims split few buyers (store/pg/fire.cc): one daemon
    // on either store fires in the same order. The re-plan's sweep goes in
    // the same order, its place with a buyer.
    R"sql(
DROP INDEX touchpoints_pending;
CREATE INDEX touchpoints_pending ON touchpoints(next_at, due_at, buyer, cadence_order, step_order)
  WHERE state = 0;
ALTER TABLE planning ADD COLUMN buyer INTEGER;
)sql",
    // 12 -> 13: the dead letters in id order, which a replay of them all
    // and the dead letters' listing read in steps: without it, each step
    // of every sink's read the table from its place on.
    R"sql(
CREATE INDEX deliveries_dead ON deliveries(id) WHERE state = 1;
)sql",
};
constexpr int kMigrationCount = static_cast<int>(std::size(kMigrations));
static_assert(kMigrationCount == kSchemaVersion);

}  // namespace

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

}  // namespace tp
