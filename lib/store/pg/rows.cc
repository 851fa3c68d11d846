#include "store/pg/rows.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <optional>

#include "core/ids.h"
#include "scheduler/event.h"
#include "store/touchpoint_row.h"
#include "store/values.h"

namespace tp::pgstore {

using sql::FromMs;
using sql::Ms;
using sql::StateCode;

namespace {

// Every buyer's turn at once (kAllTurns), or a share of that lock
// beside each buyer's own (kSomeTurns, then the buyers' locks): one
// transaction taking all waits for every one that holds some, and they for
// it. A share is taken before any buyer's own lock, so the two kinds never
// wait for each other in a cycle.
const pg::Statement kAllTurns("SELECT pg_advisory_xact_lock(7305861230005)");
const pg::Statement kSomeTurns("SELECT pg_advisory_xact_lock_shared(7305861230005)");
const pg::Statement kTrySomeTurns("SELECT pg_try_advisory_xact_lock_shared(7305861230005)");
const pg::Statement kBuyerTurn("SELECT pg_advisory_xact_lock(hashtextextended($1, 7305861230002))");
// `aggregate` over the locks of the buyers' keys ($1). The sub-select is
// sorted and not flattened (OFFSET 0), so the locks are taken in its
// order.
std::string BuyersTurns(const std::string& aggregate) {
  return "SELECT " + aggregate +
         " FROM (SELECT DISTINCT hashtextextended(b, 7305861230002) AS k FROM "
         "unnest($1::text[]) AS u(b) ORDER BY k OFFSET 0) AS keys";
}
const pg::Statement kBuyersTurns(BuyersTurns("count(pg_advisory_xact_lock(k))"));
// Every key is tried (an aggregate reads all its rows): those free are
// held to the transaction's end whatever the others' answer.
const pg::Statement kTryBuyersTurns(
    BuyersTurns("COALESCE(bool_and(pg_try_advisory_xact_lock(k)), true)"));
const pg::Statement kHistoryRows(
    "INSERT INTO touchpoint_history (touchpoint, at, state, reason) "
    "SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::smallint[], $4::text[])");
const pg::Statement kHistoryEach(
    "INSERT INTO touchpoint_history (touchpoint, at, state, reason) "
    "SELECT unnest($1::bigint[]), $2, $3, $4");
const pg::Statement kHistoryAsIs(
    "INSERT INTO touchpoint_history (touchpoint, at, state, reason) "
    "SELECT t.id, u.at, t.state, u.reason FROM unnest($1::bigint[], $2::bigint[], $3::text[]) "
    "WITH ORDINALITY AS u(id, at, reason, n) JOIN touchpoints t ON t.id = u.id ORDER BY u.n");
const pg::Statement kBuyerGet("SELECT id, opted_out FROM buyers WHERE buyer_id = $1");
const pg::Statement kTouchpointInsert(
    "INSERT INTO touchpoints (purchase, buyer, cadence, step, topic, cadence_order, step_order, "
    "cancel_on_repurchase, state, due_at, next_at, reason) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id");

// An event's rows, each read once: a lease's messages are those of a few
// purchases (six touchpoints each in the playbook), and a join probed the
// purchase and the buyer again for each touchpoint (half the buffers the
// events of a lease read; docs/benchmarks.md).
const pg::Statement kEventTouchpoints(
    "SELECT id, step, cadence, topic, tier, due_at, next_at, fire_at, purchase, buyer "
    "FROM touchpoints WHERE id = ANY($1::bigint[])");
const pg::Statement kEventPurchases(
    "SELECT id, order_id, tier, product, zone, attributes FROM purchases "
    "WHERE id = ANY($1::bigint[])");
const pg::Statement kBuyerIds("SELECT id, buyer_id FROM buyers WHERE id = ANY($1::bigint[])");

}  // namespace

void TakeBuyersTurn(pg::Connection& c, std::string_view buyer_id) {
  c.RunTogether({{kSomeTurns, {}}, {kBuyerTurn, pg::Params().Add(buyer_id)}});
}

void TakeBuyersTurns(pg::Connection& c, const std::vector<std::string>& buyer_ids) {
  if (buyer_ids.empty()) return;
  c.RunTogether({{kSomeTurns, {}}, {kBuyersTurns, pg::Params().AddArray(buyer_ids)}});
}

void TakeAllBuyersTurns(pg::Connection& c) { c.Run(kAllTurns); }

bool TryBuyersTurns(pg::Connection& c, const std::vector<std::string>& buyer_ids) {
  if (buyer_ids.empty()) return true;
  std::vector<pg::Result> r =
      c.RunTogether({{kTrySomeTurns, {}}, {kTryBuyersTurns, pg::Params().AddArray(buyer_ids)}});
  return r.at(0).Bool(0, 0) && r.at(1).Bool(0, 0);
}

void RethrowOrderRace(const pg::Error& e) {
  constexpr std::string_view kUniqueViolation = "23505";
  constexpr std::string_view kSerializationFailure = "40001";
  if (e.sqlstate() != kUniqueViolation || e.constraint() != "purchases_order_id_key") throw;
  throw pg::Error(
      std::string("an order id was recorded by another daemon meanwhile (") + e.what() + ")",
      std::string(kSerializationFailure), false);
}

void HistoryRows::Add(std::int64_t id, Instant when, TouchpointState s, std::string text) {
  ids.push_back(id);
  at.push_back(Ms(when));
  state.push_back(StateCode(s));
  reason.push_back(std::move(text));
}

void HistoryRows::Write(pg::Connection& c) const {
  if (ids.empty()) return;
  c.Run(kHistoryRows, pg::Params().AddArray(ids).AddArray(at).AddArray(state).AddArray(reason));
}

void AddHistory(pg::Connection& c, const std::vector<std::int64_t>& ids, Instant at,
                TouchpointState state, std::string_view reason) {
  if (ids.empty()) return;
  c.Run(kHistoryEach, pg::Params().AddArray(ids).Add(Ms(at)).Add(StateCode(state)).Add(reason));
}

void AddHistoryAsIs(pg::Connection& c, const std::vector<std::int64_t>& ids,
                    const std::vector<std::int64_t>& at, const std::vector<std::string>& reasons) {
  if (ids.empty()) return;
  c.Run(kHistoryAsIs, pg::Params().AddArray(ids).AddArray(at).AddArray(reasons));
}

std::optional<std::int64_t> FindBuyerRow(pg::Connection& c, std::string_view buyer_id,
                                         bool* opted_out) {
  pg::Result r = c.Run(kBuyerGet, pg::Params().Add(buyer_id));
  if (r.rows() == 0) return std::nullopt;
  if (opted_out != nullptr) *opted_out = r.Bool(0, 1);
  return r.Int64(0, 0);
}

std::int64_t InsertTouchpoint(pg::Connection& c, const Rules& rules, std::int64_t purchase,
                              std::int64_t buyer, const PlannedTouchpoint& planned) {
  const Cadence& cadence = rules.cadences[static_cast<std::size_t>(planned.cadence)];
  const Step& step = cadence.steps[static_cast<std::size_t>(planned.step)];
  pg::Result r = c.Run(kTouchpointInsert, pg::Params()
                                              .Add(purchase)
                                              .Add(buyer)
                                              .Add(cadence.name)
                                              .Add(step.id)
                                              .Add(step.topic)
                                              .Add(planned.cadence)
                                              .Add(planned.step)
                                              .Add(planned.cancel_on_repurchase)
                                              .Add(StateCode(planned.state))
                                              .Add(Ms(planned.due_at))
                                              .Add(Ms(planned.next_at))
                                              .AddTextOrNull(planned.reason));
  return r.Int64(0, 0);
}

std::vector<std::int64_t> Distinct(std::vector<std::int64_t> ids) {
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

std::unordered_map<std::int64_t, std::string> BuyerIds(pg::Connection& c,
                                                       std::vector<std::int64_t> rows) {
  std::unordered_map<std::int64_t, std::string> out;
  if (rows.empty()) return out;
  pg::Result r = c.Run(kBuyerIds, pg::Params().AddArray(Distinct(std::move(rows))));
  for (int i = 0; i < r.rows(); ++i) out.emplace(r.Int64(i, 0), r.Text(i, 1));
  return out;
}

std::unordered_map<std::int64_t, std::string> MakeEvents(pg::Connection& c, sql::ZoneCache& zones,
                                                         const std::vector<std::int64_t>& rows) {
  std::unordered_map<std::int64_t, std::string> events;
  if (rows.empty()) return events;
  pg::Result t = c.Run(kEventTouchpoints, pg::Params().AddArray(rows));
  std::vector<std::int64_t> purchase_ids, buyer_ids;
  for (int i = 0; i < t.rows(); ++i) {
    if (t.IsNull(i, 7)) continue;  // not fired
    purchase_ids.push_back(t.Int64(i, 8));
    buyer_ids.push_back(t.Int64(i, 9));
  }
  if (purchase_ids.empty()) return events;
  pg::Result p = c.Run(kEventPurchases, pg::Params().AddArray(Distinct(std::move(purchase_ids))));
  const auto buyers = BuyerIds(c, std::move(buyer_ids));
  std::unordered_map<std::int64_t, int> purchase_at;  // row id -> row of p
  for (int i = 0; i < p.rows(); ++i) purchase_at.emplace(p.Int64(i, 0), i);
  DueRow row;
  for (int i = 0; i < t.rows(); ++i) {
    if (t.IsNull(i, 7)) continue;
    const auto pi = purchase_at.find(t.Int64(i, 8));
    const auto bi = buyers.find(t.Int64(i, 9));
    if (pi == purchase_at.end() || bi == buyers.end()) continue;  // never: not deleted
    const int pr = pi->second;
    row.rowid = t.Int64(i, 0);
    row.step = t.Text(i, 1);
    row.buyer_id = bi->second;
    row.order_id = p.Text(pr, 1);
    row.cadence = t.Text(i, 2);
    row.tp_id = TouchpointId(row.order_id, row.cadence, row.step);
    row.topic = t.Text(i, 3);
    // A fired touchpoint's own tier, once pinned, wins over its purchase's.
    row.tier = t.IsNull(i, 4) ? p.Text(pr, 2) : t.Text(i, 4);
    row.product = p.Text(pr, 3);
    row.zone = zones.Named(p.Text(pr, 4));
    row.due_at = FromMs(t.Int64(i, 5));
    row.next_at = FromMs(t.Int64(i, 6));
    row.attributes = p.IsNull(pr, 5) ? std::string() : std::string(p.Text(pr, 5));
    row.fire_at = FromMs(t.Int64(i, 7));
    events.emplace(row.rowid,
                   TouchpointEventJson(row.View(), *row.fire_at, row.attributes, *row.fire_at));
  }
  return events;
}

void FillEvents(pg::Connection& c, sql::ZoneCache& zones, std::span<LeasedRow> leased,
                std::string_view queue) {
  std::vector<std::int64_t> touchpoints;
  touchpoints.reserve(leased.size());
  for (const LeasedRow& r : leased) touchpoints.push_back(r.touchpoint);
  // One snapshot for MakeEvents' reads: a re-plan committed between them
  // (it pins the old tier on fired touchpoints and gives the purchase its
  // new one together) would make this hand-out's event say the new tier
  // and every later one the old.
  if (touchpoints.empty()) return;
  std::optional<pg::Transaction> snapshot;
  if (!c.in_transaction()) snapshot.emplace(c, pg::Transaction::Mode::kSnapshot);
  auto events = MakeEvents(c, zones, touchpoints);
  if (snapshot) snapshot->Commit();
  for (LeasedRow& r : leased) {
    if (auto it = events.find(r.touchpoint); it != events.end()) {
      r.message.event = std::move(it->second);
      continue;
    }
    spdlog::error("queue {}: message {} has no event (touchpoint row {} is gone); handing out null",
                  queue, r.id, r.touchpoint);
    r.message.event = "null";
  }
}

}  // namespace tp::pgstore
