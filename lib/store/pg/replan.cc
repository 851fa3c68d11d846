#include "store/pg/replan.h"

#include <algorithm>
#include <unordered_map>
#include <utility>

#include "store/pg/replan_load.h"
#include "store/pg/rows.h"

namespace tp::pgstore {

using sql::FromMs;
using sql::Ms;

namespace {

// How long a step waits for a lock another session holds (a buyer's turn
// that an ingest group holds, a row a firing claim holds) before it ends
// there: a step is about 20 ms of work, and the sweep goes on past what
// it could not take at the next step.
const pg::Statement kStepLockWait("SET LOCAL lock_timeout = '50ms'");
constexpr std::string_view kLockNotAvailable = "55P03";
const pg::Statement kSaveSweep(
    "UPDATE planning SET replanning = $1, next_at = $2, due_at = $3, buyer = $4, "
    "cadence_order = $5, step_order = $6, touchpoint = $7 WHERE id = 1");
const pg::Statement kSweepRows(
    "SELECT id, buyer, next_at, due_at, cadence_order, step_order FROM touchpoints "
    "WHERE state = 0 AND (next_at, due_at, buyer, cadence_order, step_order, id) > "
    "($1::bigint, $2::bigint, $3::bigint, $4::bigint, $5::bigint, $6::bigint) "
    "ORDER BY next_at, due_at, buyer, cadence_order, step_order, id LIMIT $7");
const pg::Statement kBuyerNames("SELECT id, buyer_id FROM buyers WHERE id = ANY($1::bigint[])");
// A purchase's new tier, pinned first on its fired touchpoints that have
// none (they keep the tier they fired at); both per purchase ($3) of a
// buyer ($2).
const pg::Statement kPinTiers(
    "UPDATE touchpoints t SET tier = p.tier FROM purchases p, unnest($1::text[], $2::bigint[], "
    "$3::bigint[]) AS u(tier, buyer, purchase) WHERE p.id = u.purchase AND p.tier <> u.tier AND "
    "t.buyer = u.buyer AND t.purchase = u.purchase AND t.state IN (1, 5) AND t.tier IS NULL");
// Before the pin: the pending rows of the purchases whose tier changes,
// held (the step's 50 ms at most, then it ends busy). A row a firing claim
// holds fires with the old tier; unheld, it would commit after the pin,
// unpinned, and show the new tier (a fired row keeps the tier it fired
// with: the outcomes report counts it there).
const pg::Statement kHoldRetiered(
    "SELECT t.id FROM touchpoints t JOIN unnest($1::text[], $2::bigint[], $3::bigint[]) AS "
    "u(tier, buyer, purchase) ON t.buyer = u.buyer AND t.purchase = u.purchase JOIN purchases p "
    "ON p.id = u.purchase WHERE p.tier <> u.tier AND t.state = 0 FOR NO KEY UPDATE OF t");
const pg::Statement kPurchaseTiers(
    "UPDATE purchases p SET tier = u.tier FROM unnest($1::text[], $2::bigint[], $3::bigint[]) "
    "AS u(tier, buyer, purchase) WHERE p.id = u.purchase AND p.tier <> u.tier AND "
    "p.buyer = u.buyer");
// The rows that changed.
const pg::Statement kUpdates(
    "UPDATE touchpoints t SET topic = u.topic, cadence_order = u.cadence_order, "
    "step_order = u.step_order, cancel_on_repurchase = u.cancel <> 0, due_at = u.due_at, "
    "next_at = u.next_at FROM unnest($1::text[], $2::int[], $3::int[], $4::int[], $5::bigint[], "
    "$6::bigint[], $7::bigint[]) AS u(topic, cadence_order, step_order, cancel, due_at, next_at, "
    "id) WHERE t.id = u.id AND t.state = 0 AND (t.topic <> u.topic OR "
    "t.cadence_order <> u.cadence_order OR t.step_order <> u.step_order OR "
    "t.cancel_on_repurchase <> (u.cancel <> 0) OR t.due_at <> u.due_at OR "
    "t.next_at <> u.next_at) RETURNING t.id");
const pg::Statement kCancels(
    "UPDATE touchpoints t SET state = 2, reason = u.reason FROM unnest($1::bigint[], $2::text[]) "
    "AS u(id, reason) WHERE t.id = u.id AND t.state = 0 RETURNING t.id");
// New steps, in the order given (so their ids are those one insert each
// would give); their ids in that order.
const pg::Statement kAdds(
    "WITH u AS (SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], "
    "$5::text[], $6::int[], $7::int[], $8::int[], $9::bigint[], $10::bigint[]) WITH ORDINALITY "
    "AS u(purchase, buyer, cadence, step, topic, cadence_order, step_order, cancel, due_at, "
    "next_at, n)) INSERT INTO touchpoints (purchase, buyer, cadence, step, topic, cadence_order, "
    "step_order, cancel_on_repurchase, state, due_at, next_at) SELECT purchase, buyer, cadence, "
    "step, topic, cadence_order, step_order, cancel <> 0, 0, due_at, next_at FROM u ORDER BY n "
    "RETURNING id, due_at, cadence");

// What one chunk of buyers' re-plans write, gathered to be written as a
// few statements.
struct Writes {
  struct Update {
    Instant due_at, previous_due_at;
  };
  std::vector<std::string> tier;
  std::vector<std::int64_t> tier_buyer, tier_purchase;
  // kUpdates' columns, and what each update was, by row id.
  std::vector<std::string> topic;
  std::vector<std::int64_t> cadence_order, step_order, cancel, due_at, next_at, id;
  std::unordered_map<std::int64_t, Update> updates;
  // kCancels' columns, and each one's cadence, by row id.
  std::vector<std::int64_t> cancel_id;
  std::vector<std::string> cancel_reason;
  std::unordered_map<std::int64_t, std::string> cancel_cadence;
  // kAdds' columns.
  std::vector<std::int64_t> add_purchase, add_buyer, add_cadence_order, add_step_order, add_cancel,
      add_due_at, add_next_at;
  std::vector<std::string> add_cadence, add_step, add_topic;
};

}  // namespace

bool Replan::ReplanBuyers(const PurchaseReplanner& replan, const std::vector<std::int64_t>& buyers,
                          Instant now, ReplanCounts& counts, bool wait) {
  if (buyers.empty()) return true;
  pg::Connection& c = session_.conn();
  const Rules& rules = *rules_;
  std::unordered_map<std::int64_t, std::string> names;
  {
    pg::Result r = c.Run(kBuyerNames, pg::Params().AddArray(buyers));
    std::vector<std::string> turns;
    for (int i = 0; i < r.rows(); ++i) {
      turns.emplace_back(r.Text(i, 1));
      names.emplace(r.Int64(i, 0), turns.back());
    }
    // As ingest does: a repurchase on another daemon waits, or is waited
    // for; then the buyers' rows are read.
    if (!wait) {
      if (!TryBuyersTurns(c, turns)) return false;
    } else {
      TakeBuyersTurns(c, turns);
    }
  }
  const auto purchases = LoadForReplan(c, rules, zones_, buyers, names);

  // Plans, in the buyers' order.
  Writes w;
  std::vector<PastPurchase> all, others;
  for (const std::int64_t buyer : buyers) {
    auto found = purchases.find(buyer);
    if (found == purchases.end()) continue;
    const std::vector<ReplanRows>& of = found->second;
    all.clear();
    for (const ReplanRows& sp : of) {
      all.push_back({sp.purchase.purchased_at, rules.ProductIndex(sp.purchase.product),
                     sp.purchase.amount, sp.purchase.quantity, sp.zone});
    }
    for (std::size_t i = 0; i < of.size(); ++i) {
      const ReplanRows& sp = of[i];
      if (!sp.pending()) continue;
      others.assign(all.begin(), all.end());
      others.erase(others.begin() + static_cast<std::ptrdiff_t>(i));
      const PurchaseReplan plan = replan(rules, others, sp.purchase, all[i].product, sp.zone,
                                         sp.touchpoints, now, sp.events);
      if (plan.tier >= 0) {
        w.tier.push_back(rules.tiers[static_cast<std::size_t>(plan.tier)].name);
        w.tier_buyer.push_back(buyer);
        w.tier_purchase.push_back(sp.row);
      }
      for (const ReplanChange& ch : plan.changes) {
        const PlannedTouchpoint& pt = ch.touchpoint;
        const Cadence& cd = rules.cadences[static_cast<std::size_t>(pt.cadence)];
        switch (ch.kind) {
          case ReplanChange::Kind::kAdd:
            w.add_purchase.push_back(sp.row);
            w.add_buyer.push_back(buyer);
            w.add_cadence.push_back(cd.name);
            w.add_step.push_back(cd.steps[static_cast<std::size_t>(pt.step)].id);
            w.add_topic.push_back(cd.steps[static_cast<std::size_t>(pt.step)].topic);
            w.add_cadence_order.push_back(pt.cadence);
            w.add_step_order.push_back(pt.step);
            w.add_cancel.push_back(pt.cancel_on_repurchase ? 1 : 0);
            w.add_due_at.push_back(Ms(pt.due_at));
            w.add_next_at.push_back(Ms(pt.next_at));
            break;
          case ReplanChange::Kind::kUpdate: {
            const auto row = static_cast<std::int64_t>(ch.handle);
            w.topic.push_back(cd.steps[static_cast<std::size_t>(pt.step)].topic);
            w.cadence_order.push_back(pt.cadence);
            w.step_order.push_back(pt.step);
            w.cancel.push_back(pt.cancel_on_repurchase ? 1 : 0);
            w.due_at.push_back(Ms(pt.due_at));
            w.next_at.push_back(Ms(pt.next_at));
            w.id.push_back(row);
            w.updates[row] = {pt.due_at, ch.previous_due_at};
            break;
          }
          case ReplanChange::Kind::kCancel: {
            const auto row = static_cast<std::int64_t>(ch.handle);
            w.cancel_id.push_back(row);
            w.cancel_reason.push_back(ch.reason);
            w.cancel_cadence[row] = ch.cadence;
            break;
          }
        }
      }
    }
  }

  // Written: tiers (pinned on fired touchpoints first), updates, cancels,
  // new steps, and the history lines of what changed.
  HistoryRows history;
  if (!w.tier.empty()) {
    pg::Params args;
    args.AddArray(w.tier).AddArray(w.tier_buyer).AddArray(w.tier_purchase);
    c.Run(kHoldRetiered, args);
    c.Run(kPinTiers, args);
    c.Run(kPurchaseTiers, args);
  }
  if (!w.id.empty()) {
    pg::Result u = c.Run(kUpdates, pg::Params()
                                       .AddArray(w.topic)
                                       .AddArray(w.cadence_order)
                                       .AddArray(w.step_order)
                                       .AddArray(w.cancel)
                                       .AddArray(w.due_at)
                                       .AddArray(w.next_at)
                                       .AddArray(w.id));
    for (int i = 0; i < u.rows(); ++i) {
      const Writes::Update& up = w.updates.at(u.Int64(i, 0));
      if (up.previous_due_at == up.due_at) {
        ++counts.updated;
        continue;
      }
      history.Add(u.Int64(i, 0), now, TouchpointState::kPending,
                  "rules changed: due " + FormatRfc3339(up.due_at, UtcZone()) + " (was " +
                      FormatRfc3339(up.previous_due_at, UtcZone()) + ")");
      ++counts.moved;
    }
  }
  if (!w.cancel_id.empty()) {
    pg::Result u = c.Run(kCancels, pg::Params().AddArray(w.cancel_id).AddArray(w.cancel_reason));
    std::unordered_map<std::int64_t, std::size_t> at;
    for (std::size_t i = 0; i < w.cancel_id.size(); ++i) at.emplace(w.cancel_id[i], i);
    for (int i = 0; i < u.rows(); ++i) {
      const std::int64_t row = u.Int64(i, 0);
      history.Add(row, now, TouchpointState::kCancelled, w.cancel_reason[at.at(row)]);
      ++counts.cancelled;
      ++counts.cancelled_by_cadence[w.cancel_cadence.at(row)];
    }
  }
  if (!w.add_purchase.empty()) {
    pg::Result u = c.Run(kAdds, pg::Params()
                                    .AddArray(w.add_purchase)
                                    .AddArray(w.add_buyer)
                                    .AddArray(w.add_cadence)
                                    .AddArray(w.add_step)
                                    .AddArray(w.add_topic)
                                    .AddArray(w.add_cadence_order)
                                    .AddArray(w.add_step_order)
                                    .AddArray(w.add_cancel)
                                    .AddArray(w.add_due_at)
                                    .AddArray(w.add_next_at));
    // Each row as it says itself (RETURNING has no defined order), in
    // the order they were inserted (their ids, drawn in the ORDER BY's).
    struct Added {
      std::int64_t id;
      Instant due;
      std::string cadence;
    };
    std::vector<Added> added;
    added.reserve(static_cast<std::size_t>(u.rows()));
    for (int i = 0; i < u.rows(); ++i) {
      added.push_back({u.Int64(i, 0), FromMs(u.Int64(i, 1)), std::string(u.Text(i, 2))});
    }
    std::sort(added.begin(), added.end(),
              [](const Added& a, const Added& b) { return a.id < b.id; });
    for (const Added& a : added) {
      history.Add(a.id, now, TouchpointState::kPending,
                  "rules changed: a new step, due " + FormatRfc3339(a.due, UtcZone()));
      ++counts.added;
      ++counts.added_by_cadence[a.cadence];
    }
  }
  history.Write(c);
  return true;
}

StatusOr<ReplanStep> Replan::ReplanSome(const PurchaseReplanner& replan,
                                        std::string_view fingerprint,
                                        std::chrono::steady_clock::time_point deadline,
                                        Instant now) {
  ReplanStep step;
  Sweep sweep;
  Status s = session_.Atomically("re-plan", [&] {
    step = ReplanStep{};
    pg::Connection& c = session_.conn();
    // This daemon's turn, if no other daemon's step is under way; then
    // where the sweep is, whoever moved it last.
    const bool turn = c.Run(kTryReplanLock).Bool(0, 0);
    pg::Result at = c.Run(kPlanning);
    if (at.rows() == 0 || !at.Bool(0, 1)) {
      step.done = true;  // finished meanwhile (by another daemon), or never started
      return;
    }
    // Started again since this daemon's last step (by another daemon's
    // reload, after ingest by the rules before): its buyers are to do again.
    if (const std::int64_t run = at.Int64(0, 7); run != run_) {
      replanned_.clear();
      run_ = run;
    }
    if (!at.IsNull(0, 2)) {
      sweep = {at.Int64(0, 2), at.Int64(0, 3), at.Int64(0, 8),
               at.Int64(0, 4), at.Int64(0, 5), at.Int64(0, 6)};
    }
    // A re-plan to other rules than the caller's (a reload recorded since
    // it asked for this step): stepping through it by these would leave
    // the buyers it passed on them.
    if (at.Text(0, 0) != fingerprint) {
      step.superseded = step.done = true;
      return;
    }
    // Another daemon's step under way: covered as far as the steps
    // committed before it.
    if (!turn) {
      step.busy = true;
      return;
    }
    c.Run(kStepLockWait);
    // Rows read at a time; their buyers are re-planned together. Only the
    // first read's turns are waited for: a step that waited for a buyer's
    // turn while holding those of the buyers before could deadlock with an
    // ingest group holding that buyer and waiting for one of those
    // (IngestBatcher takes all its buyers' turns at once). A read whose
    // turns are not all free ends the step before it; the next step starts
    // there, holding nothing while it waits.
    bool out_of_time = false;
    std::vector<std::int64_t> buyers;
    for (bool first = true; !out_of_time; first = false) {
      pg::Result rows = c.Run(kSweepRows, pg::Params()
                                              .Add(sweep.next_at)
                                              .Add(sweep.due_at)
                                              .Add(sweep.buyer)
                                              .Add(sweep.cadence_order)
                                              .Add(sweep.step_order)
                                              .Add(sweep.id)
                                              .Add(first ? first_read_ : kRowsPerRead));
      if (rows.rows() == 0) {
        step.done = true;
        break;
      }
      buyers.clear();
      const Sweep before = sweep;
      for (int i = 0; i < rows.rows(); ++i) {
        sweep = {rows.Int64(i, 2), rows.Int64(i, 3), rows.Int64(i, 1),
                 rows.Int64(i, 4), rows.Int64(i, 5), rows.Int64(i, 0)};
        const auto buyer = static_cast<std::size_t>(rows.Int64(i, 1));
        if (buyer >= replanned_.size()) replanned_.resize(buyer + 1 + buyer / 4, false);
        if (replanned_[buyer]) continue;
        replanned_[buyer] = true;
        buyers.push_back(rows.Int64(i, 1));
      }
      // A lock held past kStepLockWait ends the step before this read,
      // as a turn not free does, keeping what the reads before wrote and
      // letting go of the turns this one took.
      ReplanCounts counts;
      bool wrote = false;
      c.Exec("SAVEPOINT replan_read");
      try {
        wrote = ReplanBuyers(replan, buyers, now, counts, first);
      } catch (const pg::Error& e) {
        if (e.sqlstate() != kLockNotAvailable) throw;
        // The first read's lock held: the next step's first read is half
        // as long (down to one row, whose buyer's group ends soon), and
        // twice as long again after one that goes through.
        if (first) first_read_ = std::max(1, first_read_ / 2);
      }
      if (!wrote) {
        c.Exec("ROLLBACK TO SAVEPOINT replan_read");
        c.Exec("RELEASE SAVEPOINT replan_read");
        sweep = before;
        for (const std::int64_t b : buyers) replanned_[static_cast<std::size_t>(b)] = false;
        step.busy = true;
        break;
      }
      c.Exec("RELEASE SAVEPOINT replan_read");
      if (first) first_read_ = std::min(kRowsPerRead, first_read_ * 2);
      step.counts.Add(counts);
      step.buyers += static_cast<std::int64_t>(buyers.size());
      if (std::chrono::steady_clock::now() >= deadline) out_of_time = true;
      // Each buyer's turn is held to the step's commit: no more than a
      // transaction may take one by one (rows.h).
      if (step.buyers + kRowsPerRead > static_cast<std::int64_t>(kTurnsEach)) out_of_time = true;
    }
    pg::Params p;
    p.Add(!step.done);
    if (step.done) {
      for (int i = 0; i < 6; ++i) p.AddNull();
    } else {
      p.Add(sweep.next_at)
          .Add(sweep.due_at)
          .Add(sweep.buyer)
          .Add(sweep.cadence_order)
          .Add(sweep.step_order)
          .Add(sweep.id);
    }
    // The planning row may be held by another daemon's note of other rules
    // (NotePlanningByOtherRules, which takes no advisory lock), for as long
    // as its commit takes: waited for, not taken for a failed step.
    c.Exec("SET LOCAL lock_timeout TO DEFAULT");
    c.Run(kSaveSweep, p);
  });
  if (!s.ok()) {
    replanned_.clear();  // rolled back: those buyers are to do again
    return s;
  }
  if (step.done) replanned_.clear();
  step.covered = step.done ? Instant::max() : FromMs(sweep.next_at);
  return step;
}

}  // namespace tp::pgstore
