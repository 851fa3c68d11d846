#include "store/pg/outbox.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <limits>
#include <map>

#include "core/ids.h"
#include "store/pg/rows.h"
#include "store/values.h"

namespace tp::pgstore {

using sql::FromMs;
using sql::Ms;

namespace {

// A claim this session may take: none, its own, or one whose session has
// ended (parameters $pid and $start: this session's process and start;
// $pids and $starts: this daemon's earlier sessions').
// - pg_stat_activity shows a role the start of its own sessions only
//   (unless it may read all statistics): a live process whose start it
//   cannot see may be the claimer, so its claims are held until that
//   process is gone.
// - A transaction reads the server's sessions once, at its first look, and
//   keeps them: a session that started since this transaction did may be
//   missing from them, and has not ended. (A server clock stepped back
//   holds a dead session's claims until it has caught up.)
// - A session that ended with the server (a claim older than the server's
//   start: PostgreSQL restarted) says nothing of its daemon, which is most
//   likely reconnecting and still attempting: for kRestartGrace after the
//   server's start only that daemon claims it again (as one of its earlier
//   sessions'), not taken over; another daemon takes it after that.
std::string Claimable(int pid, int start, int pids, int starts) {
  const auto n = [](int k) { return "$" + std::to_string(k); };
  return "(d.claim_pid IS NULL OR (d.claim_pid = " + n(pid) + " AND d.claim_start = " + n(start) +
         ") OR (d.claim_start < (extract(epoch FROM transaction_timestamp()) * 1000000)::bigint "
         "AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = d.claim_pid AND "
         "(a.backend_start IS NULL OR "
         "(extract(epoch FROM a.backend_start) * 1000000)::bigint = d.claim_start)) AND "
         "(d.claim_start >= (extract(epoch FROM pg_postmaster_start_time()) * 1000000)::bigint "
         "OR transaction_timestamp() >= pg_postmaster_start_time() + interval '" +
         std::to_string(std::chrono::duration_cast<std::chrono::seconds>(kRestartGrace).count()) +
         " seconds' OR (d.claim_pid, d.claim_start) IN (SELECT * FROM unnest(" + n(pids) +
         "::bigint[], " + n(starts) + "::bigint[])))))";
}
// The claim's update, of the rows `c` picked (with `own`: an event this
// daemon is attempting, claimed again, not returned).
std::string Claimed(const char* own) {
  return std::string(
             "UPDATE deliveries d SET claim_pid = $4, claim_start = $5 FROM c, touchpoints t, "
             "purchases p WHERE d.id = c.id AND t.id = d.touchpoint AND p.id = t.purchase "
             "RETURNING d.id, d.touchpoint, p.order_id, t.cadence, t.step, d.event, d.attempts, "
             "d.next_attempt_at, c.prev_pid IS NOT NULL AND (c.prev_pid <> $4 OR c.prev_start <> "
             "$5) AND NOT EXISTS (SELECT 1 FROM unnest($6::bigint[], $7::bigint[]) AS e(pid, "
             "start) WHERE e.pid = c.prev_pid AND e.start = c.prev_start), ") +
         own;
}
std::string ClaimDue(const std::string& claimable, const char* order) {
  return std::string(
             "WITH c AS (SELECT d.id, d.claim_pid AS prev_pid, d.claim_start AS prev_start "
             "FROM deliveries d WHERE d.sink = $1 AND d.state = 0 AND d.next_attempt_at <= $2 "
             "AND ") +
         claimable + " ORDER BY " + order + " LIMIT $3 FOR UPDATE OF d SKIP LOCKED) " +
         Claimed("false");
}
// Not in order: up to $3 events this daemon is not attempting ($8), and
// those it is whose claim is still its own, made by an earlier session
// (its connection was replaced meanwhile), claimed again by this one, so
// that no other daemon takes them over while they are in flight here.
// The events attempted are not in the LIMIT (before, $3 counted them,
// and when older events became claimable, after a failover, they fell
// out of it and as many others were claimed and not attempted, held from
// the other daemons for as long as this one pumped no more: a circuit
// open). One whose claim is no longer this daemon's (another daemon took
// it over, and recorded a retry) is left alone: claimed back, it would
// wait unattempted behind the attempt under way, and that attempt's late
// result would be recorded over the other daemon's.
const pg::Statement kClaimDue(
    "WITH own AS (SELECT d.id, d.claim_pid AS prev_pid, d.claim_start AS prev_start "
    "FROM deliveries d WHERE d.id = ANY($8::bigint[]) AND d.sink = $1 AND d.state = 0 AND "
    "(d.claim_pid, d.claim_start) IN (SELECT * FROM unnest($6::bigint[], $7::bigint[])) "
    "FOR UPDATE OF d SKIP LOCKED), "
    "fresh AS (SELECT d.id, d.claim_pid AS prev_pid, d.claim_start AS prev_start "
    "FROM deliveries d WHERE d.sink = $1 AND d.state = 0 AND d.next_attempt_at <= $2 AND "
    "NOT d.id = ANY($8::bigint[]) AND " +
    Claimable(4, 5, 6, 7) +
    " ORDER BY d.next_attempt_at, d.id LIMIT $3 FOR UPDATE OF d SKIP LOCKED), "
    "c AS (SELECT *, true AS own FROM own UNION ALL SELECT *, false FROM fresh) " +
    Claimed("c.own"));
// In order, under the sink's lock: any claim. A live daemon claims a
// stream's events only while it holds the lock, and gives its claims up
// before it lets the lock go; so while this session holds it, every other
// claim is a dead session's (and holding one back because its process id
// now names a process this role cannot see the start of, or no longer
// the claimer's, would send the events after it first).
const pg::Statement kClaimDueInOrder(ClaimDue("true", "d.id"));
// The one deliverer of an ordered sink: a session-level lock, kept.
const pg::Statement kOrderedSinkLock(
    "SELECT pg_try_advisory_lock(hashtextextended('sink:' || $1, 7305861230003))");
// The same lock for a transaction only: held while a daemon whose session
// lost the sink's lock gives up its claims (LetGoOfSink).
const pg::Statement kOrderedSinkXactLock(
    "SELECT pg_try_advisory_xact_lock(hashtextextended('sink:' || $1, 7305861230003))");
const pg::Statement kOrderedSinkUnlock(
    "SELECT pg_advisory_unlock(hashtextextended('sink:' || $1, 7305861230003))");
// The sink's next attempt after $2, and whether a due one is held by
// another session: each from the due index, stopping at the first row
// (an aggregate over the sink's whole backlog read all of it, after every
// pump: 230 ms at 2 million waiting).
const pg::Statement kNextAfter(
    "SELECT (SELECT d.next_attempt_at FROM deliveries d WHERE d.sink = $1 AND d.state = 0 AND "
    "d.next_attempt_at > $2 ORDER BY d.next_attempt_at LIMIT 1), "
    "EXISTS (SELECT 1 FROM deliveries d WHERE d.sink = $1 AND d.state = 0 AND "
    "d.next_attempt_at <= $2 AND NOT (d.claim_pid IS NOT DISTINCT FROM $3 AND "
    "d.claim_start IS NOT DISTINCT FROM $4))");
// A result is recorded only while the delivery's claim is still this
// daemon's, made by its session ($pid, $start) or by one it had before
// ($pids, $starts: a result that came back after the connection was
// replaced). Not once another daemon took it over, nor once it was
// recorded (a retry after a COMMIT whose outcome was not heard), replayed,
// or retried and recorded by the daemon that took it over: each leaves
// another claim or none.
std::string Mine(int pid, int start, int pids, int starts) {
  const auto n = [](int k) { return "$" + std::to_string(k); };
  return "((d.claim_pid = " + n(pid) + " AND d.claim_start = " + n(start) +
         ") OR (d.claim_pid, d.claim_start) IN (SELECT * FROM unnest(" + n(pids) + "::bigint[], " +
         n(starts) + "::bigint[])))";
}
// Its claims on a sink's waiting events, given up: the next deliverer
// starts from the first of them, not past them.
const pg::Statement kUnclaim(
    "UPDATE deliveries d SET claim_pid = NULL, claim_start = NULL WHERE d.id = ANY($1::bigint[]) "
    "AND d.state = 0 AND " +
    Mine(2, 3, 4, 5));
const pg::Statement kDelivered("DELETE FROM deliveries d WHERE d.id = $1 AND d.state = 0 AND " +
                               Mine(2, 3, 4, 5) + " RETURNING d.touchpoint");
const pg::Statement kFailed(
    "UPDATE deliveries d SET state = $4::smallint, attempts = $5, next_attempt_at = CASE "
    "$4::smallint WHEN 0 THEN $6::bigint ELSE d.next_attempt_at END, last_error = $7, "
    "dead_at = CASE $4::smallint WHEN 1 THEN $6::bigint END, "
    "claim_pid = NULL, claim_start = NULL WHERE d.id = $1 AND d.state = 0 AND " +
    Mine(2, 3, 8, 9) + " RETURNING d.touchpoint");
// After kLockTouchpoints: the touchpoints of a record's dead letters,
// locked in one order, so that two daemons' records (or a record and a
// replay) with letters of the same touchpoints cannot deadlock.
const pg::Statement kTouchpointsDead(
    "UPDATE touchpoints t SET state = 5, reason = u.reason FROM unnest($1::bigint[], "
    "$2::text[]) AS u(id, reason) WHERE t.id = u.id AND t.state IN (1, 5)");
const pg::Statement kDeadLetters(
    "SELECT d.id, d.sink, p.order_id, t.cadence, t.step, d.event, d.attempts, d.last_error, "
    "d.dead_at FROM deliveries d JOIN touchpoints t ON t.id = d.touchpoint "
    "JOIN purchases p ON p.id = t.purchase "
    "WHERE d.state = 1 AND d.id > $1 AND ($2 = '' OR d.sink = $2) ORDER BY d.id LIMIT $3");
// The dead letters read (`picked`), and of them those put back: the
// update's `state = 1` is read again on a row another daemon changed
// meanwhile, which is left alone. One row at least: the last id read
// (NULL: none), beside each put back. A limit of NULL is none.
const pg::Statement kReplay(
    "WITH picked AS MATERIALIZED (SELECT id FROM deliveries WHERE state = 1 AND "
    "($2::bigint = 0 OR id = $2::bigint) AND ($3 = '' OR sink = $3) AND id > $4 AND "
    "dead_at <= $6 ORDER BY id LIMIT $5), "
    "back AS (UPDATE deliveries SET state = 0, attempts = 0, next_attempt_at = $1, "
    "dead_at = NULL, claim_pid = NULL, claim_start = NULL WHERE id IN (SELECT id FROM picked) "
    "AND state = 1 RETURNING touchpoint, sink) "
    "SELECT m.last, b.touchpoint, b.sink FROM (SELECT max(id) AS last FROM picked) m "
    "LEFT JOIN back b ON true");
// The touchpoints of replayed letters, locked before kRevive reads their
// other deliveries: another daemon's replay of a sibling letter, or a
// sibling's death (kFailed, then kTouchpointDead), holds the row until it
// commits, and kRevive, a statement of its own, then reads what it
// committed. Without it, two replays of one touchpoint's letters on two
// daemons each saw the other's still dead and left it dead; and a revive
// that waited for a death's lock re-read only the touchpoint's row, not
// its deliveries, and revived it beside a dead one.
const pg::Statement kLockTouchpoints(
    "SELECT id FROM touchpoints WHERE id = ANY($1::bigint[]) ORDER BY id FOR NO KEY UPDATE");
// A touchpoint is fired again once none of its deliveries is dead.
const pg::Statement kRevive(
    "UPDATE touchpoints t SET state = 1, reason = NULL WHERE t.id = ANY($1::bigint[]) AND "
    "t.state = 5 AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.touchpoint = t.id AND "
    "d.state = 1)");
const pg::Statement kWaiting("SELECT 1 FROM deliveries WHERE id = $1 AND state = 0");
// Each sink found from the last by the due index (a read per sink), and
// its events counted up to $1.
const pg::Statement kBySink(
    "WITH RECURSIVE sinks(name) AS (SELECT (SELECT min(sink) FROM deliveries WHERE state = 0) "
    "UNION ALL SELECT (SELECT min(sink) FROM deliveries WHERE state = 0 AND sink > name) "
    "FROM sinks WHERE name IS NOT NULL) "
    "SELECT name, (SELECT COUNT(*) FROM (SELECT 1 FROM deliveries WHERE state = 0 AND "
    "sink = name LIMIT $1) AS c) FROM sinks WHERE name IS NOT NULL ORDER BY name");
const pg::Statement kDepth("SELECT COUNT(*) FROM deliveries WHERE sink = $1 AND state = 0");
const pg::Statement kDeadCount("SELECT COUNT(*) FROM deliveries WHERE sink = $1 AND state = 1");

// This daemon's earlier sessions: the $pids and $starts of Mine() and of
// the claims.
struct Earlier {
  explicit Earlier(const std::vector<Session::Identity>& sessions) {
    for (const Session::Identity& e : sessions) {
      pids.push_back(e.pid);
      starts.push_back(e.start);
    }
  }
  pg::Params& AddTo(pg::Params& p) const { return p.AddArray(pids).AddArray(starts); }
  std::vector<std::int64_t> pids, starts;
};

}  // namespace

const pg::Statement& ClaimDueStatement(bool in_order) {
  return in_order ? kClaimDueInOrder : kClaimDue;
}

StatusOr<std::vector<OutboxItem>> Outbox::DueDeliveries(std::string_view sink, Instant now,
                                                        std::size_t max, bool in_order,
                                                        std::span<const std::int64_t> attempting) {
  std::vector<OutboxItem> out;
  std::vector<Instant> due_at;
  std::int64_t taken_over = 0;
  Status s = session_.Atomically("read the outbox", [&] {
    out.clear();
    due_at.clear();
    taken_over = 0;
    pg::Connection& c = session_.conn();
    const Session::Identity& me = session_.identity();
    if (in_order) {
      if (!(holder_ == me)) {  // a new session: the last one's locks went with it
        for (auto& [name, held] : ordered_) held.locked = false;
        holder_ = me;
      }
      const auto held = ordered_.find(sink);
      if (held == ordered_.end() || !held->second.locked) {
        if (!c.Run(kOrderedSinkLock, pg::Params().Add(sink)).Bool(0, 0)) {
          elsewhere_.emplace(sink);
          return;  // another daemon delivers this sink
        }
        // Held from here, even should this transaction roll back: a
        // session-level lock does not follow transactions.
        ordered_[std::string(sink)].locked = true;
        if (const auto e = elsewhere_.find(sink); e != elsewhere_.end()) elsewhere_.erase(e);
      }
    }
    // What this daemon's earlier sessions claimed (its own attempts, still
    // in flight when its connection was replaced) is not taken over.
    pg::Params claim;
    claim.Add(sink).Add(Ms(now)).Add(static_cast<std::int64_t>(max)).Add(me.pid).Add(me.start);
    Earlier(session_.earlier()).AddTo(claim);
    if (!in_order) claim.AddArray(std::vector<std::int64_t>(attempting.begin(), attempting.end()));
    pg::Result r = c.Run(in_order ? kClaimDueInOrder : kClaimDue, claim);
    for (int i = 0; i < r.rows(); ++i) {
      if (r.Bool(i, 9)) continue;  // attempted now, claimed again
      out.push_back({r.Int64(i, 0), r.Int64(i, 1),
                     TouchpointId(r.Text(i, 2), r.Text(i, 3), r.Text(i, 4)),
                     std::string(r.Text(i, 5)), static_cast<int>(r.Int64(i, 6))});
      due_at.push_back(FromMs(r.Int64(i, 7)));
      if (r.Bool(i, 8)) ++taken_over;
    }
  });
  if (!s.ok()) return s;
  if (in_order) {
    if (auto held = ordered_.find(sink); held != ordered_.end()) {
      for (const OutboxItem& item : out) held->second.claimed.insert(item.id);
    }
  }
  if (taken_over > 0) {
    taken_over_ += taken_over;
    spdlog::warn(
        "sink {}: took over {} deliveries from a session that ended while attempting "
        "them; each may reach the sink twice",
        sink, taken_over);
  }
  // RETURNING has no defined order: by next attempt, or in fire order.
  std::vector<std::size_t> order(out.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    if (!in_order && due_at[a] != due_at[b]) return due_at[a] < due_at[b];
    return out[a].id < out[b].id;
  });
  std::vector<OutboxItem> sorted;
  sorted.reserve(out.size());
  for (std::size_t i : order) sorted.push_back(std::move(out[i]));
  return sorted;
}

