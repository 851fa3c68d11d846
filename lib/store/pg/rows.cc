#include "store/pg/rows.h"

#include "store/values.h"

namespace tp::pgstore {

using sql::Ms;
using sql::StateCode;

namespace {

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

}  // namespace

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

}  // namespace tp::pgstore
