// The writes several of the PostgreSQL store's files share: history lines,
// a planned touchpoint's row, and buyers by id. Internal to lib/store. Each
// throws pg::Error; callers run them inside a Session's transaction.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "config/rules.h"
#include "pg/connection.h"
#include "scheduler/store.h"
#include "store/queue_store.h"
#include "store/values.h"

namespace tp::pgstore {

// Waits for the buyer's turn (a transaction-level advisory lock on a hash
// of the buyer's id; a collision only makes two buyers take turns), held
// until the transaction ends: what reads a buyer's history and writes by
// it takes it first. Beside it, a share of every buyer's turn
// (TakeAllBuyersTurns).
void TakeBuyersTurn(pg::Connection& c, std::string_view buyer_id);
// The turns of several buyers, in one statement and one order (that of
// their lock keys), so two callers taking turns of buyers they share wait
// for each other rather than deadlock. Nothing for none. At most
// kTurnsEach in a transaction.
void TakeBuyersTurns(pg::Connection& c, const std::vector<std::string>& buyer_ids);
// Every buyer's turn, in one lock: what takes more than kTurnsEach. Each
// advisory lock a transaction holds takes an entry of the server's shared
// lock table (max_locks_per_transaction times max_connections and a few:
// about 6,000 to 13,000 on a default server, shared by every session); a
// group of 10,000 new buyers taking a lock each could fill it, and then
// every session's locks fail.
void TakeAllBuyersTurns(pg::Connection& c);
inline constexpr std::size_t kTurnsEach = 1000;
// TakeBuyersTurns() without waiting: whether every turn was free. Those
// that were are held either way, until the transaction ends.
bool TryBuyersTurns(pg::Connection& c, const std::vector<std::string>& buyer_ids);
// Called in a handler of `e`, from writing purchases: rethrows it, but as
// a serialization failure (transient: the caller tries again) when it is
// a violation of the order id's unique key: an order id written meanwhile
// by another daemon for another buyer (a buyer's own orders are written
// in its turn); tried again, the order is found and the purchase refused
// (409), as one daemon refuses it at once.
[[noreturn]] void RethrowOrderRace(const pg::Error& e);
// History lines with a state, time and reason each, written as one
// statement.
struct HistoryRows {
  std::vector<std::int64_t> ids, at, state;
  std::vector<std::string> reason;
  void Add(std::int64_t id, Instant when, TouchpointState s, std::string text);
  void Write(pg::Connection& c) const;
};
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

// `ids` sorted, each once.
std::vector<std::int64_t> Distinct(std::vector<std::int64_t> ids);
// The buyer ids of buyer rows `rows`, by row id, each row read once.
std::unordered_map<std::int64_t, std::string> BuyerIds(pg::Connection& c,
                                                       std::vector<std::int64_t> rows);

// The events of fired touchpoints (row ids), by row id, made from their
// rows as the fire made them (scheduler/event.h); a row that is gone, or
// not fired, is left out.
std::unordered_map<std::int64_t, std::string> MakeEvents(pg::Connection& c, sql::ZoneCache& zones,
                                                         const std::vector<std::int64_t>& rows);
// The events of a lease's messages (of `queue`, for the log): a message
// whose touchpoint is gone gets null, so it can be acked, and the log says
// so.
void FillEvents(pg::Connection& c, sql::ZoneCache& zones, std::span<LeasedRow> leased,
                std::string_view queue);

}  // namespace tp::pgstore
