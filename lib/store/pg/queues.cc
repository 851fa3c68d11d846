#include "store/pg/queues.h"

#include <algorithm>
#include <set>

#include "store/pg/rows.h"
#include "store/values.h"

namespace tp::pgstore {

using sql::Ms;
using sql::RandomHex;
using sql::StateCode;

namespace {

// Leases of a queue take turns, on every daemon: a transaction-level
// advisory lock on the queue's name, taken in a statement of its own so
// that the lease's snapshot comes after the turn (the two are sent
// together: one round trip, and outside a transaction one of their own).
// Two leases at once would each pass over the rows the other is locking,
// and over those it has just leased (their visible_at moved, under a
// snapshot older than the move), a lock tried for each: with three
// daemons' consumers leasing one queue, the server spent half as much
// again on the queue's side per message.
const pg::Statement kLeaseTurn(
    "SELECT pg_advisory_xact_lock(hashtextextended('lease:' || $1, 7305861230003))");
// Hidden until $5 moved on by the time the lease waited for its turn, if
// that was a second or more (since its transaction began with kLeaseTurn;
// up to lock_timeout, and bounded should the server's clock be stepped
// meanwhile): a lease that waited is hidden for its whole visibility all
// the same, not for what is left of it, so its messages are not handed
// out again while the consumer still has them. (Shorter waits are not
// counted: a lease taken at once is hidden until exactly $5 on either
// store.)
const pg::Statement kLease(
    "WITH c AS (SELECT id FROM queue_messages WHERE queue = $1 AND visible_at <= $2 "
    "ORDER BY visible_at, id LIMIT $3 FOR UPDATE SKIP LOCKED) "
    "UPDATE queue_messages q SET receipt = $4, deliveries = q.deliveries + 1, "
    "visible_at = $5::bigint + (SELECT CASE WHEN w < 1000 THEN 0 ELSE LEAST(w, 60000) END "
    "FROM (SELECT floor(EXTRACT(EPOCH FROM clock_timestamp() - now()) * 1000)::bigint AS w) "
    "AS waited) FROM c WHERE q.id = c.id RETURNING q.id, q.deliveries, q.touchpoint");
// By the primary key, whatever the table's statistics say. A queue table
// is often empty when autovacuum analyzes it, or never analyzed yet; then
// `queue = $1` looks selective (0.5% of the rows), and with it indexable
// the planner read every message of the queue, or the whole table, at
// each ack: 17 ms an ack of 1,000 at 60,000 messages, 1.5 ms by the key.
// So the queue is compared as an expression no index holds, and AckOn()
// turns sequential scans off around it. Planned at each run: a plan kept
// from when the queue was small would not follow it as it grows. All the
// receipts in one statement, whatever leases they come from ($2 the
// messages' ids, $3 their leases' random parts): a statement per lease let
// one request of 10,000 receipts of one message each cost 10,000. The
// acked touchpoints' history lines ($4 the time, $5 the state, $6 the
// reason) are written by the same statement; it answers how many.
const pg::Statement kAck(
    "WITH acked AS (DELETE FROM queue_messages q "
    "USING unnest($2::bigint[], $3::text[]) AS u(id, receipt) "
    "WHERE q.id = u.id AND q.receipt = u.receipt AND q.queue || '' = $1 "
    "RETURNING q.id, q.touchpoint), "
    "lines AS (INSERT INTO touchpoint_history (touchpoint, at, state, reason) "
    "SELECT touchpoint, $4, $5, $6 FROM acked ORDER BY id) "
    "SELECT COUNT(*) FROM acked",
    pg::Statement::Plan::kEachRun);
// Sequential scans off for the rest of the transaction (SET LOCAL's
// function form, so that it goes with the ack in one round trip), the
// setting they had kept first in a setting of our own; and set back as
// they were after the ack, in the same round trip. (Should the ack fail,
// its transaction or savepoint is rolled back, and the setting with it.)
const pg::Statement kSeqscanOff(
    "WITH was AS MATERIALIZED (SELECT set_config('touchpoint.enable_seqscan_was', "
    "current_setting('enable_seqscan'), true)) "
    "SELECT set_config('enable_seqscan', 'off', true) FROM was");
const pg::Statement kSeqscanBack(
    "SELECT set_config('enable_seqscan', current_setting('touchpoint.enable_seqscan_was'), true)");
const pg::Statement kQueueDepth("SELECT COUNT(*) FROM queue_messages WHERE queue = $1");
const pg::Statement kAnyVisible(
    "SELECT EXISTS (SELECT 1 FROM queue_messages WHERE queue = $1 AND visible_at <= $2)");

}  // namespace

bool AnyVisible(pg::Connection& c, std::string_view queue, Instant now) {
  return c.Run(kAnyVisible, pg::Params().Add(queue).Add(Ms(now))).Bool(0, 0);
}

std::vector<LeasedRow> LeaseOn(pg::Connection& c, std::string_view queue, int max,
                               Millis visibility, Instant now) {
  // One random part per lease (96 bits): a receipt, the message's id and
  // this part, is unguessable and unique per message and hand-out.
  const std::string token = RandomHex(12);
  pg::Params turn, lease;
  turn.Add(queue);
  lease.Add(queue).Add(Ms(now)).Add(max).Add(token).Add(Ms(now + visibility));
  pg::Result r = std::move(c.RunTogether({{kLeaseTurn, turn}, {kLease, lease}}).back());
  std::vector<LeasedRow> rows;
  rows.reserve(static_cast<std::size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) {
    LeasedRow& row = rows.emplace_back();
    row.id = r.Int64(i, 0);
    row.message.deliveries = static_cast<int>(r.Int64(i, 1));
    row.touchpoint = r.Int64(i, 2);
    row.message.receipt = std::to_string(row.id) + "." + token;
  }
  // RETURNING has no defined order: hand them out in enqueue order.
  std::sort(rows.begin(), rows.end(),
            [](const LeasedRow& a, const LeasedRow& b) { return a.id < b.id; });
  return rows;
}

int AckOn(pg::Connection& c, std::string_view queue, std::span<const std::string> receipts,
          Instant now) {
  // Each receipt once: its message's id and its lease's random part.
  std::set<std::pair<std::int64_t, std::string_view>> wanted;
  for (const std::string& receipt : receipts) {
    if (auto r = sql::SplitReceipt(receipt)) wanted.emplace(r->id, r->token);
  }
  if (wanted.empty()) return 0;
  std::vector<std::int64_t> ids;
  std::vector<std::string> tokens;
  ids.reserve(wanted.size());
  tokens.reserve(wanted.size());
  for (const auto& [id, token] : wanted) {
    ids.push_back(id);
    tokens.emplace_back(token);
  }
  const pg::Params none;
  pg::Params ack;
  ack.Add(queue).AddArray(ids).AddArray(tokens).Add(Ms(now));
  ack.Add(StateCode(TouchpointState::kFired)).Add("acked on " + std::string(queue));
  std::vector<pg::Result> r =
      c.RunTogether({{kSeqscanOff, none}, {kAck, ack}, {kSeqscanBack, none}});
  return static_cast<int>(r[1].Int64(0, 0));
}

StatusOr<std::vector<LeasedRow>> Queues::TakeLease(std::string_view queue, int max,
                                                   Millis visibility, Instant now) {
  std::vector<LeasedRow> rows;
  Status s = session_.Atomically(
      "lease", [&] { rows = LeaseOn(session_.conn(), queue, max, visibility, now); });
  if (!s.ok()) return s;
  return rows;
}

Status Queues::Fill(std::span<LeasedRow> leased, std::string_view queue) {
  return session_.Read("make leased events", [&] {
    FillEvents(session_.conn(), zones_, leased, queue);
    return Status::Ok();
  });
}

StatusOr<int> Queues::Ack(std::string_view queue, std::span<const std::string> receipts,
                          Instant now) {
  int acked = 0;
  Status s =
      session_.Atomically("ack", [&] { acked = AckOn(session_.conn(), queue, receipts, now); });
  if (!s.ok()) return s;
  return acked;
}

StatusOr<std::int64_t> Queues::QueueDepth(std::string_view queue) {
  return session_.Read("queue depth", [&]() -> StatusOr<std::int64_t> {
    return session_.conn().Run(kQueueDepth, pg::Params().Add(queue)).Int64(0, 0);
  });
}

}  // namespace tp::pgstore