StatusOr<std::optional<Instant>> Outbox::NextDeliveryAfter(std::string_view sink, Instant now) {
  return session_.Read("read the outbox", [&]() -> StatusOr<std::optional<Instant>> {
    const Session::Identity& me = session_.identity();
    pg::Result r = session_.conn().Run(
        kNextAfter, pg::Params().Add(sink).Add(Ms(now)).Add(me.pid).Add(me.start));
    std::optional<Instant> at;
    if (!r.IsNull(0, 0)) at = FromMs(r.Int64(0, 0));
    // Due deliveries another session holds: look again soon, in case it ends.
    if (r.Bool(0, 1) && (!at || *at > now + kTakeoverPoll)) at = now + kTakeoverPoll;
    return at;
  });
}

Status Outbox::LetGoOfSink(std::string_view sink) {
  const auto entry = ordered_.find(sink);
  if (entry == ordered_.end()) return Status::Ok();
  // (Its claims by id: a sink's backlog may be long.)
  const std::vector<std::int64_t> claimed(entry->second.claimed.begin(),
                                          entry->second.claimed.end());
  bool locked = false;
  // The claims given up (committed) before the lock: the next deliverer
  // must find them free when it has the lock, and not count them as taken
  // over.
  Status s = session_.Atomically("let go of sink", [&] {
    pg::Connection& c = session_.conn();
    const Session::Identity& me = session_.identity();
    // (Else its session, and the lock, are gone already.)
    locked = entry->second.locked && holder_ == me;
    if (claimed.empty()) return;
    // Another daemon may hold the sink now and be claiming: the claims
    // this one gave up would be locked by this update as its claim passed
    // over them (SKIP LOCKED), and it would send later events first. So
    // they are given up only while no other daemon holds the sink; else
    // it takes them over, in order.
    if (!locked && !c.Run(kOrderedSinkXactLock, pg::Params().Add(sink)).Bool(0, 0)) return;
    pg::Params unclaim;
    unclaim.AddArray(claimed).Add(me.pid).Add(me.start);
    c.Run(kUnclaim, Earlier(session_.earlier()).AddTo(unclaim));
  });
  if (s.ok() && locked) {
    s = session_.Read("let go of sink", [&] {
      session_.conn().Run(kOrderedSinkUnlock, pg::Params().Add(sink));
      return Status::Ok();
    });
  }
  // Given up and released. (Else kept, to be let go again: claims not given
  // up would count as taken over, and a lock still held keeps the sink.)
  if (s.ok()) ordered_.erase(entry);
  return s;
}

