// The counts /metrics reports from the file, and the statements behind
// them, shared by the store's own counts and StoreReader's. Internal to
// lib/store.
#pragma once

#include <SQLiteCpp/Database.h>

#include <span>
#include <string>

#include "store/report_store.h"

namespace tp {

inline constexpr const char* kPendingCount = "SELECT COUNT(*) FROM touchpoints WHERE state = 0";
inline constexpr const char* kQueueDepth = "SELECT COUNT(*) FROM queue_messages WHERE queue = ?";
inline constexpr const char* kDeadLetterCount =
    "SELECT COUNT(*) FROM deliveries WHERE sink = ? AND state = 1";
// The sinks with rows in `deliveries` (waiting or dead: delivered rows
// go), configured or not: a walk of deliveries_by_sink from one sink to
// the next, not a read of its rows; at most 1,000.
inline constexpr const char* kSinksWithDeliveries =
    "WITH RECURSIVE s(sink) AS (SELECT min(sink) FROM deliveries "
    "UNION ALL SELECT (SELECT min(sink) FROM deliveries WHERE sink > s.sink) "
    "FROM s WHERE s.sink IS NOT NULL) "
    "SELECT sink FROM s WHERE sink IS NOT NULL LIMIT 1000";
inline constexpr const char* kOutboxBySink =
    "SELECT sink, COUNT(*) FROM deliveries WHERE state = 0 GROUP BY sink ORDER BY sink";

// Reads them in one read transaction. Throws SQLite's errors.
StoreGauges ReadGauges(SQLite::Database& db, std::span<const std::string> queues,
                       std::span<const std::string> push_sinks);

// Counts the pending touchpoints between `boundaries` (ascending), in one
// read transaction, from the pending index alone. Throws SQLite's errors.
PendingDays ReadPendingDays(SQLite::Database& db, std::span<const Instant> boundaries);

}  // namespace tp
