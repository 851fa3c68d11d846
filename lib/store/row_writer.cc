#include "store/row_writer.h"

#include <vector>

#include "store/sql.h"

namespace tp {

using sql::BindText;
using sql::BindTextOrNull;
using sql::Ms;
using sql::StateCode;

RowWriter::RowWriter(Database& db)
    : db_(db),
      buyer_get_(db.sql(), "SELECT id, opted_out FROM buyers WHERE buyer_id = ?"),
      buyer_insert_(db.sql(), "INSERT INTO buyers (buyer_id, created_at) VALUES (?, ?)"),
      touchpoint_insert_(db.sql(),
                         "INSERT INTO touchpoints (purchase, buyer, cadence, step, topic, "
                         "cadence_order, step_order, cancel_on_repurchase, state, due_at, "
                         "next_at, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
      history_insert_(db.sql(),
                      "INSERT INTO touchpoint_history (touchpoint, at, state, reason) "
                      "VALUES (?, ?, ?, ?)"),
      history_each_(db.sql(),
                    "INSERT INTO touchpoint_history (touchpoint, at, state, reason) "
                    "SELECT value, ?1, ?2, ?3 FROM json_each(?4)"),
      history_as_is_(db.sql(),
                     "INSERT INTO touchpoint_history (touchpoint, at, state, reason) "
                     "SELECT id, ?, state, ? FROM touchpoints WHERE id = ?") {}

// Resets its statement before returning: a statement left on a row keeps
// its read snapshot, and a later write on this connection fails
// (SQLITE_BUSY_SNAPSHOT) if another connection committed since.
std::optional<std::int64_t> RowWriter::FindBuyer(std::string_view buyer_id, bool* opted_out) {
  buyer_get_.tryReset();
  BindText(buyer_get_, 1, buyer_id);
  std::optional<std::int64_t> id;
  if (buyer_get_.executeStep()) {
    id = buyer_get_.getColumn(0).getInt64();
    if (opted_out != nullptr) *opted_out = buyer_get_.getColumn(1).getInt() != 0;
  }
  buyer_get_.tryReset();
  return id;
}

std::int64_t RowWriter::EnsureBuyer(std::string_view buyer_id, Instant now) {
  if (auto id = FindBuyer(buyer_id)) return *id;
  buyer_insert_.tryReset();
  BindText(buyer_insert_, 1, buyer_id);
  buyer_insert_.bind(2, Ms(now));
  buyer_insert_.exec();
  return db_.sql().getLastInsertRowid();
}

std::int64_t RowWriter::InsertTouchpoint(const Rules& rules, std::int64_t purchase_row,
                                         std::int64_t buyer, const PlannedTouchpoint& planned) {
  const Cadence& cadence = rules.cadences[planned.cadence];
  const Step& step = cadence.steps[planned.step];
  auto& t = touchpoint_insert_;
  t.tryReset();
  t.bind(1, purchase_row);
  t.bind(2, buyer);
  BindText(t, 3, cadence.name);
  BindText(t, 4, step.id);
  BindText(t, 5, step.topic);
  t.bind(6, planned.cadence);
  t.bind(7, planned.step);
  t.bind(8, planned.cancel_on_repurchase ? 1 : 0);
  t.bind(9, StateCode(planned.state));
  t.bind(10, Ms(planned.due_at));
  t.bind(11, Ms(planned.next_at));
  BindTextOrNull(t, 12, planned.reason);
  t.exec();
  return db_.sql().getLastInsertRowid();
}

void RowWriter::AddHistory(std::int64_t touchpoint, Instant at, TouchpointState state,
                           std::string_view reason) {
  auto& h = history_insert_;
  h.tryReset();
  h.bind(1, touchpoint);
  h.bind(2, Ms(at));
  h.bind(3, StateCode(state));
  BindText(h, 4, reason);
  h.exec();
}

void RowWriter::AddHistoryEach(const std::string& ids, Instant at, TouchpointState state,
                               std::string_view reason) {
  auto& h = history_each_;
  h.tryReset();
  h.bind(1, Ms(at));
  h.bind(2, StateCode(state));
  BindText(h, 3, reason);
  BindText(h, 4, ids);
  h.exec();
}

void RowWriter::AddHistoryAsIs(std::int64_t touchpoint, Instant at, std::string_view reason) {
  auto& h = history_as_is_;
  h.tryReset();
  h.bind(1, Ms(at));
  BindText(h, 2, reason);
  h.bind(3, touchpoint);
  h.exec();
}

void RowWriter::FinishReturned(SQLite::Statement& q, Instant now, TouchpointState state,
                               std::string_view reason, CadenceCounts& counts) {
  std::vector<std::int64_t> ids;
  while (q.executeStep()) {
    ids.push_back(q.getColumn(0).getInt64());
    ++counts[q.getColumn(1).getString()];
  }
  q.tryReset();
  for (std::int64_t id : ids) AddHistory(id, now, state, reason);
}

}  // namespace tp
