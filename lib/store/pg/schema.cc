#include "store/pg/schema.h"

#include <iterator>
#include <string>

namespace tp::pgstore {
namespace {

// The advisory lock migrations take: any constant no other code uses.
constexpr const char* kMigrationLock = "SELECT pg_advisory_xact_lock(7305861230001)";

// Migration i takes the schema from version i to version i + 1. Forward only:
// a released migration is never edited, a change is a new entry. The
// tables are those of the SQLite store at its version 13 (store/schema.cc
// says why each column is there), in PostgreSQL's types: times are UTC
// milliseconds (BIGINT), states SMALLINT.
const char* const kMigrations[] = {
    // 0 -> 1: the first schema.
    R"sql(
CREATE TABLE buyers (
  id         BIGSERIAL PRIMARY KEY,
  buyer_id   TEXT NOT NULL UNIQUE,
  opted_out  BOOLEAN NOT NULL DEFAULT false,
  created_at BIGINT NOT NULL
);
CREATE TABLE purchases (
  id           BIGSERIAL PRIMARY KEY,
  order_id     TEXT NOT NULL UNIQUE,
  buyer        BIGINT NOT NULL REFERENCES buyers(id),
  product      TEXT NOT NULL,
  quantity     BIGINT NOT NULL,
  amount       DOUBLE PRECISION NOT NULL,
  purchased_at BIGINT NOT NULL,
  timezone     TEXT NOT NULL,
  zone         TEXT NOT NULL,
  tier         TEXT NOT NULL,
  attributes   TEXT,
  received_at  BIGINT NOT NULL
);
CREATE INDEX purchases_by_buyer ON purchases(buyer, purchased_at, id);
CREATE TABLE touchpoints (
  id                   BIGSERIAL PRIMARY KEY,
  purchase             BIGINT NOT NULL REFERENCES purchases(id),
  buyer                BIGINT NOT NULL REFERENCES buyers(id),
  cadence              TEXT NOT NULL,
  step                 TEXT NOT NULL,
  topic                TEXT NOT NULL,
  cadence_order        INTEGER NOT NULL,
  step_order           INTEGER NOT NULL,
  cancel_on_repurchase BOOLEAN NOT NULL,
  state                SMALLINT NOT NULL,  -- 0 pending 1 fired 2 cancelled 3 suppressed 4 skipped 5 dead
  due_at               BIGINT NOT NULL,
  next_at              BIGINT NOT NULL,
  fire_at              BIGINT,
  reason               TEXT,
  tier                 TEXT,
  sinks                TEXT
);
CREATE INDEX touchpoints_pending ON touchpoints(next_at, due_at, cadence_order, step_order, id)
  WHERE state = 0;
CREATE INDEX touchpoints_by_buyer ON touchpoints(buyer);
CREATE INDEX touchpoints_fired ON touchpoints(buyer, fire_at, id)
  INCLUDE (cadence, topic, purchase, state, sinks) WHERE state IN (1, 5);
CREATE TABLE touchpoint_history (
  id         BIGSERIAL PRIMARY KEY,  -- the order lines were written in
  touchpoint BIGINT NOT NULL REFERENCES touchpoints(id),
  at         BIGINT NOT NULL,
  state      SMALLINT NOT NULL,
  reason     TEXT NOT NULL
);
CREATE INDEX touchpoint_history_by_touchpoint ON touchpoint_history(touchpoint);
CREATE TABLE queue_messages (
  id          BIGSERIAL PRIMARY KEY,
  queue       TEXT NOT NULL,
  touchpoint  BIGINT NOT NULL REFERENCES touchpoints(id),
  visible_at  BIGINT NOT NULL,
  receipt     TEXT,
  deliveries  INTEGER NOT NULL DEFAULT 0,
  enqueued_at BIGINT NOT NULL
);
CREATE INDEX queue_messages_visible ON queue_messages(queue, visible_at, id);
CREATE INDEX queue_messages_by_touchpoint ON queue_messages(touchpoint);
CREATE TABLE deliveries (
  id              BIGSERIAL PRIMARY KEY,
  sink            TEXT NOT NULL,
  touchpoint      BIGINT NOT NULL REFERENCES touchpoints(id),
  event           TEXT NOT NULL,
  state           SMALLINT NOT NULL DEFAULT 0,  -- 0 waiting, 1 dead-lettered; delivered rows go
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_attempt_at BIGINT NOT NULL,
  last_error      TEXT,
  created_at      BIGINT NOT NULL,
  dead_at         BIGINT
);
CREATE INDEX deliveries_due ON deliveries(sink, next_attempt_at, id) WHERE state = 0;
CREATE INDEX deliveries_by_sink ON deliveries(sink, state, id);
CREATE INDEX deliveries_by_touchpoint ON deliveries(touchpoint);
CREATE TABLE planning (
  id            INTEGER PRIMARY KEY CHECK (id = 1),
  fingerprint   TEXT NOT NULL,
  replanning    BOOLEAN NOT NULL DEFAULT false,
  next_at       BIGINT,
  due_at        BIGINT,
  cadence_order INTEGER,
  step_order    INTEGER,
  touchpoint    BIGINT
);
CREATE TABLE events (
  id            BIGSERIAL PRIMARY KEY,
  event_id      TEXT NOT NULL UNIQUE,
  buyer         BIGINT NOT NULL REFERENCES buyers(id),
  type          TEXT NOT NULL,
  at            BIGINT NOT NULL,
  touchpoint_id TEXT,
  credited      BIGINT,
  attributes    TEXT,
  received_at   BIGINT NOT NULL
);
CREATE INDEX events_by_buyer ON events(buyer, at, id) INCLUDE (type, credited);
)sql",
    // 1 -> 2: which session is attempting a push delivery (its server
    // process and that process's start, in microseconds since the epoch):
    // several daemons share the outbox, and a delivery claimed by a session
    // that has ended is free to take over (store/pg/outbox.h). The
    // re-plan's position holds the lowest 64-bit value at its start.
    R"sql(
ALTER TABLE deliveries ADD COLUMN claim_pid INTEGER, ADD COLUMN claim_start BIGINT;
ALTER TABLE planning ALTER COLUMN cadence_order TYPE BIGINT,
  ALTER COLUMN step_order TYPE BIGINT;
)sql",
    // 2 -> 3: a touchpoint's purchase and buyer are not checked by the
    // server. The store writes a touchpoint in the statement that writes its
    // purchase (and buyer), and never deletes purchases or buyers, so the
    // references cannot dangle; checking two keys per touchpoint took 28% of
    // ingest (docs/benchmarks.md). SQLite does not check them either.
    R"sql(
ALTER TABLE touchpoints DROP CONSTRAINT IF EXISTS touchpoints_purchase_fkey,
  DROP CONSTRAINT IF EXISTS touchpoints_buyer_fkey;
)sql",
    // 3 -> 4: nor are the references to a touchpoint from its history
    // lines, queue messages and outbox entries. Each is written by the
    // statement or transaction that holds the touchpoint's row (its fire,
    // or a lease's ack of its message), and retention deletes a touchpoint
    // only with its history and only once neither a message nor an entry
    // refers to it. The check of each key locked the touchpoint's row: a
    // write of it, and WAL, for each ack (docs/benchmarks.md).
    R"sql(
