#include "store/pg/replan_load.h"

#include <algorithm>
#include <utility>

#include "core/ids.h"

namespace tp::pgstore {

using sql::FromMs;
using sql::StateFrom;

namespace {

const pg::Statement kPurchasesOf(
    "SELECT buyer, id, order_id, product, quantity, amount, purchased_at, timezone, zone, "
    "attributes FROM purchases WHERE buyer = ANY($1::bigint[]) ORDER BY buyer, purchased_at, id");
const pg::Statement kTouchpointsOf(
    "SELECT purchase, cadence, step, state, due_at, next_at, id FROM touchpoints "
    "WHERE buyer = ANY($1::bigint[]) ORDER BY id");
// For each purchase, its buyer's first event of each of $2 at or after
// its purchased_at (planner.h's `events`), by events_by_buyer.
const pg::Statement kEventsOfPurchases(
    "SELECT p.id, e.type, min(e.at) FROM purchases p JOIN events e ON e.buyer = p.buyer AND "
    "e.at >= p.purchased_at WHERE p.id = ANY($1::bigint[]) AND e.type = ANY($2::text[]) "
    "GROUP BY p.id, e.type");

}  // namespace

bool ReplanRows::pending() const {
  return std::any_of(touchpoints.begin(), touchpoints.end(), [](const ExistingTouchpoint& t) {
    return t.state == TouchpointState::kPending;
  });
}

std::unordered_map<std::int64_t, std::vector<ReplanRows>> LoadForReplan(
    pg::Connection& c, const Rules& rules, sql::ZoneCache& zones,
    const std::vector<std::int64_t>& buyers,
    const std::unordered_map<std::int64_t, std::string>& names) {
  std::unordered_map<std::int64_t, std::vector<ReplanRows>> purchases;
  std::unordered_map<std::int64_t, std::pair<std::int64_t, std::size_t>> index;
  pg::Result p = c.Run(kPurchasesOf, pg::Params().AddArray(buyers));
  for (int i = 0; i < p.rows(); ++i) {
    const std::int64_t buyer = p.Int64(i, 0);
    auto name = names.find(buyer);
    if (name == names.end()) continue;
    std::vector<ReplanRows>& of = purchases[buyer];
    ReplanRows& sp = of.emplace_back();
    sp.row = p.Int64(i, 1);
    index.emplace(sp.row, std::pair(buyer, of.size() - 1));
    sp.purchase.order_id = std::string(p.Text(i, 2));
    sp.purchase.buyer_id = name->second;
    sp.purchase.product = std::string(p.Text(i, 3));
    sp.purchase.quantity = p.Int64(i, 4);
    sp.purchase.amount = p.Double(i, 5);
    sp.purchase.purchased_at = FromMs(p.Int64(i, 6));
    sp.purchase.timezone = std::string(p.Text(i, 7));
    sp.zone = zones.Named(p.Text(i, 8));
    if (!p.IsNull(i, 9)) sp.purchase.attributes = std::string(p.Text(i, 9));
  }
  const auto at = [&](std::int64_t row) -> ReplanRows* {
    auto it = index.find(row);
    return it == index.end() ? nullptr : &purchases[it->second.first][it->second.second];
  };
  pg::Result t = c.Run(kTouchpointsOf, pg::Params().AddArray(buyers));
  for (int i = 0; i < t.rows(); ++i) {
    ReplanRows* sp = at(t.Int64(i, 0));
    if (sp == nullptr) continue;
    std::string cadence(t.Text(i, 1));
    std::string id = TouchpointId(sp->purchase.order_id, cadence, t.Text(i, 2));
    sp->touchpoints.push_back({std::move(id), std::move(cadence),
                               StateFrom(static_cast<int>(t.Int64(i, 3))), FromMs(t.Int64(i, 4)),
                               FromMs(t.Int64(i, 5)), static_cast<std::uint64_t>(t.Int64(i, 6))});
  }
  if (const std::vector<std::string> types = StopTypes(rules); !types.empty()) {
    std::vector<std::int64_t> pending;
    for (const auto& [buyer, of] : purchases) {
      for (const ReplanRows& sp : of) {
        if (sp.pending()) pending.push_back(sp.row);
      }
    }
    pg::Result e = c.Run(kEventsOfPurchases, pg::Params().AddArray(pending).AddArray(types));
    for (int i = 0; i < e.rows(); ++i) {
      const int type = rules.EngagementTypeIndex(e.Text(i, 1));
      ReplanRows* sp = at(e.Int64(i, 0));
      if (type >= 0 && sp != nullptr) sp->events.push_back({FromMs(e.Int64(i, 2)), type});
    }
  }
  return purchases;
}

}  // namespace tp::pgstore
