// The planning row (the rules the pending touchpoints were planned by, and
// the re-plan sweep's place): how a daemon reads and records it, and says
// that it plans by other rules. The sweep's steps: replan.cc.
#include <cstdint>
#include <string>

#include "store/pg/replan.h"
#include "store/pg/rows.h"

namespace tp::pgstore {

const pg::Statement kTryReplanLock("SELECT pg_try_advisory_xact_lock(7305861230004)");
// The sweep's place, in the pending index's order (a place saved before
// schema 9 has no buyer: the sweep goes through that instant's rows again).
const pg::Statement kPlanning(
    "SELECT fingerprint, replanning, next_at, due_at, cadence_order, step_order, touchpoint, run, "
    "COALESCE(buyer, '-9223372036854775808'::bigint), "
    "(extract(epoch FROM clock_timestamp()) * 1000)::bigint - other_rules_at "
    "FROM planning WHERE id = 1");

namespace {

const pg::Statement kReplanLock("SELECT pg_advisory_xact_lock(7305861230004)");
// How long a record of a re-plan waits for the step under way (on another
// daemon, or this daemon's re-plan thread): a step takes about 20 ms, but
// far longer on a busy server. On the loop (a reload, a start) the loop
// may not be held past ~100 ms: past 50 ms the re-plan's first step
// records it (Reloader, Replanner), on its thread, waiting longer.
const pg::Statement kRecordLockWait("SET LOCAL lock_timeout = '500ms'");
const pg::Statement kLoopRecordLockWait("SET LOCAL lock_timeout = '50ms'");
// Each record starts a new run of the sweep (see Replan::run_).
const pg::Statement kSavePlanning(
    "INSERT INTO planning (id, fingerprint, replanning, next_at, due_at, buyer, cadence_order, "
    "step_order, touchpoint) VALUES (1, $1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO "
    "UPDATE SET fingerprint = $1, replanning = $2, next_at = $3, due_at = $4, buyer = $5, "
    "cadence_order = $6, step_order = $7, touchpoint = $8, run = planning.run + 1, "
    "other_rules_at = NULL");
// A daemon planning by rules other than those recorded ($1: its own) says
// so, in the server's time (each daemon's clock may differ); passed over
// while a step holds the row (the next second's does it).
const pg::Statement kNoteOtherRules(
    "UPDATE planning SET other_rules_at = (extract(epoch FROM clock_timestamp()) * 1000)::bigint "
    "WHERE id = (SELECT id FROM planning WHERE id = 1 AND fingerprint <> $1 "
    "FOR NO KEY UPDATE SKIP LOCKED)");
// The sweep to the recorded rules ($1) from the first pending touchpoint
// ($2, the lowest place), as kSavePlanning's record of a re-plan, once no
// daemon on other rules has said so for $3 ms; passed over while a note
// holds the row (a daemon on other rules is there).
const pg::Statement kReplanOnceOthersGone(
    "UPDATE planning SET replanning = true, next_at = $2, due_at = $2, buyer = $2, "
    "cadence_order = $2, step_order = $2, touchpoint = $2, run = run + 1, other_rules_at = NULL "
    "WHERE id = (SELECT id FROM planning WHERE id = 1 AND fingerprint = $1 AND other_rules_at < "
    "(extract(epoch FROM clock_timestamp()) * 1000)::bigint - $3 FOR NO KEY UPDATE SKIP LOCKED) "
    "RETURNING 1");
}  // namespace

StatusOr<PlanningState> Replan::Planning() {
  return session_.Read("read the planning state", [&]() -> StatusOr<PlanningState> {
    PlanningState state;
    pg::Result r = session_.conn().Run(kPlanning);
    if (r.rows() == 0) return state;
    state.fingerprint = std::string(r.Text(0, 0));
    state.replanning = r.Bool(0, 1);
    if (!r.IsNull(0, 9)) state.other_rules_seen = Millis(r.Int64(0, 9));
    return state;
  });
}

Status Replan::NotePlanningByOtherRules(std::string_view fingerprint) {
  return session_.Atomically("say this daemon plans by other rules", [&] {
    session_.conn().Run(kNoteOtherRules, pg::Params().Add(fingerprint));
  });
}

StatusOr<bool> Replan::ReplanOnceOtherRulesGone(std::string_view fingerprint, Millis gone) {
  bool restarted = false;
  Status s = session_.Atomically("start the re-plan again", [&] {
    // As SetPlanning(), after any step under way; but a step under way
    // means the next look, not a wait (this runs on the daemon's loop).
    const bool turn = session_.conn().Run(kTryReplanLock).Bool(0, 0);
    restarted = turn && session_.conn()
                                .Run(kReplanOnceOthersGone, pg::Params()
                                                                .Add(fingerprint)
                                                                .Add(std::int64_t{INT64_MIN})
                                                                .Add(std::int64_t{gone.count()}))
                                .rows() == 1;
  });
  if (!s.ok()) return s;
  if (restarted) replanned_.clear();
  return restarted;
}

Status Replan::SetPlanning(std::string_view fingerprint, bool replan) {
  return session_.Atomically("record the planning state", [&] {
    // After the step under way on any daemon, which would otherwise write
    // its position over this one when it commits: a restart of the sweep
    // would be lost.
    session_.conn().Run(on_loop_ ? kLoopRecordLockWait : kRecordLockWait);
    session_.conn().Run(kReplanLock);
    // The session's own for the rest (a caller's group may go on).
    session_.conn().Exec("SET LOCAL lock_timeout TO DEFAULT");
    pg::Params p;
    p.Add(fingerprint).Add(replan);
    for (int i = 0; i < 6; ++i) {
      if (replan) {
        p.Add(std::int64_t{INT64_MIN});
      } else {
        p.AddNull();
      }
    }
    session_.conn().Run(kSavePlanning, p);
    replanned_.clear();
  });
}

}  // namespace tp::pgstore
