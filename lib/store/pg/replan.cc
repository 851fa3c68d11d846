#include "store/pg/replan.h"

#include <algorithm>
#include <unordered_map>
#include <utility>

#include "core/ids.h"
#include "store/pg/rows.h"

namespace tp::pgstore {

using sql::FromMs;
using sql::Ms;
using sql::StateFrom;

namespace {

const pg::Statement kReplanLock("SELECT pg_advisory_xact_lock(7305861230004)");
const pg::Statement kPlanning(
    "SELECT fingerprint, replanning, next_at, due_at, cadence_order, step_order, touchpoint "
    "FROM planning WHERE id = 1");
const pg::Statement kSavePlanning(
    "INSERT INTO planning (id, fingerprint, replanning, next_at, due_at, cadence_order, "
    "step_order, touchpoint) VALUES (1, $1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO UPDATE "
    "SET fingerprint = $1, replanning = $2, next_at = $3, due_at = $4, cadence_order = $5, "
    "step_order = $6, touchpoint = $7");
const pg::Statement kSaveSweep(
    "UPDATE planning SET replanning = $1, next_at = $2, due_at = $3, cadence_order = $4, "
    "step_order = $5, touchpoint = $6 WHERE id = 1");
const pg::Statement kSweepRows(
    "SELECT id, buyer, next_at, due_at, cadence_order, step_order FROM touchpoints "
    "WHERE state = 0 AND (next_at, due_at, cadence_order, step_order, id) > "
    "($1::bigint, $2::bigint, $3::bigint, $4::bigint, $5::bigint) "
    "ORDER BY next_at, due_at, cadence_order, step_order, id LIMIT $6");
const pg::Statement kBuyerName("SELECT buyer_id FROM buyers WHERE id = $1");
const pg::Statement kPurchasesOf(
    "SELECT id, order_id, product, quantity, amount, purchased_at, timezone, zone, attributes "
    "FROM purchases WHERE buyer = $1 ORDER BY purchased_at, id");
const pg::Statement kTouchpointsOf(
    "SELECT purchase, cadence, step, state, due_at, next_at, id FROM touchpoints "
    "WHERE buyer = $1 ORDER BY id");
const pg::Statement kPinTier(
    "UPDATE touchpoints t SET tier = p.tier FROM purchases p WHERE p.id = $3 AND p.tier <> $1 "
    "AND t.buyer = $2 AND t.purchase = $3 AND t.state IN (1, 5) AND t.tier IS NULL");
const pg::Statement kPurchaseTier(
    "UPDATE purchases SET tier = $1 WHERE id = $3 AND tier <> $1 AND buyer = $2");
const pg::Statement kUpdate(
    "UPDATE touchpoints SET topic = $1, cadence_order = $2, step_order = $3, "
    "cancel_on_repurchase = $4, due_at = $5, next_at = $6 WHERE id = $7 AND state = 0 AND "
    "(topic <> $1 OR cadence_order <> $2 OR step_order <> $3 OR cancel_on_repurchase <> $4 OR "
    "due_at <> $5 OR next_at <> $6) RETURNING id");
const pg::Statement kCancel(
    "UPDATE touchpoints SET state = 2, reason = $1 WHERE id = $2 AND state = 0 RETURNING id");

}  // namespace

StatusOr<PlanningState> Replan::Planning() {
  return session_.Read("read the planning state", [&]() -> StatusOr<PlanningState> {
    PlanningState state;
    pg::Result r = session_.conn().Run(kPlanning);
    if (r.rows() == 0) return state;
    state.fingerprint = std::string(r.Text(0, 0));
    state.replanning = r.Bool(0, 1);
    return state;
  });
}

Status Replan::SetPlanning(std::string_view fingerprint, bool replan) {
  return session_.Atomically("record the planning state", [&] {
    pg::Params p;
    p.Add(fingerprint).Add(replan);
    for (int i = 0; i < 5; ++i) {
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

void Replan::ReplanBuyer(const PurchaseReplanner& replan, std::int64_t buyer, Instant now,
                         ReplanCounts& counts) {
  pg::Connection& c = session_.conn();
  const Rules& rules = *rules_;
  pg::Result name = c.Run(kBuyerName, pg::Params().Add(buyer));
  if (name.rows() == 0) return;
  const std::string buyer_id(name.Text(0, 0));
  // As ingest does: a repurchase on another daemon waits, or is waited for.
  TakeBuyersTurn(c, buyer_id);
  struct Stored {
    std::int64_t row = 0;
    Purchase purchase;
    const Zone* zone = nullptr;
    std::vector<ExistingTouchpoint> touchpoints;
  };
  std::vector<Stored> purchases;
  std::unordered_map<std::int64_t, std::size_t> index;
  pg::Result p = c.Run(kPurchasesOf, pg::Params().Add(buyer));
  for (int i = 0; i < p.rows(); ++i) {
    Stored& sp = purchases.emplace_back();
    sp.row = p.Int64(i, 0);
    index.emplace(sp.row, purchases.size() - 1);
    sp.purchase.order_id = std::string(p.Text(i, 1));
    sp.purchase.buyer_id = buyer_id;
    sp.purchase.product = std::string(p.Text(i, 2));
    sp.purchase.quantity = p.Int64(i, 3);
    sp.purchase.amount = p.Double(i, 4);
    sp.purchase.purchased_at = FromMs(p.Int64(i, 5));
    sp.purchase.timezone = std::string(p.Text(i, 6));
    sp.zone = zones_.Named(p.Text(i, 7));
    if (!p.IsNull(i, 8)) sp.purchase.attributes = std::string(p.Text(i, 8));
  }
  pg::Result t = c.Run(kTouchpointsOf, pg::Params().Add(buyer));
  for (int i = 0; i < t.rows(); ++i) {
    auto it = index.find(t.Int64(i, 0));
    if (it == index.end()) continue;
    Stored& sp = purchases[it->second];
    std::string cadence(t.Text(i, 1));
    std::string id = TouchpointId(sp.purchase.order_id, cadence, t.Text(i, 2));
    sp.touchpoints.push_back({std::move(id), std::move(cadence),
                              StateFrom(static_cast<int>(t.Int64(i, 3))), FromMs(t.Int64(i, 4)),
                              FromMs(t.Int64(i, 5)), static_cast<std::uint64_t>(t.Int64(i, 6))});
  }
  std::vector<PastPurchase> all;
  all.reserve(purchases.size());
  for (const Stored& sp : purchases) {
    all.push_back({sp.purchase.purchased_at, rules.ProductIndex(sp.purchase.product),
                   sp.purchase.amount, sp.purchase.quantity, sp.zone});
  }
  std::vector<PastPurchase> others;
  for (std::size_t i = 0; i < purchases.size(); ++i) {
    const Stored& sp = purchases[i];
    if (std::none_of(sp.touchpoints.begin(), sp.touchpoints.end(),
                     [](const auto& x) { return x.state == TouchpointState::kPending; })) {
      continue;
    }
    others.assign(all.begin(), all.end());
    others.erase(others.begin() + static_cast<std::ptrdiff_t>(i));
    const PurchaseReplan plan =
        replan(rules, others, sp.purchase, all[i].product, sp.zone, sp.touchpoints, now);
    if (plan.tier >= 0) {
      const std::string& tier = rules.tiers[static_cast<std::size_t>(plan.tier)].name;
      c.Run(kPinTier, pg::Params().Add(tier).Add(buyer).Add(sp.row));
      c.Run(kPurchaseTier, pg::Params().Add(tier).Add(buyer).Add(sp.row));
    }
    for (const ReplanChange& ch : plan.changes) {
      const PlannedTouchpoint& pt = ch.touchpoint;
      switch (ch.kind) {
        case ReplanChange::Kind::kAdd: {
          const std::int64_t row = InsertTouchpoint(c, rules, sp.row, buyer, pt);
          AddHistory(c, {row}, now, TouchpointState::kPending,
                     "rules changed: a new step, due " + FormatRfc3339(pt.due_at, UtcZone()));
          ++counts.added;
          ++counts.added_by_cadence[ch.cadence];
          break;
        }
        case ReplanChange::Kind::kUpdate: {
          pg::Result u =
              c.Run(kUpdate, pg::Params()
                                 .Add(rules.cadences[static_cast<std::size_t>(pt.cadence)]
                                          .steps[static_cast<std::size_t>(pt.step)]
                                          .topic)
                                 .Add(pt.cadence)
                                 .Add(pt.step)
                                 .Add(pt.cancel_on_repurchase)
                                 .Add(Ms(pt.due_at))
                                 .Add(Ms(pt.next_at))
                                 .Add(static_cast<std::int64_t>(ch.handle)));
          if (u.rows() == 0) break;  // nothing differed
          if (ch.previous_due_at != pt.due_at) {
            AddHistory(c, {u.Int64(0, 0)}, now, TouchpointState::kPending,
                       "rules changed: due " + FormatRfc3339(pt.due_at, UtcZone()) + " (was " +
                           FormatRfc3339(ch.previous_due_at, UtcZone()) + ")");
            ++counts.moved;
          } else {
            ++counts.updated;
          }
          break;
        }
        case ReplanChange::Kind::kCancel: {
          pg::Result u =
              c.Run(kCancel, pg::Params().Add(ch.reason).Add(static_cast<std::int64_t>(ch.handle)));
          if (u.rows() == 0) break;
          AddHistory(c, {u.Int64(0, 0)}, now, TouchpointState::kCancelled, ch.reason);
          ++counts.cancelled;
          ++counts.cancelled_by_cadence[ch.cadence];
          break;
        }
      }
    }
  }
}

StatusOr<ReplanStep> Replan::ReplanSome(const PurchaseReplanner& replan,
                                        std::chrono::steady_clock::time_point deadline,
                                        Instant now) {
  ReplanStep step;
  Sweep sweep;
  Status s = session_.Atomically("re-plan", [&] {
    step = ReplanStep{};
    pg::Connection& c = session_.conn();
    // This daemon's turn; then where the sweep is, whoever moved it last.
    c.Run(kReplanLock);
    pg::Result at = c.Run(kPlanning);
    if (at.rows() == 0 || !at.Bool(0, 1)) {
      step.done = true;  // finished meanwhile (by another daemon), or never started
      return;
    }
    if (!at.IsNull(0, 2)) {
      sweep = {at.Int64(0, 2), at.Int64(0, 3), at.Int64(0, 4), at.Int64(0, 5), at.Int64(0, 6)};
    }
    constexpr int kRowsPerRead = 256;
    bool out_of_time = false;
    while (!out_of_time) {
      pg::Result rows = c.Run(kSweepRows, pg::Params()
                                              .Add(sweep.next_at)
                                              .Add(sweep.due_at)
                                              .Add(sweep.cadence_order)
                                              .Add(sweep.step_order)
                                              .Add(sweep.id)
                                              .Add(kRowsPerRead));
      if (rows.rows() == 0) {
        step.done = true;
        break;
      }
      for (int i = 0; i < rows.rows(); ++i) {
        sweep = {rows.Int64(i, 2), rows.Int64(i, 3), rows.Int64(i, 4), rows.Int64(i, 5),
                 rows.Int64(i, 0)};
        const auto buyer = static_cast<std::size_t>(rows.Int64(i, 1));
        if (buyer >= replanned_.size()) replanned_.resize(buyer + 1 + buyer / 4, false);
        if (replanned_[buyer]) continue;
        replanned_[buyer] = true;
        ReplanBuyer(replan, rows.Int64(i, 1), now, step.counts);
        ++step.buyers;
        if (std::chrono::steady_clock::now() >= deadline) {
          out_of_time = true;
          break;
        }
      }
      if (std::chrono::steady_clock::now() >= deadline) out_of_time = true;
    }
    pg::Params p;
    p.Add(!step.done);
    if (step.done) {
      for (int i = 0; i < 5; ++i) p.AddNull();
    } else {
      p.Add(sweep.next_at)
          .Add(sweep.due_at)
          .Add(sweep.cadence_order)
          .Add(sweep.step_order)
          .Add(sweep.id);
    }
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
