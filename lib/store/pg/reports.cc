#include "store/pg/reports.h"

#include <algorithm>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>

#include "core/ids.h"
#include "store/pg/rows.h"

namespace tp::pgstore {

using sql::FromMs;
using sql::Ms;
using sql::StateFrom;

namespace {

// The buyer's ($1) last $2 purchases, by the index on (buyer, purchased_at).
const std::string kShown =
    "SELECT id FROM purchases WHERE buyer = $1 ORDER BY purchased_at DESC, id DESC LIMIT $2";
const pg::Statement kPurchases(
    "SELECT order_id, product, quantity, amount, purchased_at, timezone, zone, tier, attributes, "
    "received_at FROM purchases WHERE id IN (" +
    kShown + ") ORDER BY purchased_at, id");
const pg::Statement kPurchaseCount("SELECT COUNT(*) FROM purchases WHERE buyer = $1");
const pg::Statement kTouchpoints(
    "SELECT t.id, p.order_id, t.cadence, t.step, t.topic, COALESCE(t.tier, p.tier), p.product, "
    "p.zone, t.due_at, t.next_at, t.fire_at, t.state, t.reason FROM touchpoints t "
    "JOIN purchases p ON p.id = t.purchase WHERE t.buyer = $1 AND t.purchase IN (" +
    kShown + ") ORDER BY t.due_at, t.cadence_order, t.step_order, t.id");
const pg::Statement kTimelineHistory(
    "SELECT h.touchpoint, h.at, h.state, h.reason FROM touchpoint_history h "
    "JOIN touchpoints t ON t.id = h.touchpoint WHERE t.buyer = $1 AND t.purchase IN (" +
    kShown + ") ORDER BY h.id");
const pg::Statement kPendingCount("SELECT COUNT(*) FROM touchpoints WHERE state = 0");
// Finished (fired, cancelled, suppressed, skipped; never dead), due and
// fired before the cutoff, with nothing left to deliver ($4: the span's
// touchpoints that had a queue message at the pass's start), and nothing
// of their purchase pending (a re-plan, which re-plans only purchases with
// a step pending, must find the finished ones, or it plans them again):
// deleted with their history in one statement.
const pg::Statement kPrune(
    "WITH gone AS (SELECT t.id FROM touchpoints t WHERE t.id > $1 AND t.id <= $2 "
    "AND t.state IN (1, 2, 3, 4) AND t.due_at < $3 AND COALESCE(t.fire_at, 0) < $3 "
    "AND t.id <> ALL($4::bigint[]) "
    "AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.touchpoint = t.id) "
    "AND NOT EXISTS (SELECT 1 FROM touchpoints p WHERE p.buyer = t.buyer AND p.state = 0 "
    "AND p.purchase = t.purchase) FOR UPDATE SKIP LOCKED), "
    "history AS (DELETE FROM touchpoint_history h USING gone WHERE h.touchpoint = gone.id) "
    "DELETE FROM touchpoints t USING gone WHERE t.id = gone.id RETURNING t.id");
// A retention step's rows: the id of the $2-th row after $1 (none if fewer
// are left), and the last id.
const pg::Statement kSpanEnd(
    "SELECT (SELECT id FROM touchpoints WHERE id > $1 ORDER BY id OFFSET $2::bigint - 1 LIMIT 1), "
    "COALESCE((SELECT MAX(id) FROM touchpoints), 0)");
const pg::Statement kLastMessage("SELECT COALESCE(MAX(id), 0) FROM queue_messages");
const pg::Statement kMessagesEnd(
    "SELECT COALESCE((SELECT id FROM queue_messages WHERE id > $1 AND id <= $2 ORDER BY id "
    "OFFSET $3::bigint - 1 LIMIT 1), $2::bigint)");
const pg::Statement kQueuedBefore(
    "SELECT touchpoint FROM queue_messages WHERE id > $1 AND id <= $2 AND enqueued_at < $3");

std::string TextOrEmpty(const pg::Result& r, int row, int col) {
  return r.IsNull(row, col) ? std::string() : std::string(r.Text(row, col));
}

}  // namespace

StatusOr<std::optional<BuyerReport>> Reports::GetBuyer(std::string_view buyer_id,
                                                       std::int64_t last_purchases) {
  // PostgreSQL's text holds no NUL: no buyer recorded here has one (a
  // legacy id asked for by the buyer routes; in a parameter, libpq would
  // cut it at the NUL, and find another buyer).
  if (buyer_id.find('\0') != std::string_view::npos) return std::optional<BuyerReport>();
  std::optional<BuyerReport> out;
  // Its five reads in one snapshot: the ingest, firing and re-plan
  // sessions (and other daemons) write meanwhile, and a purchase, a fire or
  // an opt-out committed between two of them would show half done.
  Status s = session_.Atomically(
      "get buyer",
      [&] {
        out.reset();
        pg::Connection& c = session_.conn();
        BuyerReport report;
        report.buyer_id = std::string(buyer_id);
        auto buyer = FindBuyerRow(c, buyer_id, &report.opted_out);
        if (!buyer) return;
        pg::Result p = c.Run(kPurchases, pg::Params().Add(*buyer).Add(last_purchases));
        for (int i = 0; i < p.rows(); ++i) {
          PurchaseRecord& r = report.purchases.emplace_back();
          r.purchase.order_id = std::string(p.Text(i, 0));
          r.purchase.buyer_id = report.buyer_id;
          r.purchase.product = std::string(p.Text(i, 1));
          r.purchase.quantity = p.Int64(i, 2);
          r.purchase.amount = p.Double(i, 3);
          r.purchase.purchased_at = FromMs(p.Int64(i, 4));
          r.purchase.timezone = std::string(p.Text(i, 5));
          r.zone = std::string(p.Text(i, 6));
          r.tier = std::string(p.Text(i, 7));
          r.purchase.attributes = TextOrEmpty(p, i, 8);
          r.received_at = FromMs(p.Int64(i, 9));
        }
        if (!report.purchases.empty()) report.tier = report.purchases.back().tier;
        report.earlier_purchases =
            c.Run(kPurchaseCount, pg::Params().Add(*buyer)).Int64(0, 0) - p.rows();
        pg::Result t = c.Run(kTouchpoints, pg::Params().Add(*buyer).Add(last_purchases));
        std::unordered_map<std::int64_t, std::size_t> index;
        for (int i = 0; i < t.rows(); ++i) {
          index.emplace(t.Int64(i, 0), report.touchpoints.size());
          TouchpointRecord& r = report.touchpoints.emplace_back();
          r.order_id = std::string(t.Text(i, 1));
          r.cadence = std::string(t.Text(i, 2));
          r.step = std::string(t.Text(i, 3));
          r.id = TouchpointId(r.order_id, r.cadence, r.step);
          r.topic = std::string(t.Text(i, 4));
          r.tier = std::string(t.Text(i, 5));
          r.product = std::string(t.Text(i, 6));
          r.zone = std::string(t.Text(i, 7));
          r.due_at = FromMs(t.Int64(i, 8));
          r.next_at = FromMs(t.Int64(i, 9));
          if (!t.IsNull(i, 10)) r.fire_at = FromMs(t.Int64(i, 10));
          r.state = StateFrom(static_cast<int>(t.Int64(i, 11)));
          r.reason = TextOrEmpty(t, i, 12);
        }
        pg::Result h = c.Run(kTimelineHistory, pg::Params().Add(*buyer).Add(last_purchases));
        for (int i = 0; i < h.rows(); ++i) {
          auto it = index.find(h.Int64(i, 0));
          if (it == index.end()) continue;
          report.touchpoints[it->second].history.push_back(
              {FromMs(h.Int64(i, 1)), StateFrom(static_cast<int>(h.Int64(i, 2))),
               std::string(h.Text(i, 3))});
        }
        out = std::move(report);
      },
      pg::Transaction::Mode::kSnapshot);
  if (!s.ok()) return s;
  return out;
}

StatusOr<std::int64_t> Reports::PendingCount() {
  return session_.Read("count pending", [&]() -> StatusOr<std::int64_t> {
    return session_.conn().Run(kPendingCount).Int64(0, 0);
  });
}

StatusOr<PruneResult> Reports::PruneFinished(Instant cutoff, std::int64_t after,
                                             std::int64_t span) {
  PruneResult result;
  Status s = session_.Atomically("prune finished touchpoints", [&] {
    pg::Connection& c = session_.conn();
    const bool whole = queued_.Step(
        after, Ms(cutoff), [&] { return c.Run(kLastMessage).Int64(0, 0); },
        [&](std::int64_t from, std::int64_t end, std::int64_t before,
            std::vector<std::int64_t>& out) {
          const std::int64_t to =
              c.Run(kMessagesEnd, pg::Params().Add(from).Add(end).Add(QueuedBefore::kRange))
                  .Int64(0, 0);
          pg::Result q = c.Run(kQueuedBefore, pg::Params().Add(from).Add(to).Add(before));
          for (int i = 0; i < q.rows(); ++i) out.push_back(q.Int64(i, 0));
          return to;
        });
    if (!whole) {
      result.next = after;  // the next step reads on
      return;
    }
    pg::Result end = c.Run(kSpanEnd, pg::Params().Add(after).Add(std::max<std::int64_t>(span, 1)));
    EndSpan(result, after,
            end.IsNull(0, 0) ? std::nullopt : std::optional<std::int64_t>(end.Int64(0, 0)),
            end.Int64(0, 1));
    const std::span<const std::int64_t> queued = queued_.Between(after, result.next);
    pg::Result r =
        c.Run(kPrune, pg::Params()
                          .Add(after)
                          .Add(result.next)
                          .Add(std::min(Ms(cutoff), queued_.cutoff()))
                          .AddArray(std::vector<std::int64_t>(queued.begin(), queued.end())));
    result.deleted = r.rows();
    if (result.done) queued_.Done();
  });
  if (!s.ok()) return s;
  return result;
}

}  // namespace tp::pgstore
