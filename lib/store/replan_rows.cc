#include "store/replan_rows.h"

#include <SQLiteCpp/SQLiteCpp.h>

#include <algorithm>
#include <unordered_map>

#include "core/ids.h"

namespace tp {

using sql::BindText;
using sql::Failed;
using sql::FromMs;
using sql::Guard;
using sql::Ms;
using sql::StateFrom;
using sql::Text;
using sql::TextView;

ReplanRows::ReplanRows(Database& db, RowWriter& rows)
    : db_(db),
      rows_(rows),
      purchases_of_(db.sql(),
                    "SELECT id, order_id, product, quantity, amount, purchased_at, timezone, "
                    "zone, attributes FROM purchases WHERE buyer = ? ORDER BY purchased_at, id"),
      touchpoints_of_(db.sql(),
                      "SELECT purchase, cadence, step, state, due_at, next_at, id FROM "
                      "touchpoints WHERE buyer = ? ORDER BY id"),
      pin_tier_(db.sql(),
                "UPDATE touchpoints SET tier = p.tier FROM purchases p WHERE p.id = ?3 AND "
                "p.tier <> ?1 AND touchpoints.buyer = ?2 AND touchpoints.purchase = ?3 "
                "AND touchpoints.state IN (1, 5) AND touchpoints.tier IS NULL"),
      purchase_tier_(db.sql(), "UPDATE purchases SET tier = ?1 WHERE id = ?3 AND tier <> ?1"),
      replan_update_(db.sql(),
                     "UPDATE touchpoints SET topic = ?1, cadence_order = ?2, step_order = ?3, "
                     "cancel_on_repurchase = ?4, due_at = ?5, next_at = ?6 WHERE id = ?7 AND "
                     "state = 0 AND (topic != ?1 OR cadence_order != ?2 OR step_order != ?3 OR "
                     "cancel_on_repurchase != ?4 OR due_at != ?5 OR next_at != ?6) RETURNING id"),
      replan_cancel_(db.sql(),
                     "UPDATE touchpoints SET state = 2, reason = ? WHERE id = ? AND state = 0 "
                     "RETURNING id"),
      sweep_rows_(db.sql(),
                  "SELECT id, buyer, next_at, due_at, cadence_order, step_order FROM touchpoints "
                  "WHERE state = 0 AND (next_at, due_at, buyer, cadence_order, step_order, id) "
                  "> (?1, ?2, ?3, ?4, ?5, ?6) ORDER BY next_at, due_at, buyer, cadence_order, "
                  "step_order, id LIMIT ?7"),
      buyer_name_(db.sql(), "SELECT buyer_id FROM buyers WHERE id = ?"),
      first_events_since_(db.sql(),
                          "SELECT type, MIN(at) FROM events WHERE buyer = ?1 AND at >= ?2 AND "
                          "type IN (SELECT value FROM json_each(?3)) GROUP BY type"),
      save_sweep_(db.sql(),
                  "UPDATE planning SET replanning = ?1, next_at = ?2, due_at = ?3, buyer = ?4, "
                  "cadence_order = ?5, step_order = ?6, touchpoint = ?7 WHERE id = 1") {}

void ReplanRows::BindSweep(SQLite::Statement& q, int first, const std::optional<Sweep>& at) {
  if (!at) {
    for (int i = 0; i < 6; ++i) q.bind(first + i);
    return;
  }
  q.bind(first, at->next_at);
  q.bind(first + 1, at->due_at);
  q.bind(first + 2, at->buyer);
  q.bind(first + 3, at->cadence_order);
  q.bind(first + 4, at->step_order);
  q.bind(first + 5, at->id);
}

void ReplanRows::SavePlanning(std::string_view fingerprint, const std::optional<Sweep>& at) {
  SQLite::Statement q(db_.sql(),
                      "INSERT OR REPLACE INTO planning (id, fingerprint, replanning, next_at, "
                      "due_at, buyer, cadence_order, step_order, touchpoint) "
                      "VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
  BindText(q, 1, fingerprint);
  q.bind(2, at ? 1 : 0);
  BindSweep(q, 3, at);
  q.exec();
}

void ReplanRows::SaveSweep(const std::optional<Sweep>& at) {
  save_sweep_.tryReset();
  save_sweep_.bind(1, at ? 1 : 0);
  BindSweep(save_sweep_, 2, at);
  save_sweep_.exec();
}

std::vector<ReplanRows::StoredPurchase> ReplanRows::LoadPurchases(std::int64_t buyer,
                                                                  const std::string& buyer_id) {
  std::vector<StoredPurchase> out;
  auto& p = purchases_of_;
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
    sp.zone = zones_.Named(TextView(p.getColumn(7)));
    sp.purchase.attributes = Text(p.getColumn(8));
  }
  p.tryReset();
  auto& t = touchpoints_of_;
  t.tryReset();
  t.bind(1, buyer);
  while (t.executeStep()) {
    auto it = index.find(t.getColumn(0).getInt64());
    if (it == index.end()) continue;
    StoredPurchase& sp = out[it->second];
    std::string cadence = t.getColumn(1).getString();
    std::string id = TouchpointId(sp.purchase.order_id, cadence, t.getColumn(2).getText());
    sp.touchpoints.push_back({std::move(id), std::move(cadence), StateFrom(t.getColumn(3).getInt()),
                              FromMs(t.getColumn(4).getInt64()), FromMs(t.getColumn(5).getInt64()),
                              static_cast<std::uint64_t>(t.getColumn(6).getInt64())});
  }
  t.tryReset();
  return out;
}

void ReplanRows::ApplyChanges(const Rules& rules, std::int64_t purchase_row, std::int64_t buyer,
                              int tier, std::span<const ReplanChange> changes, Instant now,
                              ReplanCounts& counts) {
  // Runs an UPDATE ... RETURNING id; the id, or 0 when no row changed.
  auto returned_id = [](SQLite::Statement& q) -> std::int64_t {
    const std::int64_t id = q.executeStep() ? q.getColumn(0).getInt64() : 0;
    q.tryReset();
    return id;
  };
  if (tier >= 0) {
    for (SQLite::Statement* q : {&pin_tier_, &purchase_tier_}) {
      q->tryReset();
      BindText(*q, 1, rules.tiers[static_cast<std::size_t>(tier)].name);
      q->bind(2, buyer);
      q->bind(3, purchase_row);
      q->exec();
    }
  }
  for (const ReplanChange& c : changes) {
    const PlannedTouchpoint& t = c.touchpoint;
    switch (c.kind) {
      case ReplanChange::Kind::kAdd: {
        const std::int64_t row = rows_.InsertTouchpoint(rules, purchase_row, buyer, t);
        rows_.AddHistory(row, now, TouchpointState::kPending,
                         "rules changed: a new step, due " + FormatRfc3339(t.due_at, UtcZone()));
        ++counts.added;
        ++counts.added_by_cadence[c.cadence];
        break;
      }
      case ReplanChange::Kind::kUpdate: {
        auto& q = replan_update_;
        q.tryReset();
        BindText(q, 1, rules.cadences[t.cadence].steps[t.step].topic);
        q.bind(2, t.cadence);
        q.bind(3, t.step);
        q.bind(4, t.cancel_on_repurchase ? 1 : 0);
        q.bind(5, Ms(t.due_at));
        q.bind(6, Ms(t.next_at));
        q.bind(7, static_cast<std::int64_t>(c.handle));
        const std::int64_t row = returned_id(q);
        if (row == 0) break;  // nothing differed
        if (c.previous_due_at != t.due_at) {
          rows_.AddHistory(row, now, TouchpointState::kPending,
                           "rules changed: due " + FormatRfc3339(t.due_at, UtcZone()) + " (was " +
                               FormatRfc3339(c.previous_due_at, UtcZone()) + ")");
          ++counts.moved;
        } else {
          ++counts.updated;
        }
        break;
      }
      case ReplanChange::Kind::kCancel: {
        auto& q = replan_cancel_;
        q.tryReset();
        BindText(q, 1, c.reason);
        q.bind(2, static_cast<std::int64_t>(c.handle));
        const std::int64_t row = returned_id(q);
        if (row == 0) break;
        rows_.AddHistory(row, now, TouchpointState::kCancelled, c.reason);
        ++counts.cancelled;
        ++counts.cancelled_by_cadence[c.cadence];
        break;
      }
    }
  }
}

void ReplanRows::ReplanBuyer(const Rules& rules, const PurchaseReplanner& replan,
                             std::int64_t buyer, Instant now, ReplanCounts& counts) {
  buyer_name_.tryReset();
  buyer_name_.bind(1, buyer);
  if (!buyer_name_.executeStep()) {
    buyer_name_.tryReset();
    return;
  }
  const std::string buyer_id = buyer_name_.getColumn(0).getString();
  buyer_name_.tryReset();
  const std::vector<StoredPurchase> purchases = LoadPurchases(buyer, buyer_id);
  std::vector<PastPurchase> all;
  all.reserve(purchases.size());
  for (const StoredPurchase& p : purchases) {
    all.push_back({p.purchase.purchased_at, rules.ProductIndex(p.purchase.product),
                   p.purchase.amount, p.purchase.quantity, p.zone});
  }
  std::vector<PastPurchase> others;
  const std::vector<std::string> stop_types = StopTypes(rules);
  const std::string stop_json = sql::JsonStrings(stop_types);
  std::vector<BuyerEvent> events;
  for (std::size_t i = 0; i < purchases.size(); ++i) {
    const StoredPurchase& p = purchases[i];
    const bool pending = std::any_of(
        p.touchpoints.begin(), p.touchpoints.end(),
        [](const ExistingTouchpoint& t) { return t.state == TouchpointState::kPending; });
    if (!pending) continue;
    others.assign(all.begin(), all.end());
    others.erase(others.begin() + static_cast<std::ptrdiff_t>(i));
    // The buyer's first answers since the purchase (planner.h's `events`).
    events.clear();
    if (!stop_types.empty()) {
      auto& q = first_events_since_;
      q.tryReset();
      q.bind(1, buyer);
      q.bind(2, Ms(p.purchase.purchased_at));
      BindText(q, 3, stop_json);
      while (q.executeStep()) {
        const int type = rules.EngagementTypeIndex(q.getColumn(0).getString());
        if (type >= 0) events.push_back({FromMs(q.getColumn(1).getInt64()), type});
      }
      q.tryReset();
    }
    const PurchaseReplan plan =
        replan(rules, others, p.purchase, all[i].product, p.zone, p.touchpoints, now, events);
    ApplyChanges(rules, p.row, buyer, plan.tier, plan.changes, now, counts);
  }
}

StatusOr<PlanningState> ReplanRows::Planning() {
  return Guard("read the planning state", [&]() -> StatusOr<PlanningState> {
    PlanningState state;
    SQLite::Statement q(db_.sql(),
                        "SELECT fingerprint, replanning, next_at, due_at, cadence_order, "
                        "step_order, touchpoint, buyer FROM planning WHERE id = 1");
    if (!q.executeStep()) return state;
    state.fingerprint = q.getColumn(0).getString();
    fingerprint_ = state.fingerprint;
    state.replanning = q.getColumn(1).getInt() != 0;
    sweep_ = Sweep{};
    replanned_.clear();
    if (state.replanning && !q.getColumn(2).isNull()) {
      // A place saved before schema 12 has no buyer: the sweep goes
      // through that instant's rows again.
      const std::int64_t buyer = q.getColumn(7).isNull() ? INT64_MIN : q.getColumn(7).getInt64();
      sweep_ = {q.getColumn(2).getInt64(), q.getColumn(3).getInt64(), buyer,
                q.getColumn(4).getInt64(), q.getColumn(5).getInt64(), q.getColumn(6).getInt64()};
    }
    return state;
  });
}

Status ReplanRows::SetPlanning(std::string_view fingerprint, bool replan) {
  Status s = db_.Atomically("record the planning state", [&] {
    SavePlanning(fingerprint, replan ? std::optional<Sweep>(Sweep{}) : std::nullopt);
    sweep_ = Sweep{};
    replanned_.clear();
  });
  // Only once recorded: a step by the rules before goes on otherwise.
  if (s.ok()) fingerprint_ = fingerprint;
  return s;
}

StatusOr<ReplanStep> ReplanRows::ReplanSome(const Rules& rules, const PurchaseReplanner& replan,
                                            std::string_view fingerprint,
                                            std::chrono::steady_clock::time_point deadline,
                                            Instant now) {
  ReplanStep step;
  if (fingerprint != fingerprint_) {  // a re-plan to other rules: not this caller's
    step.superseded = step.done = true;
    step.covered = Instant::max();
    return step;
  }
  Status result = Status::Ok();
  {
    // All or nothing: no savepoint per buyer.
    Transaction txn(db_, Transaction::Calls::kAllOrNothing);
    if (!txn.status().ok()) return txn.status();
    try {
      constexpr int kRowsPerRead = 256;
      struct Row {
        Sweep at;
        std::int64_t buyer;
      };
      std::vector<Row> rows;
      bool out_of_time = false;
      while (!out_of_time) {
        auto& q = sweep_rows_;
        q.tryReset();
        q.bind(1, sweep_.next_at);
        q.bind(2, sweep_.due_at);
        q.bind(3, sweep_.buyer);
        q.bind(4, sweep_.cadence_order);
        q.bind(5, sweep_.step_order);
        q.bind(6, sweep_.id);
        q.bind(7, kRowsPerRead);
        rows.clear();
        while (q.executeStep()) {
          rows.push_back(
              {{q.getColumn(2).getInt64(), q.getColumn(3).getInt64(), q.getColumn(1).getInt64(),
                q.getColumn(4).getInt64(), q.getColumn(5).getInt64(), q.getColumn(0).getInt64()},
               q.getColumn(1).getInt64()});
        }
        q.tryReset();
        if (rows.empty()) {
          step.done = true;
          break;
        }
        for (const Row& r : rows) {
          sweep_ = r.at;
          const auto buyer = static_cast<std::size_t>(r.buyer);
          if (buyer >= replanned_.size()) replanned_.resize(buyer + 1 + buyer / 4, false);
          if (replanned_[buyer]) continue;
          replanned_[buyer] = true;
          ReplanBuyer(rules, replan, r.buyer, now, step.counts);
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
      SaveSweep(step.done ? std::nullopt : std::optional<Sweep>(sweep_));
      result = txn.Commit();
    } catch (const std::exception& e) {
      result = Failed("re-plan", e);
    }
  }  // rolled back here unless committed
  if (!result.ok()) {
    (void)Planning();  // back to the position the file holds
    return result;
  }
  if (step.done) replanned_.clear();
  step.covered = step.done ? Instant::max() : FromMs(sweep_.next_at);
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

}  // namespace tp