ALTER TABLE touchpoint_history DROP CONSTRAINT IF EXISTS touchpoint_history_touchpoint_fkey;
ALTER TABLE queue_messages DROP CONSTRAINT IF EXISTS queue_messages_touchpoint_fkey;
ALTER TABLE deliveries DROP CONSTRAINT IF EXISTS deliveries_touchpoint_fkey;
)sql",
    // 4 -> 5: two indexes that every fire and every ack paid for, and no
    // read needs. Index entries were a third of the server's work while
    // firing (docs/benchmarks.md): a lease is an update that changes an
    // indexed column, so it adds an entry to every index of the queue's
    // table, and each fire and ack writes a history line. Retention, the
    // one reader of queue_messages(touchpoint), reads the touchpoints
    // queued before its cutoff once a pass instead (store/queued_before.h);
    // history lines keep their numbers (the order they were written in)
    // without a unique index on them.
    R"sql(
DROP INDEX queue_messages_by_touchpoint;
ALTER TABLE touchpoint_history DROP CONSTRAINT touchpoint_history_pkey;
)sql",
    // 5 -> 6: the claim frontier, where claims without caps start: the
    // next_at of the last row a claim took, so that daemons firing at once
    // do not each pass over the rows the others hold at the head of the
    // due rows (store/pg/fire.cc). A sequence: setting it is not
    // transactional, so a claim sets it without holding anything until
    // its pass commits. (Later builds keep the row's id there instead:
    // rows often share a next_at.)
    R"sql(
