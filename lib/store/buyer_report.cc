#include "store/buyer_report.h"

#include <SQLiteCpp/SQLiteCpp.h>

#include <string>
#include <unordered_map>
#include <utility>

#include "core/ids.h"
#include "store/sql.h"

namespace tp {

using sql::FromMs;
using sql::Guard;
using sql::StateFrom;
using sql::Text;

namespace {

// The buyer's (?1) last ?2 purchases, by the index on (buyer, purchased_at).
constexpr const char* kShown =
    "SELECT id FROM purchases WHERE buyer = ?1 ORDER BY purchased_at DESC, id DESC LIMIT ?2";

}  // namespace

StatusOr<std::optional<BuyerReport>> BuyerReports::GetBuyer(std::string_view buyer_id,
                                                            std::int64_t last_purchases) {
  return Guard("get buyer", [&]() -> StatusOr<std::optional<BuyerReport>> {
    BuyerReport report;
    report.buyer_id = std::string(buyer_id);
    auto buyer = rows_.FindBuyer(buyer_id, &report.opted_out);
    if (!buyer) return std::optional<BuyerReport>();
    SQLite::Statement p(db_.sql(),
                        std::string("SELECT order_id, product, quantity, amount, purchased_at, "
                                    "timezone, zone, tier, attributes, received_at FROM purchases "
                                    "WHERE id IN (") +
                            kShown + ") ORDER BY purchased_at, id");
    p.bind(1, *buyer);
    p.bind(2, last_purchases);
    while (p.executeStep()) {
      PurchaseRecord& r = report.purchases.emplace_back();
      r.purchase.order_id = p.getColumn(0).getString();
      r.purchase.buyer_id = report.buyer_id;
      r.purchase.product = p.getColumn(1).getString();
      r.purchase.quantity = p.getColumn(2).getInt64();
      r.purchase.amount = p.getColumn(3).getDouble();
      r.purchase.purchased_at = FromMs(p.getColumn(4).getInt64());
      r.purchase.timezone = p.getColumn(5).getString();
      r.zone = p.getColumn(6).getString();
      r.tier = p.getColumn(7).getString();
      r.purchase.attributes = Text(p.getColumn(8));
      r.received_at = FromMs(p.getColumn(9).getInt64());
    }
    if (!report.purchases.empty()) report.tier = report.purchases.back().tier;
    SQLite::Statement all(db_.sql(), "SELECT count(*) FROM purchases WHERE buyer = ?");
    all.bind(1, *buyer);
    all.executeStep();
    report.earlier_purchases =
        all.getColumn(0).getInt64() - static_cast<std::int64_t>(report.purchases.size());

    SQLite::Statement t(
        db_.sql(),
        "SELECT t.id, p.order_id, t.cadence, t.step, t.topic, COALESCE(t.tier, p.tier), "
        "p.product, p.zone, t.due_at, t.next_at, t.fire_at, t.state, t.reason FROM touchpoints t "
        "JOIN purchases p ON p.id = t.purchase WHERE t.buyer = ?1 AND t.purchase IN (" +
            std::string(kShown) + ") ORDER BY t.due_at, t.cadence_order, t.step_order, t.id");
    t.bind(1, *buyer);
    t.bind(2, last_purchases);
    std::unordered_map<std::int64_t, std::size_t> index;
    while (t.executeStep()) {
      index.emplace(t.getColumn(0).getInt64(), report.touchpoints.size());
      TouchpointRecord& r = report.touchpoints.emplace_back();
      r.order_id = t.getColumn(1).getString();
      r.cadence = t.getColumn(2).getString();
      r.step = t.getColumn(3).getString();
      r.id = TouchpointId(r.order_id, r.cadence, r.step);
      r.topic = t.getColumn(4).getString();
      r.tier = t.getColumn(5).getString();
      r.product = t.getColumn(6).getString();
      r.zone = t.getColumn(7).getString();
      r.due_at = FromMs(t.getColumn(8).getInt64());
      r.next_at = FromMs(t.getColumn(9).getInt64());
      if (!t.getColumn(10).isNull()) r.fire_at = FromMs(t.getColumn(10).getInt64());
      r.state = StateFrom(t.getColumn(11).getInt());
      r.reason = Text(t.getColumn(12));
    }
    SQLite::Statement h(db_.sql(),
                        "SELECT h.touchpoint, h.at, h.state, h.reason FROM touchpoint_history h "
                        "JOIN touchpoints t ON t.id = h.touchpoint WHERE t.buyer = ?1 AND "
                        "t.purchase IN (" +
                            std::string(kShown) + ") ORDER BY h.rowid");
    h.bind(1, *buyer);
    h.bind(2, last_purchases);
    while (h.executeStep()) {
      auto it = index.find(h.getColumn(0).getInt64());
      if (it == index.end()) continue;
      report.touchpoints[it->second].history.push_back({FromMs(h.getColumn(1).getInt64()),
                                                        StateFrom(h.getColumn(2).getInt()),
                                                        h.getColumn(3).getString()});
    }
    return std::optional<BuyerReport>(std::move(report));
  });
}

}  // namespace tp
