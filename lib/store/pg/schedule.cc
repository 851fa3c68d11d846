// The ingest side of the PostgreSQL schedule: purchases and buyers, and the
// rows several calls write (buyers locked, history lines).
#include <date/tz.h>

#include <utility>

#include "store/pg/rows.h"
#include "store/pg/tables.h"

namespace tp::pgstore {

using sql::FromMs;
using sql::Ms;
using sql::StateCode;

namespace {

const pg::Statement kBuyerInsert(
    "INSERT INTO buyers (buyer_id, created_at) VALUES ($1, $2) "
    "ON CONFLICT (buyer_id) DO NOTHING RETURNING id, opted_out");
const pg::Statement kMatchPurchase(
    "SELECT b.buyer_id, p.product, p.quantity, p.amount, p.purchased_at, p.timezone, "
    "p.attributes, p.zone FROM purchases p JOIN buyers b ON b.id = p.buyer "
    "WHERE p.order_id = $1");
const pg::Statement kBuyerHistory(
    "SELECT purchased_at, product, amount, quantity, zone FROM purchases WHERE buyer = $1 "
    "ORDER BY purchased_at, id");
const pg::Statement kPurchaseInsert(
    "INSERT INTO purchases (order_id, buyer, product, quantity, amount, purchased_at, timezone, "
    "zone, tier, attributes, received_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) "
    "RETURNING id");
// A purchase's touchpoints in one statement, with the history lines of
// those born final (skipped: missed long ago; suppressed: opted out).
const pg::Statement kTouchpointsInsert(
    "WITH planned AS (SELECT * FROM unnest($3::text[], $4::text[], $5::text[], $6::int[], "
    "$7::int[], $8::int[], $9::smallint[], $10::bigint[], $11::bigint[], $12::text[]) AS "
    "u(cadence, step, topic, cadence_order, step_order, cancel, state, due_at, next_at, reason)), "
    "ins AS (INSERT INTO touchpoints (purchase, buyer, cadence, step, topic, cadence_order, "
    "step_order, cancel_on_repurchase, state, due_at, next_at, reason) SELECT $1, $2, cadence, "
    "step, topic, cadence_order, step_order, cancel <> 0, state, due_at, next_at, "
    "NULLIF(reason, '') FROM planned RETURNING id, state, reason) "
    "INSERT INTO touchpoint_history (touchpoint, at, state, reason) "
    "SELECT id, $13, state, reason FROM ins WHERE state <> 0");
const pg::Statement kCancelEarlier(
    "UPDATE touchpoints SET state = 2, reason = $1 WHERE buyer = $2 AND state = 0 AND "
    "cancel_on_repurchase AND purchase IN (SELECT id FROM purchases WHERE buyer = $2 AND "
    "purchased_at <= $3 AND order_id <> $4) RETURNING id, cadence");
const pg::Statement kSetOptedOut("UPDATE buyers SET opted_out = $1 WHERE id = $2");
const pg::Statement kSuppress(
    "UPDATE touchpoints SET state = 3, reason = $1 WHERE buyer = $2 AND state = 0 "
    "RETURNING id, cadence");

// `stored` (planned in the zone named `stored_zone`) against a purchase
// with the same order id.
PurchaseMatch Compare(Purchase stored, std::string_view stored_zone, const Purchase& purchase,
                      const Zone* zone) {
  // The zone it was planned in: a timezone naming it is the same one.
  if (zone != nullptr && stored_zone == zone->name()) stored.timezone = purchase.timezone;
  const std::string_view differs = stored.FirstDifference(purchase);
  if (differs.empty()) return PurchaseMatch{PurchaseMatch::Kind::kSame};
  return PurchaseMatch{PurchaseMatch::Kind::kConflict, std::string(differs)};
}

PurchaseMatch Compare(const pg::Result& r, const Purchase& purchase, const Zone* zone) {
  Purchase stored;
  stored.order_id = purchase.order_id;
  stored.buyer_id = std::string(r.Text(0, 0));
  stored.product = std::string(r.Text(0, 1));
  stored.quantity = r.Int64(0, 2);
  stored.amount = r.Double(0, 3);
  stored.purchased_at = FromMs(r.Int64(0, 4));
  stored.timezone = std::string(r.Text(0, 5));
  if (!r.IsNull(0, 6)) stored.attributes = std::string(r.Text(0, 6));
  return Compare(std::move(stored), r.Text(0, 7), purchase, zone);
}

}  // namespace

Tables::Tables(Session& session, const RulesInForce& rules) : session_(session), rules_(rules) {}

void Tables::TakeBuyersTurn(std::string_view buyer_id) {
  pg::Connection& c = session_.conn();
  if (Ahead* a = Current(); a != nullptr) {
    const std::string id(buyer_id);
    return TakeTurns(*a, c, std::span<const std::string>(&id, 1));
  }
  pgstore::TakeBuyersTurn(c, buyer_id);
}

std::optional<std::int64_t> Tables::FindBuyer(std::string_view buyer_id, Instant now, bool create,
                                              bool* opted_out) {
  pg::Connection& c = session_.conn();  // writes what is held first: ids known
  TakeBuyersTurn(buyer_id);
  Ahead* a = Current();
  Ahead::Buyer* kept = a != nullptr ? a->FindBuyer(buyer_id) : nullptr;
  if (kept != nullptr && kept->id) {
    if (opted_out != nullptr) *opted_out = kept->opted_out;
    return kept->id;
  }
  // A buyer kept without an id is not in the table: its turn is held.
  if (kept == nullptr) {
    if (auto id = FindBuyerRow(c, buyer_id, opted_out)) return id;
  }
  if (!create) return std::nullopt;
  // One another daemon inserts meanwhile is waited for, then read.
  pg::Result r = c.Run(kBuyerInsert, pg::Params().Add(buyer_id).Add(Ms(now)));
  if (r.rows() > 0) {
    if (opted_out != nullptr) *opted_out = false;
    if (kept != nullptr) kept->id = r.Int64(0, 0);
    return r.Int64(0, 0);
  }
  if (kept != nullptr) a->buyers.erase(std::string(buyer_id));
  return FindBuyerRow(c, buyer_id, opted_out);
}

void Tables::FinishReturned(const pg::Result& r, Instant now, TouchpointState state,
                            std::string_view reason, CadenceCounts& counts) {
  std::vector<std::int64_t> ids;
  ids.reserve(static_cast<std::size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) {
    ids.push_back(r.Int64(i, 0));
    ++counts[std::string(r.Text(i, 1))];
  }
  AddHistory(session_.conn(), ids, now, state, reason);
}

StatusOr<PurchaseMatch> Tables::MatchPurchase(const Purchase& purchase, const Zone* zone) {
  if (Ahead* a = Current()) {
    if (auto it = a->orders.find(purchase.order_id); it != a->orders.end()) {
      if (!it->second) return PurchaseMatch{};
      return Compare(it->second->purchase, it->second->zone, purchase, zone);
    }
  }
  PurchaseMatch match;
  Status s = session_.Atomically("match purchase", [&] {
    pg::Connection& c = session_.conn();
    pg::Result r = c.Run(kMatchPurchase, pg::Params().Add(purchase.order_id));
    if (r.rows() > 0) {
      match = Compare(r, purchase, zone);
      return;
    }
    // New here: take the buyer's turn, then look again, since another
    // daemon may have recorded it while this one waited.
    TakeBuyersTurn(purchase.buyer_id);
    r = c.Run(kMatchPurchase, pg::Params().Add(purchase.order_id));
    if (r.rows() > 0) match = Compare(r, purchase, zone);
  });
  if (!s.ok()) return s;
  return match;
}

StatusOr<BuyerState> Tables::LoadBuyer(std::string_view buyer_id) {
  if (Ahead* a = Current()) {
    if (const Ahead::Buyer* b = a->FindBuyer(buyer_id)) return BuyerState{b->opted_out, b->history};
  }
  BuyerState state;
  Status s = session_.Atomically("load buyer", [&] {
    auto id = FindBuyer(buyer_id, Instant{}, /*create=*/false, &state.opted_out);
    if (!id) return;
    pg::Result r = session_.conn().Run(kBuyerHistory, pg::Params().Add(*id));
    const Rules& rules = *rules_;
    state.history.reserve(static_cast<std::size_t>(r.rows()));
    for (int i = 0; i < r.rows(); ++i) {
      state.history.push_back({FromMs(r.Int64(i, 0)), rules.ProductIndex(r.Text(i, 1)),
                               r.Double(i, 2), r.Int64(i, 3), zones_.Named(r.Text(i, 4))});
    }
  });
  if (!s.ok()) return s;
  return state;
}

Status Tables::AddPurchase(const Purchase& purchase, const Zone* zone, int tier,
                           std::span<const PlannedTouchpoint> touchpoints, Instant now) {
  if (Current() != nullptr) {
    bool held = false;
    Status s = session_.Atomically("hold purchase", [&] {
      // Looked up here: a savepoint taken first writes what is held, which
      // may forget a buyer (WriteHeld).
      Ahead* a = Current();
      Ahead::Buyer* b = a != nullptr ? a->FindBuyer(purchase.buyer_id) : nullptr;
      if (b == nullptr) return;
      Hold(*a, *b, purchase, zone, tier, touchpoints, now);
      held = true;
    });
    if (!s.ok() || held) return s;
  }
  return session_.Atomically("add purchase", [&] {
    const Rules& rules = *rules_;
    const std::int64_t buyer = *FindBuyer(purchase.buyer_id, now, /*create=*/true);
    pg::Connection& c = session_.conn();
    pg::Result p;
    try {
      p = c.Run(kPurchaseInsert, pg::Params()
                                     .Add(purchase.order_id)
                                     .Add(buyer)
                                     .Add(purchase.product)
                                     .Add(purchase.quantity)
                                     .Add(purchase.amount)
                                     .Add(Ms(purchase.purchased_at))
                                     .Add(purchase.timezone)
                                     .Add(zone->name())
                                     .Add(rules.tiers[static_cast<std::size_t>(tier)].name)
                                     .AddTextOrNull(purchase.attributes)
                                     .Add(Ms(now)));
    } catch (const pg::Error& e) {
      RethrowOrderRace(e);
    }
    // A later call for this order in the group reads it from what is kept.
    if (Ahead* a = Current()) a->orders[purchase.order_id] = Ahead::Order{purchase, zone->name()};
    if (touchpoints.empty()) return;
    std::vector<std::string> cadence, step, topic, reason;
    std::vector<std::int64_t> cadence_order, step_order, cancel, state, due_at, next_at;
    for (const PlannedTouchpoint& t : touchpoints) {
      const Cadence& cd = rules.cadences[static_cast<std::size_t>(t.cadence)];
      const Step& st = cd.steps[static_cast<std::size_t>(t.step)];
      cadence.push_back(cd.name);
      step.push_back(st.id);
      topic.push_back(st.topic);
      reason.push_back(t.reason);
      cadence_order.push_back(t.cadence);
      step_order.push_back(t.step);
      cancel.push_back(t.cancel_on_repurchase ? 1 : 0);
      state.push_back(StateCode(t.state));
      due_at.push_back(Ms(t.due_at));
      next_at.push_back(Ms(t.next_at));
    }
    c.Run(kTouchpointsInsert, pg::Params()
                                  .Add(p.Int64(0, 0))
                                  .Add(buyer)
                                  .AddArray(cadence)
                                  .AddArray(step)
                                  .AddArray(topic)
                                  .AddArray(cadence_order)
                                  .AddArray(step_order)
                                  .AddArray(cancel)
                                  .AddArray(state)
                                  .AddArray(due_at)
                                  .AddArray(next_at)
                                  .AddArray(reason)
                                  .Add(Ms(now)));
  });
}

StatusOr<CadenceCounts> Tables::CancelEarlier(std::string_view buyer_id, Instant up_to,
                                              std::string_view except_order, Instant now,
                                              std::string_view reason) {
  CadenceCounts counts;
  if (Ahead* a = Current()) {
    // No purchases, no touchpoints to cancel.
    const Ahead::Buyer* b = a->FindBuyer(buyer_id);
    if (b != nullptr && b->history.empty()) return counts;
  }
  Status s = session_.Atomically("cancel earlier touchpoints", [&] {
    auto buyer = FindBuyer(buyer_id, now, /*create=*/false);
    if (!buyer) return;
    pg::Result r = session_.conn().Run(
        kCancelEarlier, pg::Params().Add(reason).Add(*buyer).Add(Ms(up_to)).Add(except_order));
    FinishReturned(r, now, TouchpointState::kCancelled, reason, counts);
  });
  if (!s.ok()) return s;
  return counts;
}

StatusOr<CadenceCounts> Tables::SetOptedOut(std::string_view buyer_id, bool opted_out,
                                            Instant now) {
  CadenceCounts counts;
  Status s = session_.Atomically("set opt-out", [&] {
    const std::int64_t buyer = *FindBuyer(buyer_id, now, /*create=*/true);
    pg::Connection& c = session_.conn();
    c.Run(kSetOptedOut, pg::Params().Add(opted_out).Add(buyer));
    if (Ahead* a = Current()) {
      if (Ahead::Buyer* b = a->FindBuyer(buyer_id)) b->opted_out = opted_out;
    }
    if (!opted_out) return;
    static constexpr std::string_view kReason = "opted out";
    pg::Result r = c.Run(kSuppress, pg::Params().Add(kReason).Add(buyer));
    FinishReturned(r, now, TouchpointState::kSuppressed, kReason, counts);
  });
  if (!s.ok()) return s;
  return counts;
}

}  // namespace tp::pgstore
