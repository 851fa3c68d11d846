// The writes several of the PostgreSQL store's files share: history lines,
// a planned touchpoint's row, and buyers by id. Internal to lib/store. Each
// throws pg::Error; callers run them inside a Session's transaction.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/rules.h"
#include "pg/connection.h"
#include "scheduler/store.h"

namespace tp::pgstore {

// One line per touchpoint of `ids`, all alike.
void AddHistory(pg::Connection& c, const std::vector<std::int64_t>& ids, Instant at,
                TouchpointState state, std::string_view reason);
// One line per touchpoint of `ids`, each with its current state (a
// delivery's outcome) and its own time and reason.
void AddHistoryAsIs(pg::Connection& c, const std::vector<std::int64_t>& ids,
                    const std::vector<std::int64_t>& at, const std::vector<std::string>& reasons);
// The buyer's row id, if known (and whether it opted out). No lock.
std::optional<std::int64_t> FindBuyerRow(pg::Connection& c, std::string_view buyer_id,
                                         bool* opted_out = nullptr);
// A planned touchpoint of a purchase (row ids), named from `rules`; its id.
std::int64_t InsertTouchpoint(pg::Connection& c, const Rules& rules, std::int64_t purchase,
                              std::int64_t buyer, const PlannedTouchpoint& planned);

}  // namespace tp::pgstore