Status Outbox::RecordDeliveries(std::span<const DeliveryResult> results) {
  Status s = session_.Atomically("record deliveries", [&] {
    pg::Connection& c = session_.conn();
    const Session::Identity& me = session_.identity();
    std::vector<std::int64_t> ids, at;
    std::vector<std::string> reasons;
    const Earlier earlier(session_.earlier());
    std::map<std::int64_t, std::string> dead_letters;  // touchpoint -> its last one's reason
    for (const DeliveryResult& d : results) {
      pg::Params p;
      p.Add(d.id).Add(me.pid).Add(me.start);
      pg::Result r;
      if (d.kind == DeliveryResult::Kind::kDelivered) {
        r = c.Run(kDelivered, earlier.AddTo(p));
      } else {
        const bool dead = d.kind == DeliveryResult::Kind::kDead;
        p.Add(dead ? 1 : 0).Add(d.attempts).Add(Ms(dead ? d.at : d.next_attempt_at)).Add(d.error);
        r = c.Run(kFailed, earlier.AddTo(p));
        if (dead && r.rows() > 0) dead_letters[d.touchpoint] = d.history;
      }
      if (r.rows() == 0) continue;  // replayed, gone or taken over meanwhile
      ids.push_back(d.touchpoint);
      at.push_back(Ms(d.at));
      reasons.push_back(d.history);
    }
    if (!dead_letters.empty()) {
      std::vector<std::int64_t> touchpoints;
      std::vector<std::string> why;
      for (const auto& [touchpoint, reason] : dead_letters) {
        touchpoints.push_back(touchpoint);
        why.push_back(reason);
      }
      c.Run(kLockTouchpoints, pg::Params().AddArray(touchpoints));
      c.Run(kTouchpointsDead, pg::Params().AddArray(touchpoints).AddArray(why));
    }
    AddHistoryAsIs(c, ids, at, reasons);
  });
  // Recorded, or not this daemon's any more: no claim of its to give up.
  if (s.ok()) {
    for (auto& entry : ordered_) {
      for (const DeliveryResult& d : results) entry.second.claimed.erase(d.id);
    }
  }
  return s;
}

