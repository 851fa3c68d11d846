#include "store/schedule_tables.h"

#include <date/tz.h>

#include <string>

#include "store/sql.h"

namespace tp {

using sql::BindText;
using sql::BindTextOrNull;
using sql::FromMs;
using sql::Guard;
using sql::Ms;
using sql::Text;

ScheduleTables::ScheduleTables(Database& db, RowWriter& rows)
    : db_(db),
      rows_(rows),
      match_(db.sql(),
             "SELECT b.buyer_id, p.product, p.quantity, p.amount, p.purchased_at, p.timezone, "
             "p.attributes, p.zone FROM purchases p JOIN buyers b ON b.id = p.buyer "
             "WHERE p.order_id = ?"),
      buyer_history_(db.sql(),
                     "SELECT purchased_at, product, amount, quantity, zone FROM purchases "
                     "WHERE buyer = ? "
                     "ORDER BY purchased_at, id"),
      purchase_insert_(db.sql(),
                       "INSERT INTO purchases (order_id, buyer, product, quantity, amount, "
                       "purchased_at, timezone, zone, tier, attributes, received_at) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
      cancel_earlier_(db.sql(),
                      "UPDATE touchpoints SET state = 2, reason = ?1 WHERE buyer = ?2 AND "
                      "state = 0 AND cancel_on_repurchase = 1 AND purchase IN (SELECT id FROM "
                      "purchases WHERE buyer = ?2 AND purchased_at <= ?3 AND order_id <> ?4) "
                      "RETURNING id, cadence"),
      set_opted_out_(db.sql(), "UPDATE buyers SET opted_out = ? WHERE id = ?"),
      suppress_(db.sql(),
                "UPDATE touchpoints SET state = 3, reason = ? WHERE buyer = ? AND state = 0 "
                "RETURNING id, cadence") {}

StatusOr<PurchaseMatch> ScheduleTables::MatchPurchase(const Purchase& purchase, const Zone* zone) {
  return Guard("match purchase", [&]() -> StatusOr<PurchaseMatch> {
    auto& q = match_;
    q.tryReset();
    BindText(q, 1, purchase.order_id);
    if (!q.executeStep()) return PurchaseMatch{};
    Purchase stored;
    stored.order_id = purchase.order_id;
    stored.buyer_id = q.getColumn(0).getString();
    stored.product = q.getColumn(1).getString();
    stored.quantity = q.getColumn(2).getInt64();
    stored.amount = q.getColumn(3).getDouble();
    stored.purchased_at = FromMs(q.getColumn(4).getInt64());
    stored.timezone = q.getColumn(5).getString();
    stored.attributes = Text(q.getColumn(6));
    // The zone it was planned in: a timezone naming it is the same one.
    if (zone != nullptr && q.getColumn(7).getString() == zone->name()) {
      stored.timezone = purchase.timezone;
    }
    q.tryReset();
    const std::string_view differs = stored.FirstDifference(purchase);
    if (differs.empty()) return PurchaseMatch{PurchaseMatch::Kind::kSame};
    return PurchaseMatch{PurchaseMatch::Kind::kConflict, std::string(differs)};
  });
}

StatusOr<BuyerState> ScheduleTables::LoadBuyer(const Rules& rules, std::string_view buyer_id) {
  return Guard("load buyer", [&]() -> StatusOr<BuyerState> {
    BuyerState state;
    auto id = rows_.FindBuyer(buyer_id, &state.opted_out);
    if (!id) return state;
    auto& q = buyer_history_;
    q.tryReset();
    q.bind(1, *id);
    while (q.executeStep()) {
      state.history.push_back({FromMs(q.getColumn(0).getInt64()),
                               rules.ProductIndex(q.getColumn(1).getString()),
                               q.getColumn(2).getDouble(), q.getColumn(3).getInt64(),
                               zones_.Named(sql::TextView(q.getColumn(4)))});
    }
    q.tryReset();
    return state;
  });
}

Status ScheduleTables::AddPurchase(const Rules& rules, const Purchase& purchase, const Zone* zone,
                                   int tier, std::span<const PlannedTouchpoint> touchpoints,
                                   Instant now) {
  return db_.Atomically("add purchase", [&] {
    const std::int64_t buyer = rows_.EnsureBuyer(purchase.buyer_id, now);
    auto& p = purchase_insert_;
    p.tryReset();
    BindText(p, 1, purchase.order_id);
    p.bind(2, buyer);
    BindText(p, 3, purchase.product);
    p.bind(4, purchase.quantity);
    p.bind(5, purchase.amount);
    p.bind(6, Ms(purchase.purchased_at));
    BindText(p, 7, purchase.timezone);
    BindText(p, 8, zone->name());
    BindText(p, 9, rules.tiers[tier].name);
    BindTextOrNull(p, 10, purchase.attributes);
    p.bind(11, Ms(now));
    p.exec();
    const std::int64_t purchase_row = db_.sql().getLastInsertRowid();
    for (const PlannedTouchpoint& planned : touchpoints) {
      const std::int64_t row = rows_.InsertTouchpoint(rules, purchase_row, buyer, planned);
      if (planned.state != TouchpointState::kPending) {
        rows_.AddHistory(row, now, planned.state, planned.reason);
      }
    }
  });
}

StatusOr<CadenceCounts> ScheduleTables::CancelEarlier(std::string_view buyer_id, Instant up_to,
                                                      std::string_view except_order, Instant now,
                                                      std::string_view reason) {
  CadenceCounts counts;
  Status s = db_.Atomically("cancel earlier touchpoints", [&] {
    auto buyer = rows_.FindBuyer(buyer_id);
    if (!buyer) return;
    auto& q = cancel_earlier_;
    q.tryReset();
    BindText(q, 1, reason);
    q.bind(2, *buyer);
    q.bind(3, Ms(up_to));
    BindText(q, 4, except_order);
    rows_.FinishReturned(q, now, TouchpointState::kCancelled, reason, counts);
  });
  if (!s.ok()) return s;
  return counts;
}

StatusOr<CadenceCounts> ScheduleTables::SetOptedOut(std::string_view buyer_id, bool opted_out,
                                                    Instant now) {
  CadenceCounts counts;
  Status s = db_.Atomically("set opt-out", [&] {
    const std::int64_t buyer = rows_.EnsureBuyer(buyer_id, now);
    set_opted_out_.tryReset();
    set_opted_out_.bind(1, opted_out ? 1 : 0);
    set_opted_out_.bind(2, buyer);
    set_opted_out_.exec();
    if (!opted_out) return;
    auto& q = suppress_;
    q.tryReset();
    static constexpr std::string_view kReason = "opted out";
    BindText(q, 1, kReason);
    q.bind(2, buyer);
    rows_.FinishReturned(q, now, TouchpointState::kSuppressed, kReason, counts);
  });
  if (!s.ok()) return s;
  return counts;
}

}  // namespace tp
