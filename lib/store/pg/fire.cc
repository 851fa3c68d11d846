// The fire side of the PostgreSQL schedule: claims of due touchpoints, the
// caps' reads, and a batch's outcomes with their fan-out to queues and
// outboxes, committed with the claim.
#include <algorithm>
#include <limits>
#include <map>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>

#include "store/pg/rows.h"
#include "store/pg/tables.h"

namespace tp::pgstore {

using sql::FromMs;
using sql::Ms;
using sql::StateCode;

namespace {

// ORDER BY ... LIMIT 1, not min(): with statistics that make the table look
// small (before autovacuum's first ANALYZE, or after a burst of ingest) the
// planner read min() from the whole pending index, 40 ms at 200,000
// pending, on every wakeup; this stops at the first row.
const pg::Statement kNextWakeup(
    "SELECT next_at FROM touchpoints WHERE state = 0 ORDER BY next_at LIMIT 1");
// A claim locks the due rows until it commits, passing over rows another
// daemon holds, so daemons share the due rows. In the pending index's
// order: one daemon's firing order, with the rows due at one instant by
// buyer, so that of those a claim splits only the buyer at its end
// between daemons (a buyer's rows behind another claim's wait: OutOfTurn).
//
// With frequency caps, it locks their buyers too, in the same statement,
// passing over rows whose buyer another daemon holds: a buyer's due rows
// are decided by one daemon at a time, so its caps hold. (Two claims can
// still reach a buyer's two rows at once, the later with the buyer: the
// order is kept by OutOfTurn, as without caps.)
const pg::Statement kTakeDueAndBuyers(
    "SELECT t.id, b.buyer_id, t.cadence, t.step, p.zone, t.due_at, t.next_at, p.received_at, "
    "t.cadence_order, t.step_order, t.buyer "
    "FROM touchpoints t JOIN purchases p ON p.id = t.purchase JOIN buyers b ON b.id = t.buyer "
    "WHERE t.state = 0 AND t.next_at <= $1 "
    "ORDER BY t.next_at, t.due_at, t.buyer, t.cadence_order, t.step_order, t.id LIMIT $2 "
    "FOR NO KEY UPDATE OF t, b SKIP LOCKED");
// Without caps, nothing decided for one touchpoint depends on the buyer's
// others: the buyers are left unlocked (locking writes each row, a fifth
// of a firing pass's work), and the rows are locked by a statement that
// reads no other table, so a row another daemon holds costs only its
// lock's check. (Joining the purchases and buyers there made each row
// passed over cost the join too: with three daemons, the claims read two
// and a half times the buffers of one daemon's; docs/benchmarks.md.)
// Their purchases and buyers are read after, each once.
//
// Through a backlog (more due than a claim takes), such a claim does not
// start at the head of the due rows either, where the other daemons'
// passes hold theirs: it starts past the claim frontier, the last row a
// full claim took (a sequence every daemon sets to that row's id after
// such claims; the claim reads the row's place in the pending order,
// $3 to $8), and reads the rows up to it only when those past it are too
// few; and a daemon reads from the head at least once a second
// (kHeadEvery), so a row left behind (by a pass that failed, a daemon that
// died, a row re-planned to an earlier time) waits at most that. The
// frontier is a row's whole place, not its next_at: rows often share a
// next_at (a burst of purchases, a send window opening), and a claim from
// a next_at passed over every row of it the last claim had taken. The
// frontier is a hint: the two statements together cover every due row,
// whatever it says.
std::string TakeDueRange(const char* range) {
  return std::string(
             "SELECT id, cadence, step, due_at, next_at, purchase, buyer, cadence_order, "
             "step_order FROM touchpoints "
             "WHERE state = 0 AND next_at <= $1 AND (next_at, due_at, buyer, cadence_order, "
             "step_order, id) ") +
         range +
         " ($3, $4, $5, $6::integer, $7::integer, $8) "
         "ORDER BY next_at, due_at, buyer, cadence_order, step_order, id LIMIT $2 "
         "FOR NO KEY UPDATE SKIP LOCKED";
}
const pg::Statement kTakeDueFrom(TakeDueRange(">"));
const pg::Statement kTakeDueBefore(TakeDueRange("<="));
const pg::Statement kFrontier(
    "SELECT next_at, due_at, buyer, cadence_order, step_order, id FROM touchpoints "
    "WHERE id = (SELECT last_value FROM touchpoints_claimed_to)");
const pg::Statement kAdvanceFrontier("SELECT setval('touchpoints_claimed_to', $1)");
constexpr Millis kHeadEvery{1000};
const pg::Statement kDuePurchases(
    "SELECT id, zone, received_at FROM purchases WHERE id = ANY($1::bigint[])");

// Dead-lettered touchpoints were fired too: they count against the caps.
const pg::Statement kFiredBetween(
    "SELECT fire_at, sinks FROM touchpoints WHERE buyer = (SELECT buyer FROM touchpoints WHERE "
    "id = $1) AND state IN (1, 5) AND fire_at >= $2 AND fire_at < $3");
// A pass's outcomes, for the rows still pending. `state + 0`, not `state`:
// the pending index (WHERE state = 0) is then no way to find them. With
// statistics that counted few rows pending, the planner read that whole
// index for each batch instead of finding its rows by id (141 ms against
// 55; docs/benchmarks.md).
const pg::Statement kFire(
    "UPDATE touchpoints SET state = 1, fire_at = $1, sinks = $3 WHERE id = ANY($2::bigint[]) "
    "AND state + 0 = 0 RETURNING id");
const pg::Statement kDefer(
    "UPDATE touchpoints t SET next_at = u.next_at FROM unnest($1::bigint[], $2::bigint[]) AS "
    "u(id, next_at) WHERE t.id = u.id AND t.state + 0 = 0 RETURNING t.id");
const pg::Statement kSkip(
    "UPDATE touchpoints t SET state = 4, reason = u.reason FROM unnest($1::bigint[], $2::text[]) "
    "AS u(id, reason) WHERE t.id = u.id AND t.state + 0 = 0 RETURNING t.id");
const pg::Statement kEnqueue(
    "INSERT INTO queue_messages (queue, touchpoint, visible_at, enqueued_at) "
    "SELECT q, t, at, at FROM unnest($1::text[], $2::bigint[], $3::bigint[]) AS u(q, t, at)");
const pg::Statement kOutboxInsert(
    "INSERT INTO deliveries (sink, touchpoint, event, next_attempt_at, created_at) "
    "SELECT s, t, e, at, at FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bigint[]) AS "
    "u(s, t, e, at)");

}  // namespace

const FireRouting& Tables::Routing() {
  if (routed_ != rules_.generation()) {
    routing_.Set(*rules_);
    routed_ = rules_.generation();
  }
  return routing_;
}

StatusOr<std::optional<Instant>> Tables::NextWakeup() {
  return session_.Read("next wakeup", [&]() -> StatusOr<std::optional<Instant>> {
    pg::Result r = session_.conn().Run(kNextWakeup);
    if (r.rows() == 0 || r.IsNull(0, 0)) return std::optional<Instant>();
    return std::optional<Instant>(FromMs(r.Int64(0, 0)));
  });
}

StatusOr<std::vector<DueTouchpoint>> Tables::TakeDue(Instant now, std::size_t max) {
  return session_.Read("take due touchpoints", [&]() -> StatusOr<std::vector<DueTouchpoint>> {
    due_.clear();
    session_.BeginClaim();
    pg::Connection& c = session_.conn();
    if (!rules_->frequency_caps.empty()) {
      ClaimWithBuyers(c, now, max);
    } else {
      ClaimFromFrontier(c, now, max);
      // A full claim whose rows all wait (for their buyers' rows another
      // daemon's claim holds, or fired later): once more, from the
      // frontier it moved, rather than ending the pass as if nothing were
      // due. (Not from where it was: that would take the same rows.)
      if (due_.empty() && claimed_all_ && frontier_moved_) ClaimFromFrontier(c, now, max);
    }
    // Nothing due: no transaction left open until the next pass.
    if (due_.empty()) session_.EndClaim(true);
    std::vector<DueTouchpoint> out;
    out.reserve(due_.size());
    for (const DueRow& d : due_) out.push_back({static_cast<std::uint64_t>(d.rowid), d.View()});
    return out;
  });
}

void Tables::AddDue(ClaimedRow&& row, std::string_view buyer_id, const Zone* zone,
                    std::int64_t received_at) {
  DueRow& d = due_.emplace_back();
  d.rowid = row.id;
  d.buyer_id = buyer_id;
  d.cadence = std::move(row.cadence);
  d.step = std::move(row.step);
  d.zone = zone;
  d.due_at = FromMs(row.due_at);
  d.next_at = FromMs(row.next_at);
  d.ready_at = FromMs(std::max(row.next_at, received_at));
}

void Tables::ClaimWithBuyers(pg::Connection& c, Instant now, std::size_t max) {
  pg::Result r =
      c.Run(kTakeDueAndBuyers, pg::Params().Add(Ms(now)).Add(static_cast<std::int64_t>(max)));
  std::vector<ClaimedRow> rows;
  rows.reserve(static_cast<std::size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) {
    rows.push_back({.id = r.Int64(i, 0),
                    .due_at = r.Int64(i, 5),
                    .next_at = r.Int64(i, 6),
                    .cadence_order = r.Int64(i, 8),
                    .step_order = r.Int64(i, 9),
                    .buyer = r.Int64(i, 10),
                    .cadence = std::string(r.Text(i, 2)),
                    .step = std::string(r.Text(i, 3))});
  }
  const std::vector<bool> wait = OutOfTurn(c, now, rows);
  due_.reserve(rows.size());
  for (int i = 0; i < r.rows(); ++i) {
    const auto k = static_cast<std::size_t>(i);
    if (wait[k]) continue;
    AddDue(std::move(rows[k]), r.Text(i, 1), zones_.Named(r.Text(i, 4)), r.Int64(i, 7));
  }
}

void Tables::ClaimFromFrontier(pg::Connection& c, Instant now, std::size_t max) {
  std::vector<ClaimedRow> rows = ClaimRange(c, now, max);
  {
    const std::vector<bool> wait = OutOfTurn(c, now, rows);
    std::size_t kept = 0;
    for (std::size_t i = 0; i < rows.size(); ++i) {
      if (wait[i]) continue;
      if (kept != i) rows[kept] = std::move(rows[i]);
      ++kept;
    }
    rows.resize(kept);
  }
  std::vector<std::int64_t> purchase_ids, buyer_ids;
  for (const ClaimedRow& row : rows) {
    purchase_ids.push_back(row.purchase);
    buyer_ids.push_back(row.buyer);
  }
  std::unordered_map<std::int64_t, std::pair<const Zone*, std::int64_t>> purchases;
  if (!rows.empty()) {
    pg::Result pr = c.Run(kDuePurchases, pg::Params().AddArray(Distinct(purchase_ids)));
    for (int i = 0; i < pr.rows(); ++i) {
      purchases[pr.Int64(i, 0)] = {zones_.Named(pr.Text(i, 1)), pr.Int64(i, 2)};
    }
  }
  const auto buyers = BuyerIds(c, std::move(buyer_ids));
  due_.reserve(rows.size());
  for (ClaimedRow& row : rows) {
    const auto purchase = purchases.find(row.purchase);
    const auto buyer = buyers.find(row.buyer);
    if (purchase == purchases.end() || buyer == buyers.end()) {
      throw std::runtime_error("touchpoint row " + std::to_string(row.id) +
                               " has no purchase or buyer");
    }
    AddDue(std::move(row), buyer->second, purchase->second.first, purchase->second.second);
  }
}

std::vector<Tables::ClaimedRow> Tables::ClaimRange(pg::Connection& c, Instant now,
                                                   std::size_t max) {
  // From the frontier only while this daemon's claims come back full (a
  // backlog), and not when a second has passed since it last read from the
  // head: a claim that took all that was due read it all; nor after the
  // clock stepped back (the second would last as long as the step). The
  // head is a place before every row's (ids start at 1).
  constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();
  constexpr std::int64_t kMinInt = std::numeric_limits<std::int32_t>::min();
  std::int64_t place[6] = {kMin, kMin, kMin, kMinInt, kMinInt, kMin};
  bool at_head = true;
  if (claimed_all_ && now < head_due_ && head_due_ - now <= kHeadEvery) {
    pg::Result f = c.Run(kFrontier);
    // No row: the frontier was never set, or its row is gone.
    if (f.rows() == 1) {
      for (int k = 0; k < 6; ++k) place[k] = f.Int64(0, k);
      at_head = false;
    }
  } else {
    head_due_ = now + kHeadEvery;
  }
  const auto range = [&](std::int64_t limit) {
    pg::Params p;
    p.Add(Ms(now)).Add(limit);
    for (const std::int64_t v : place) p.Add(v);
    return p;
  };
  std::vector<ClaimedRow> rows;
  const auto read = [&rows](const pg::Result& r) {
    for (int i = 0; i < r.rows(); ++i) {
      rows.push_back({.id = r.Int64(i, 0),
                      .due_at = r.Int64(i, 3),
                      .next_at = r.Int64(i, 4),
                      .cadence_order = r.Int64(i, 7),
                      .step_order = r.Int64(i, 8),
                      .purchase = r.Int64(i, 5),
                      .buyer = r.Int64(i, 6),
                      .cadence = std::string(r.Text(i, 1)),
                      .step = std::string(r.Text(i, 2))});
    }
  };
  // The rows before the frontier first, then those from it: in order.
  pg::Result after = c.Run(kTakeDueFrom, range(static_cast<std::int64_t>(max)));
  if (static_cast<std::size_t>(after.rows()) < max && !at_head) {
    read(c.Run(kTakeDueBefore, range(static_cast<std::int64_t>(max) - after.rows())));
  }
  read(after);
  claimed_all_ = rows.size() == max;
  frontier_moved_ = claimed_all_ && after.rows() > 0;
  if (frontier_moved_) {
    c.Run(kAdvanceFrontier, pg::Params().Add(after.Int64(after.rows() - 1, 0)));
  }
  return rows;
}

StatusOr<std::vector<FiredTouchpoint>> Tables::FiredBetween(const DueTouchpoint& due, Instant from,
                                                            Instant to, bool sinks) {
  return session_.Read(
      "read the buyer's fired touchpoints", [&]() -> StatusOr<std::vector<FiredTouchpoint>> {
        pg::Result r = session_.conn().Run(
            kFiredBetween,
            pg::Params().Add(static_cast<std::int64_t>(due.handle)).Add(Ms(from)).Add(Ms(to)));
        std::vector<FiredTouchpoint> out;
        out.reserve(static_cast<std::size_t>(r.rows()));
        for (int i = 0; i < r.rows(); ++i) {
          FiredTouchpoint& f = out.emplace_back(FiredTouchpoint{FromMs(r.Int64(i, 0))});
          if (sinks && !r.IsNull(i, 1)) f.sinks = std::string(r.Text(i, 1));
        }
        return out;
      });
}

Status Tables::ApplyOutcomes(std::span<const DueTouchpoint> due,
                             std::span<const FiringOutcome> outcomes) {
  if (due.size() != outcomes.size()) return Status::Error("apply outcomes: size mismatch");
  const FireRouting& routing = Routing();
  return session_.FinishClaim("apply firing outcomes", [&] {
    pg::Connection& c = session_.conn();
    // Fired ones in bulk, per fire time and routing: a statement for each.
    using Routing = FireRouting::Routing;
    std::vector<const Routing*> route_of(due.size(), nullptr);
    std::map<std::pair<std::int64_t, const Routing*>, std::vector<std::int64_t>> fired_at;
    for (std::size_t i = 0; i < due.size(); ++i) {
      if (outcomes[i].kind != FiringOutcome::Kind::kFired) continue;
      route_of[i] = &routing.Of(due[i].view.cadence, due[i].view.step);
      fired_at[{Ms(outcomes[i].at), route_of[i]}].push_back(
          static_cast<std::int64_t>(due[i].handle));
    }
    std::vector<std::int64_t> fired;  // still pending, so fired now
    for (const auto& [key, ids] : fired_at) {
      pg::Result r = c.Run(kFire, pg::Params().Add(key.first).AddArray(ids).Add(key.second->sinks));
      for (int k = 0; k < r.rows(); ++k) fired.push_back(r.Int64(k, 0));
    }
    std::sort(fired.begin(), fired.end());

    // A row per sink: queue messages (their event made when handed out)
    // and outbox entries (the event in each, made now from the rows).
    std::vector<std::string> queue_names, outbox_sinks;
    std::vector<std::int64_t> queue_tps, queue_at, outbox_tps, outbox_at, pushed;
    HistoryRows history;
    for (std::size_t i = 0; i < due.size(); ++i) {
      const FiringOutcome& o = outcomes[i];
      const auto rowid = static_cast<std::int64_t>(due[i].handle);
      if (o.kind != FiringOutcome::Kind::kFired ||
          !std::binary_search(fired.begin(), fired.end(), rowid)) {
        continue;
      }
      const Routing& routes = *route_of[i];
      for (const FireRouting::Route& route : routes.routes) {
        if (route.type == Sink::Type::kQueue) {
          queue_names.push_back(route.sink);
          queue_tps.push_back(rowid);
          queue_at.push_back(Ms(o.at));
          continue;
        }
        if (outbox_tps.empty() || outbox_tps.back() != rowid) pushed.push_back(rowid);
        outbox_sinks.push_back(route.sink);
        outbox_tps.push_back(rowid);
        outbox_at.push_back(Ms(o.at));
      }
      history.Add(rowid, o.at, TouchpointState::kFired, routes.fired_reason);
    }
    if (!queue_tps.empty()) {
      c.Run(kEnqueue, pg::Params().AddArray(queue_names).AddArray(queue_tps).AddArray(queue_at));
    }
    if (!outbox_tps.empty()) {
      auto events = MakeEvents(c, zones_, pushed);
      std::vector<std::string> bodies;
      bodies.reserve(outbox_tps.size());
      for (const std::int64_t tp : outbox_tps) {
        auto it = events.find(tp);
        if (it == events.end()) {
          throw std::runtime_error("touchpoint row " + std::to_string(tp) +
                                   " vanished while firing");
        }
        bodies.push_back(it->second);
      }
      c.Run(kOutboxInsert, pg::Params()
                               .AddArray(outbox_sinks)
                               .AddArray(outbox_tps)
                               .AddArray(bodies)
                               .AddArray(outbox_at));
    }

    // Deferred and skipped ones, each batch in a statement; a history line
    // for each row that was still pending.
    std::vector<std::int64_t> defer_ids, defer_at, skip_ids;
    std::vector<std::string> skip_reasons;
    std::map<std::int64_t, std::size_t> index_of;  // row id -> its place in `due`
    for (std::size_t i = 0; i < due.size(); ++i) {
      const auto rowid = static_cast<std::int64_t>(due[i].handle);
      index_of[rowid] = i;
      if (outcomes[i].kind == FiringOutcome::Kind::kDeferred) {
        defer_ids.push_back(rowid);
        defer_at.push_back(Ms(outcomes[i].at));
      } else if (outcomes[i].kind == FiringOutcome::Kind::kSkipped) {
        skip_ids.push_back(rowid);
        skip_reasons.push_back(outcomes[i].reason);
      }
    }
    if (!defer_ids.empty()) {
      pg::Result r = c.Run(kDefer, pg::Params().AddArray(defer_ids).AddArray(defer_at));
      for (int k = 0; k < r.rows(); ++k) {
        const std::size_t i = index_of[r.Int64(k, 0)];
        const FiringOutcome& o = outcomes[i];
        history.Add(r.Int64(k, 0), due[i].view.next_at, TouchpointState::kPending,
                    "deferred to " + FormatRfc3339(o.at, due[i].view.zone) + ": " + o.reason);
      }
    }
    if (!skip_ids.empty()) {
      pg::Result r = c.Run(kSkip, pg::Params().AddArray(skip_ids).AddArray(skip_reasons));
      for (int k = 0; k < r.rows(); ++k) {
        const std::size_t i = index_of[r.Int64(k, 0)];
        history.Add(r.Int64(k, 0), outcomes[i].at, TouchpointState::kSkipped, outcomes[i].reason);
      }
    }
    history.Write(c);
  });
}

}  // namespace tp::pgstore
