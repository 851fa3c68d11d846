// A claim's rows that wait for their buyers' others (Tables::OutOfTurn):
// several daemons fire each buyer's touchpoints in the order one daemon
// would, and at times in that order.
#include <limits>
#include <tuple>
#include <unordered_map>

#include "store/pg/tables.h"

namespace tp::pgstore {

using sql::Ms;

namespace {

// For each buyer of a claim, with the place of its last row there: the
// buyer's first pending row before that place that the claim does not
// hold (held by another daemon's claim, or left behind the claim
// frontier; only the first, however long the buyer's timeline),
// and its rows fired later than the pass's time $8 (by another daemon
// whose pass began after this one, or whose clock is a little ahead), up
// to $9: past that a clock is wrong, and waiting for it could hold the
// buyer's touchpoints for as long (docs/scaling.md). Each by the buyer
// (touchpoints_pending_by_buyer, touchpoints_fired); `next_at + 0` so
// that the pending index, over every buyer, is not used for the
// comparison. The claim's row ids hashed once (NOT IN a subquery), not
// searched for each row. The lateral subquery, kept whole by OFFSET 0, is
// a loop over the claim's buyers by the index whatever the session allows
// (as a plain join, on a table of 650,000 rows and in a session allowing
// sequential scans, which the firing session does not, the planner chose
// one and a merge join: 330 ms a claim of 2,048 buyers, against 25). One
// row per buyer comes back, however long its timeline (DISTINCT ON; LIMIT
// 1 in the subquery costs a sort per buyer, 10% more).
const pg::Statement kEarlierElsewhere(
    "WITH c AS (SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::integer[], "
    "$5::integer[], $6::bigint[]) AS c(buyer, next_at, due_at, cadence_order, step_order, id)) "
    "(SELECT DISTINCT ON (c.buyer) c.buyer, e.next_at, e.due_at, e.cadence_order, e.step_order, "
    "e.id, false FROM c CROSS JOIN LATERAL (SELECT t.next_at, t.due_at, t.cadence_order, "
    "t.step_order, t.id FROM touchpoints t WHERE t.buyer = c.buyer AND t.state = 0 AND "
    "(t.next_at + 0, t.due_at, t.cadence_order, t.step_order, t.id) < (c.next_at, c.due_at, "
    "c.cadence_order, c.step_order, c.id) AND t.id NOT IN (SELECT unnest($7::bigint[])) OFFSET 0) "
    "e ORDER BY c.buyer, e.next_at, e.due_at, e.cadence_order, e.step_order, e.id) "
    "UNION ALL SELECT c.buyer, 0, 0, 0, 0, 0, true FROM c WHERE EXISTS (SELECT 1 FROM "
    "touchpoints t WHERE t.buyer = c.buyer AND t.state IN (1, 5) AND t.fire_at > $8 AND "
    "t.fire_at <= $9)");
// How much later than a pass's time another daemon's fire of a buyer's
// touchpoint makes the buyer's claimed rows wait: a pass that began later
// (a pass takes well under a second) or a clock a little ahead.
constexpr Millis kFireOrderSlack{5000};

}  // namespace

std::vector<bool> Tables::OutOfTurn(pg::Connection& c, Instant now,
                                    const std::vector<ClaimedRow>& rows) {
  std::vector<bool> wait(rows.size(), false);
  if (rows.empty()) return wait;
  using Place = std::tuple<std::int64_t, std::int64_t, std::int64_t, std::int64_t, std::int64_t>;
  const auto place_of = [](const ClaimedRow& row) {
    return Place(row.next_at, row.due_at, row.cadence_order, row.step_order, row.id);
  };
  // Each buyer's last row in the claim.
  std::unordered_map<std::int64_t, std::size_t> last;
  std::vector<std::int64_t> ids;
  ids.reserve(rows.size());
  for (std::size_t i = 0; i < rows.size(); ++i) {
    ids.push_back(rows[i].id);
    auto [it, added] = last.try_emplace(rows[i].buyer, i);
    if (!added && place_of(rows[it->second]) < place_of(rows[i])) it->second = i;
  }
  std::vector<std::int64_t> buyer, next_at, due_at, cadence_order, step_order, id;
  for (const auto& [b, i] : last) {
    buyer.push_back(b);
    next_at.push_back(rows[i].next_at);
    due_at.push_back(rows[i].due_at);
    cadence_order.push_back(rows[i].cadence_order);
    step_order.push_back(rows[i].step_order);
    id.push_back(rows[i].id);
  }
  pg::Result r = c.Run(kEarlierElsewhere, pg::Params()
                                              .AddArray(buyer)
                                              .AddArray(next_at)
                                              .AddArray(due_at)
                                              .AddArray(cadence_order)
                                              .AddArray(step_order)
                                              .AddArray(id)
                                              .AddArray(ids)
                                              .Add(Ms(now))
                                              .Add(Ms(now + kFireOrderSlack)));
  // Each such buyer's first row elsewhere: its rows in the claim past that
  // wait for it. A row fired later than `now`: all of them wait (fired
  // now, they would come before it, in a queue's order of fire times).
  constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();
  std::unordered_map<std::int64_t, Place> first;
  for (int k = 0; k < r.rows(); ++k) {
    const Place p = r.Bool(k, 6) ? Place(kMin, kMin, kMin, kMin, kMin)
                                 : Place(r.Int64(k, 1), r.Int64(k, 2), r.Int64(k, 3), r.Int64(k, 4),
                                         r.Int64(k, 5));
    auto [it, added] = first.try_emplace(r.Int64(k, 0), p);
    if (!added && p < it->second) it->second = p;
  }
  std::int64_t held = 0;
  for (std::size_t i = 0; i < rows.size() && !first.empty(); ++i) {
    const auto it = first.find(rows[i].buyer);
    wait[i] = it != first.end() && it->second < place_of(rows[i]);
    held += wait[i] ? 1 : 0;
  }
  held_for_order_.fetch_add(held, std::memory_order_relaxed);
  return wait;
}

}  // namespace tp::pgstore
