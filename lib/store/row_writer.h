// The writes several of the store's files share: buyers by their id,
// touchpoint rows, and the history lines every transition leaves. Internal
// to lib/store. Methods throw SQLite's errors; callers run them inside
// Database::Atomically() or a Transaction.
#pragma once

#include <SQLiteCpp/Statement.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "config/rules.h"
#include "scheduler/store.h"
#include "store/database.h"

namespace tp {

class RowWriter {
 public:
  explicit RowWriter(Database& db);

  // The buyer's row id, if known (and whether it opted out).
  std::optional<std::int64_t> FindBuyer(std::string_view buyer_id, bool* opted_out = nullptr);
  // The buyer's row id, adding the buyer first if unknown.
  std::int64_t EnsureBuyer(std::string_view buyer_id, Instant now);
  // A planned touchpoint of a purchase (row ids), named from `rules`.
  std::int64_t InsertTouchpoint(const Rules& rules, std::int64_t purchase_row, std::int64_t buyer,
                                const PlannedTouchpoint& planned);
  // A history line for one touchpoint.
  void AddHistory(std::int64_t touchpoint, Instant at, TouchpointState state,
                  std::string_view reason);
  // The same line for each touchpoint of `ids` (sql::IdList).
  void AddHistoryEach(const std::string& ids, Instant at, TouchpointState state,
                      std::string_view reason);
  // A line with the touchpoint's current state (a delivery's outcome).
  void AddHistoryAsIs(std::int64_t touchpoint, Instant at, std::string_view reason);
  // Runs an UPDATE ... RETURNING id, cadence and records the transition of
  // each row; counts go to `counts` by cadence.
  void FinishReturned(SQLite::Statement& q, Instant now, TouchpointState state,
                      std::string_view reason, CadenceCounts& counts);

 private:
  Database& db_;
  SQLite::Statement buyer_get_;
  SQLite::Statement buyer_insert_;
  SQLite::Statement touchpoint_insert_;
  SQLite::Statement history_insert_;
  SQLite::Statement history_each_;
  SQLite::Statement history_as_is_;
};

}  // namespace tp