CREATE SEQUENCE touchpoints_claimed_to
  MINVALUE -9223372036854775808 START -9223372036854775808;
)sql",
    // 6 -> 7: which re-plan the sweep is in, a number each record of a
    // re-plan adds one to: a daemon stepping through the sweep forgets the
    // buyers it re-planned when another daemon starts it again
    // (store/pg/replan.cc).
    R"sql(
ALTER TABLE planning ADD COLUMN run BIGINT NOT NULL DEFAULT 0;
)sql",
    // 7 -> 8: each buyer's pending touchpoints, which a firing claim reads
    // for its buyers to keep each buyer's touchpoints in order across
    // daemons (store/pg/fire_order.cc). touchpoints_by_buyer has
    // every touchpoint a buyer ever had, each read from the table to see
    // its state: a claim's cost would grow with its buyers' histories.
    // IF NOT EXISTS: an operator may have built it first, CONCURRENTLY, so
    // that writes need not wait for it (docs/scaling.md); such a build that
    // failed leaves an invalid index of that name, dropped first.
    R"sql(
DO $$ BEGIN
  IF EXISTS (SELECT 1 FROM pg_index WHERE NOT indisvalid
             AND indexrelid = to_regclass('touchpoints_pending_by_buyer')) THEN
    DROP INDEX touchpoints_pending_by_buyer;
  END IF;
END $$;
CREATE INDEX IF NOT EXISTS touchpoints_pending_by_buyer ON touchpoints(buyer) WHERE state = 0;
)sql",
    // 8 -> 9: the pending touchpoints in an order that keeps a buyer's
    // rows due at one instant together (by buyer after next_at and due_at;
    // each buyer's own order is unchanged), so that daemons' claims split
    // few buyers: a buyer's rows behind those another daemon's claim holds
    // wait (store/pg/fire.cc). The re-plan's sweep goes in the same order,
    // its place with a buyer. Built under another name, and put in the
    // old one's place by the next migration: dropping the old index first
    // would lock the table against reads too while the new one is built,
    // and dropping it after, in this transaction, would raise the build's
    // lock to one that waits for the older daemons' passes while they wait
    // for the build (a deadlock). IF NOT EXISTS, and a failed build's
    // invalid index dropped first, as for schema 8: an operator may have
    // built it first, CONCURRENTLY (docs/scaling.md).
    R"sql(
DO $$ BEGIN
  IF EXISTS (SELECT 1 FROM pg_index WHERE NOT indisvalid
             AND indexrelid = to_regclass('touchpoints_firing_order')) THEN
    DROP INDEX touchpoints_firing_order;
  END IF;
END $$;
CREATE INDEX IF NOT EXISTS touchpoints_firing_order
  ON touchpoints(next_at, due_at, buyer, cadence_order, step_order, id) WHERE state = 0;
ALTER TABLE planning ADD COLUMN buyer BIGINT;
)sql",
    // 9 -> 10: the index in the firing order takes the old one's place, in
    // a transaction of its own whose first lock on the table is the drop's
    // (a moment's wait for the passes under way).
    R"sql(
