// A group's ingest in few statements: PrepareIngest() takes a batch's turns
// and reads its buyers and orders at once, the calls for its purchases read
// what was kept, and the new purchases are written as one statement.
// Round trips, not the server's work, bounded ingest on PostgreSQL: about
// fourteen per purchase before (docs/benchmarks.md, "On PostgreSQL").
#include <date/tz.h>

#include <algorithm>
#include <utility>

#include "store/pg/rows.h"
#include "store/pg/tables.h"

namespace tp::pgstore {

using sql::FromMs;
using sql::Ms;
using sql::StateCode;

namespace {

// Each buyer's row and purchases (one row of NULLs for one without), in
// LoadBuyer()'s order.
const pg::Statement kBuyersAhead(
    "SELECT b.buyer_id, b.id, b.opted_out, p.purchased_at, p.product, p.amount, p.quantity, "
    "p.zone FROM buyers b LEFT JOIN purchases p ON p.buyer = b.id "
    "WHERE b.buyer_id = ANY($1::text[]) ORDER BY b.id, p.purchased_at, p.id");
// For each (buyer, since) pair, by its ordinal: the buyer's first event of
// each of $3 at or after it (FirstEventsSince()), by events_by_buyer.
const pg::Statement kEventsAhead(
    "SELECT u.n, e.type, min(e.at) FROM unnest($1::text[], $2::bigint[]) WITH ORDINALITY AS "
    "u(buyer_id, since, n) JOIN buyers b ON b.buyer_id = u.buyer_id JOIN events e ON "
    "e.buyer = b.id AND e.at >= u.since WHERE e.type = ANY($3::text[]) GROUP BY u.n, e.type");
const pg::Statement kOrdersAhead(
    "SELECT p.order_id, b.buyer_id, p.product, p.quantity, p.amount, p.purchased_at, p.timezone, "
    "p.attributes, p.zone FROM purchases p JOIN buyers b ON b.id = p.buyer "
    "WHERE p.order_id = ANY($1::text[])");
// The held purchases with their new buyers, touchpoints and the history
// lines of those born final, in the order they were held (so row ids are
// those one statement each would have given); the new buyers' ids.
const pg::Statement kWriteHeld(
    "WITH nb AS (INSERT INTO buyers (buyer_id, created_at) "
    "SELECT b, c FROM unnest($1::text[], $2::bigint[]) WITH ORDINALITY AS u(b, c, n) ORDER BY n "
    "ON CONFLICT (buyer_id) DO NOTHING RETURNING id, buyer_id), "
    "pu AS (SELECT * FROM unnest($3::text[], $4::text[], $5::bigint[], $6::text[], $7::bigint[], "
    "$8::float8[], $9::bigint[], $10::text[], $11::text[], $12::text[], $13::text[], "
    "$14::bigint[]) WITH ORDINALITY AS u(order_id, buyer_key, known, product, quantity, amount, "
    "purchased_at, timezone, zone, tier, attributes, received_at, n)), "
    "p AS (INSERT INTO purchases (order_id, buyer, product, quantity, amount, purchased_at, "
    "timezone, zone, tier, attributes, received_at) SELECT pu.order_id, "
    "COALESCE(NULLIF(pu.known, 0), nb.id, (SELECT id FROM buyers WHERE buyer_id = pu.buyer_key)), "
    "pu.product, pu.quantity, pu.amount, pu.purchased_at, pu.timezone, pu.zone, pu.tier, "
    "NULLIF(pu.attributes, ''), pu.received_at FROM pu LEFT JOIN nb ON nb.buyer_id = pu.buyer_key "
    "ORDER BY pu.n RETURNING id, buyer, order_id), "
    "pl AS (SELECT * FROM unnest($15::bigint[], $16::text[], $17::text[], $18::text[], "
    "$19::int[], $20::int[], $21::int[], $22::smallint[], $23::bigint[], $24::bigint[], "
    "$25::text[]) WITH ORDINALITY AS u(of, cadence, step, topic, cadence_order, step_order, "
    "cancel, state, due_at, next_at, reason, m)), "
    "t AS (INSERT INTO touchpoints (purchase, buyer, cadence, step, topic, cadence_order, "
    "step_order, cancel_on_repurchase, state, due_at, next_at, reason) SELECT p.id, p.buyer, "
    "pl.cadence, pl.step, pl.topic, pl.cadence_order, pl.step_order, pl.cancel <> 0, pl.state, "
    "pl.due_at, pl.next_at, NULLIF(pl.reason, '') FROM pl JOIN pu ON pu.n = pl.of "
    "JOIN p ON p.order_id = pu.order_id ORDER BY pl.m RETURNING id, purchase, state, reason), "
    "h AS (INSERT INTO touchpoint_history (touchpoint, at, state, reason) "
    "SELECT t.id, pu.received_at, t.state, t.reason FROM t JOIN p ON p.id = t.purchase "
    "JOIN pu ON pu.order_id = p.order_id WHERE t.state <> 0 ORDER BY t.id) "
    "SELECT buyer_id, id FROM nb");

}  // namespace

Tables::Ahead::Buyer* Tables::Ahead::FindBuyer(std::string_view buyer_id) {
  auto it = buyers.find(buyer_id);
  return it == buyers.end() ? nullptr : &it->second;
}

const std::vector<EngagementEvent>* Tables::Ahead::FindEvents(std::string_view buyer_id,
                                                              Instant since) const {
  auto buyer = events.find(buyer_id);
  if (buyer == events.end()) return nullptr;
  auto it = buyer->second.find(Ms(since));
  return it == buyer->second.end() ? nullptr : &it->second;
}

Tables::Ahead* Tables::Current() {
  const std::uint64_t scope = session_.scope();
  if (scope == 0) return nullptr;
  if (ahead_.scope != scope) {
    // A new group, or a savepoint rolled back (the session dropped what
    // was held with it): nothing kept holds any more.
    ahead_ = Ahead{};
    ahead_.scope = scope;
  }
  return &ahead_;
}

bool Tables::AllTurnsHeld() const {
  const std::uint64_t group = session_.group();
  return group != 0 && all_turns_group_ == group &&
         (!all_turns_enclosed_ || all_turns_scope_ == session_.scope());
}

void Tables::TakeTurns(Ahead& ahead, pg::Connection& c, std::span<const std::string> buyer_ids) {
  if (AllTurnsHeld()) return;
  const std::uint64_t group = session_.group();
  std::vector<std::string> needed;
  std::unordered_set<std::string_view> seen;
  for (const std::string& b : buyer_ids) {
    if (!ahead.turns.contains(b) && seen.insert(b).second) needed.push_back(b);
  }
  if (needed.empty()) return;
  // Counted against what this scope took: turns taken before a savepoint
  // rolled back are held, but were taken as these are, and taken again
  // they take no more of the lock table.
  if (group != 0 && ahead.turns.size() + needed.size() > kTurnsEach) {
    pgstore::TakeAllBuyersTurns(c);
    all_turns_group_ = group;
    all_turns_scope_ = session_.scope();
    all_turns_enclosed_ = session_.enclosed();
    return;
  }
  pgstore::TakeBuyersTurns(c, needed);
  for (std::string& b : needed) ahead.turns.insert(std::move(b));
}

Status Tables::TakeBuyersTurns(std::span<const std::string> buyer_ids) {
  if (session_.scope() == 0) return Status::Ok();
  return session_.Read("take the buyers' turns", [&] {
    pg::Connection& c = session_.conn();  // writes what is held first
    TakeTurns(*Current(), c, buyer_ids);
    return Status::Ok();
  });
}

Status Tables::PrepareIngest(std::span<const Purchase> purchases) {
  if (session_.scope() == 0) return Status::Ok();
  return session_.Atomically("read ahead", [&] {
    pg::Connection& c = session_.conn();  // writes what is held first
    Ahead& a = *Current();
    std::vector<std::string> buyers, orders;
    std::unordered_set<std::string_view> seen_buyers, seen_orders;
    for (const Purchase& p : purchases) {
      if (!a.buyers.contains(p.buyer_id) && seen_buyers.insert(p.buyer_id).second) {
        buyers.push_back(p.buyer_id);
      }
      if (!a.orders.contains(p.order_id) && seen_orders.insert(p.order_id).second) {
        orders.push_back(p.order_id);
      }
    }
    // Read into these, kept only once every read succeeded.
    decltype(a.buyers) read_buyers;
    decltype(a.orders) read_orders;
    decltype(a.events) read_events;
    if (!buyers.empty()) {
      TakeTurns(a, c, buyers);
      for (const std::string& b : buyers) read_buyers.try_emplace(b);
      pg::Result r = c.Run(kBuyersAhead, pg::Params().AddArray(buyers));
      const Rules& rules = *rules_;
      for (int i = 0; i < r.rows(); ++i) {
        Ahead::Buyer& b = read_buyers[std::string(r.Text(i, 0))];
        b.id = r.Int64(i, 1);
        b.opted_out = r.Bool(i, 2);
        if (r.IsNull(i, 3)) continue;
        b.history.push_back({FromMs(r.Int64(i, 3)), rules.ProductIndex(r.Text(i, 4)),
                             r.Double(i, 5), r.Int64(i, 6), zones_.Named(r.Text(i, 7))});
      }
    }
    if (!orders.empty()) {
      for (const std::string& o : orders) read_orders.try_emplace(o);
      pg::Result r = c.Run(kOrdersAhead, pg::Params().AddArray(orders));
      for (int i = 0; i < r.rows(); ++i) {
        Ahead::Order o;
        o.purchase.order_id = std::string(r.Text(i, 0));
        o.purchase.buyer_id = std::string(r.Text(i, 1));
        o.purchase.product = std::string(r.Text(i, 2));
        o.purchase.quantity = r.Int64(i, 3);
        o.purchase.amount = r.Double(i, 4);
        o.purchase.purchased_at = FromMs(r.Int64(i, 5));
        o.purchase.timezone = std::string(r.Text(i, 6));
        if (!r.IsNull(i, 7)) o.purchase.attributes = std::string(r.Text(i, 7));
        o.zone = std::string(r.Text(i, 8));
        read_orders[o.purchase.order_id] = std::move(o);
      }
    }
    if (const std::vector<std::string> types = StopTypes(*rules_); !types.empty()) {
      std::vector<std::string> buyer_of;
      std::vector<std::int64_t> since;
      for (const Purchase& p : purchases) {
        if (!read_events[p.buyer_id].try_emplace(Ms(p.purchased_at)).second) continue;
        buyer_of.push_back(p.buyer_id);
        since.push_back(Ms(p.purchased_at));
      }
      pg::Result r =
          c.Run(kEventsAhead, pg::Params().AddArray(buyer_of).AddArray(since).AddArray(types));
      for (int i = 0; i < r.rows(); ++i) {
        const auto n = static_cast<std::size_t>(r.Int64(i, 0)) - 1;
        EngagementEvent& e = read_events[buyer_of[n]][since[n]].emplace_back();
        e.buyer_id = buyer_of[n];
        e.type = std::string(r.Text(i, 1));
        e.at = FromMs(r.Int64(i, 2));
      }
    }
    a.buyers.merge(read_buyers);
    a.orders.merge(read_orders);
    a.events = std::move(read_events);
  });
}

void Tables::Hold(Ahead& a, Ahead::Buyer& buyer, const Purchase& purchase, const Zone* zone,
                  int tier, std::span<const PlannedTouchpoint> touchpoints, Instant now) {
  const Rules& rules = *rules_;
  Ahead::Held& h = a.held;
  if (h.order_id.empty()) session_.Defer([this] { WriteHeld(); });
  if (!buyer.id && !buyer.held) {
    buyer.held = true;
    h.new_buyers.push_back(purchase.buyer_id);
    h.created_at.push_back(Ms(now));
  }
  h.order_id.push_back(purchase.order_id);
  h.buyer.push_back(purchase.buyer_id);
  h.known.push_back(buyer.id.value_or(0));
  h.product.push_back(purchase.product);
  h.quantity.push_back(purchase.quantity);
  h.amount.push_back(purchase.amount);
  h.purchased_at.push_back(Ms(purchase.purchased_at));
  h.timezone.push_back(purchase.timezone);
  h.zone.push_back(zone->name());
  h.tier.push_back(rules.tiers[static_cast<std::size_t>(tier)].name);
  h.attributes.push_back(purchase.attributes);
  h.received_at.push_back(Ms(now));
  const auto of = static_cast<std::int64_t>(h.order_id.size());
  for (const PlannedTouchpoint& t : touchpoints) {
    const Cadence& cd = rules.cadences[static_cast<std::size_t>(t.cadence)];
    const Step& st = cd.steps[static_cast<std::size_t>(t.step)];
    h.of.push_back(of);
    h.cadence.push_back(cd.name);
    h.step.push_back(st.id);
    h.topic.push_back(st.topic);
    h.reason.push_back(t.reason);
    h.cadence_order.push_back(t.cadence);
    h.step_order.push_back(t.step);
    h.cancel.push_back(t.cancel_on_repurchase ? 1 : 0);
    h.state.push_back(StateCode(t.state));
    h.due_at.push_back(Ms(t.due_at));
    h.next_at.push_back(Ms(t.next_at));
  }
  // What the next calls for this order and buyer read.
  a.orders[purchase.order_id] = Ahead::Order{purchase, zone->name()};
  const PastPurchase past{purchase.purchased_at, rules.ProductIndex(purchase.product),
                          purchase.amount, purchase.quantity, zone};
  // After those made at the same instant: ties in arrival order.
  auto at = std::upper_bound(buyer.history.begin(), buyer.history.end(), past.purchased_at,
                             [](Instant t, const PastPurchase& p) { return t < p.purchased_at; });
  buyer.history.insert(at, past);
}

void Tables::WriteHeld() {
  Ahead* a = Current();
  if (a == nullptr || a->held.order_id.empty()) return;
  Ahead::Held h = std::exchange(a->held, Ahead::Held{});
  pg::Result r;
  try {
    r = session_.conn().Run(kWriteHeld, pg::Params()
                                            .AddArray(h.new_buyers)
                                            .AddArray(h.created_at)
                                            .AddArray(h.order_id)
                                            .AddArray(h.buyer)
                                            .AddArray(h.known)
                                            .AddArray(h.product)
                                            .AddArray(h.quantity)
                                            .AddArray(h.amount)
                                            .AddArray(h.purchased_at)
                                            .AddArray(h.timezone)
                                            .AddArray(h.zone)
                                            .AddArray(h.tier)
                                            .AddArray(h.attributes)
                                            .AddArray(h.received_at)
                                            .AddArray(h.of)
                                            .AddArray(h.cadence)
                                            .AddArray(h.step)
                                            .AddArray(h.topic)
                                            .AddArray(h.cadence_order)
                                            .AddArray(h.step_order)
                                            .AddArray(h.cancel)
                                            .AddArray(h.state)
                                            .AddArray(h.due_at)
                                            .AddArray(h.next_at)
                                            .AddArray(h.reason));
  } catch (const pg::Error& e) {
    RethrowOrderRace(e);
  }
  for (int i = 0; i < r.rows(); ++i) {
    if (Ahead::Buyer* b = a->FindBuyer(r.Text(i, 0))) {
      b->id = r.Int64(i, 1);
      b->held = false;
    }
  }
  // A buyer another session created meanwhile (ON CONFLICT): not returned,
  // so looked up again when next needed.
  for (const std::string& name : h.new_buyers) {
    if (Ahead::Buyer* b = a->FindBuyer(name); b != nullptr && b->held) a->buyers.erase(name);
  }
}

}  // namespace tp::pgstore