StatusOr<std::vector<DeadLetter>> Outbox::DeadLetters(std::string_view sink, std::int64_t after,
                                                      int limit) {
  return session_.Read("list dead letters", [&]() -> StatusOr<std::vector<DeadLetter>> {
    pg::Result r = session_.conn().Run(kDeadLetters, pg::Params().Add(after).Add(sink).Add(limit));
    std::vector<DeadLetter> out;
    for (int i = 0; i < r.rows(); ++i) {
      out.push_back({r.Int64(i, 0), std::string(r.Text(i, 1)),
                     TouchpointId(r.Text(i, 2), r.Text(i, 3), r.Text(i, 4)),
                     std::string(r.Text(i, 5)), static_cast<int>(r.Int64(i, 6)),
                     r.IsNull(i, 7) ? std::string() : std::string(r.Text(i, 7)),
                     FromMs(r.Int64(i, 8))});
    }
    return out;
  });
}

StatusOr<OutboxStore::ReplayedStep> Outbox::ReplayDeadLetters(std::int64_t id,
                                                              std::string_view sink,
                                                              std::int64_t after, Instant dead_by,
                                                              int limit, Instant now) {
  OutboxStore::ReplayedStep step;
  Status s = session_.Atomically("replay dead letters", [&] {
    step = {};
    pg::Connection& c = session_.conn();
    pg::Params params;
    params.Add(Ms(now)).Add(id).Add(sink).Add(after);
    if (limit < 0) {
      params.AddNull();
    } else {
      params.Add(limit);
    }
    params.Add(dead_by == Instant::max() ? std::numeric_limits<std::int64_t>::max() : Ms(dead_by));
    pg::Result r = c.Run(kReplay, params);
    std::vector<std::int64_t> touchpoints, at;
    std::vector<std::string> reasons;
    for (int i = 0; i < r.rows(); ++i) {
      if (!r.IsNull(i, 0)) step.last_id = r.Int64(i, 0);
      if (r.IsNull(i, 1)) continue;  // none put back
      touchpoints.push_back(r.Int64(i, 1));
      at.push_back(Ms(now));
      reasons.push_back("dead letter replayed on " + std::string(r.Text(i, 2)));
    }
    if (!touchpoints.empty()) {
      c.Run(kLockTouchpoints, pg::Params().AddArray(touchpoints));
      c.Run(kRevive, pg::Params().AddArray(touchpoints));
    }
    AddHistoryAsIs(c, touchpoints, at, reasons);
    step.replayed = static_cast<int>(touchpoints.size());
    if (id != 0 && touchpoints.empty()) {
      step.waiting = c.Run(kWaiting, pg::Params().Add(id)).rows() > 0;
    }
  });
  if (!s.ok()) return s;
  return step;
}

StatusOr<std::vector<std::pair<std::string, std::int64_t>>> Outbox::OutboxBySink(
    std::int64_t limit) {
  return session_.Read("outbox sinks",
                       [&]() -> StatusOr<std::vector<std::pair<std::string, std::int64_t>>> {
                         pg::Result r = session_.conn().Run(kBySink, pg::Params().Add(limit));
                         std::vector<std::pair<std::string, std::int64_t>> out;
                         for (int i = 0; i < r.rows(); ++i) {
                           out.emplace_back(std::string(r.Text(i, 0)), r.Int64(i, 1));
                         }
                         return out;
                       });
}

StatusOr<std::int64_t> Outbox::OutboxDepth(std::string_view sink) {
  return session_.Read("outbox depth", [&]() -> StatusOr<std::int64_t> {
    return session_.conn().Run(kDepth, pg::Params().Add(sink)).Int64(0, 0);
  });
}

StatusOr<std::int64_t> Outbox::DeadLetterCount(std::string_view sink) {
  return session_.Read("dead letter count", [&]() -> StatusOr<std::int64_t> {
    return session_.conn().Run(kDeadCount, pg::Params().Add(sink)).Int64(0, 0);
  });
}

}  // namespace tp::pgstore