DROP INDEX touchpoints_pending;
ALTER INDEX touchpoints_firing_order RENAME TO touchpoints_pending;
)sql",
    // 10 -> 11: the dead letters in id order, which a replay of them all
    // and the dead letters' listing read in steps: without it, each step
    // of every sink's read the table from its place on. IF NOT EXISTS, and
    // a failed build's invalid index dropped first, as for schema 8: an
    // operator may have built it first, CONCURRENTLY (docs/scaling.md).
    R"sql(
DO $$ BEGIN
  IF EXISTS (SELECT 1 FROM pg_index WHERE NOT indisvalid
             AND indexrelid = to_regclass('deliveries_dead')) THEN
    DROP INDEX deliveries_dead;
  END IF;
END $$;
CREATE INDEX IF NOT EXISTS deliveries_dead ON deliveries(id) WHERE state = 1;
)sql",
    // 11 -> 12: when a daemon planning by rules other than those recorded
    // last said so (in the server's milliseconds): once none has for a
    // while, the sweep to the recorded rules starts again, so that the
    // purchases those daemons took are re-planned (store/pg/replan.cc).
    R"sql(
ALTER TABLE planning ADD COLUMN other_rules_at BIGINT;
)sql",
};
constexpr int kMigrationCount = static_cast<int>(std::size(kMigrations));
static_assert(kMigrationCount == kSchemaVersion);

}  // namespace

int ReadVersion(pg::Connection& conn) {
  // Two statements: one naming a table that is not there fails as it is
  // parsed, whichever branch of a CASE it is in.
  if (conn.Exec("SELECT to_regclass('schema_version') IS NULL").Bool(0, 0)) return 0;
  pg::Result r = conn.Exec("SELECT COALESCE(MAX(version), 0) FROM schema_version");
  return static_cast<int>(r.Int64(0, 0));
}

Status Migrate(pg::Connection& conn, int target) {
  // One transaction per migration, so that none holds the locks of the one
  // before (9 -> 10 must take its lock first), and a failed one keeps what
  // those before it did.
  for (;;) {
    pg::Transaction txn(conn);
    // Daemons starting together wait here in turn, however long a migration
    // takes (an index build); the first migrates. The statements after wait
    // for locks as the session's do. A statement timeout set on the role or
    // the database (managed servers often set one) would end both the wait
    // and an index build on a large table, every time.
    conn.Exec("SET LOCAL statement_timeout = 0");
    conn.Exec("SET LOCAL lock_timeout = 0");
    // A daemon killed while it migrates (kill -9; before, systemd's start
    // timeout too) leaves no index build running on without it, holding
    // the lock the next start waits for: the server looks for the client
    // every second (PostgreSQL 14 and later, on servers that can: one that
    // cannot, as on Windows, refuses the setting, which is then left out).
    conn.Exec(
        "DO $$BEGIN IF current_setting('server_version_num')::integer >= 140000 THEN "
        "PERFORM set_config('client_connection_check_interval', '1s', true); END IF; "
        "EXCEPTION WHEN invalid_parameter_value THEN NULL; END$$");
    conn.Exec(kMigrationLock);
    conn.Exec("SET LOCAL lock_timeout TO DEFAULT");
    conn.Exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)");
    const int current = ReadVersion(conn);
    if (current > kMigrationCount) {
      return Status::Error("database schema version " + std::to_string(current) +
                           " is newer than this build knows (" + std::to_string(kMigrationCount) +
                           "); use a newer touchpointd");
    }
    if (current >= target) {
      txn.Commit();
      return Status::Ok();
    }
    conn.Exec(kMigrations[current]);
    conn.Exec("DELETE FROM schema_version");
    conn.Exec("INSERT INTO schema_version (version) VALUES (" + std::to_string(current + 1) + ")");
    txn.Commit();
  }
}

}  // namespace tp::pgstore
