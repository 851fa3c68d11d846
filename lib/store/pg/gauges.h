// The counts /metrics reports (StoreGauges), read from PostgreSQL in one
// snapshot, each exact up to a bound and PostgreSQL's estimate beyond it.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "pg/connection.h"
#include "store/report_store.h"

namespace tp::pgstore {

// Pending touchpoints; messages of each of `queues`; dead letters of each
// of `push_sinks` and of each other sink that has any; outbox entries of each sink with any (and of each of
// `push_sinks` when the outbox is past the bound). On `c`, in a read-only
// REPEATABLE READ transaction of its own. Throws pg::Error.
//
// Counting rows costs a read of each (of an index's entries at best): at
// 10 million pending touchpoints the exact counts took 1.2 s a scrape, and
// would take about a minute at 600 million (docs/scaling.md). So each
// count reads at most `exact_up_to` rows and one, and a count past the
// bound is the planner's estimate instead, from the table's statistics as
// of its last ANALYZE (StoreGauges::estimated says so).
StoreGauges ReadGauges(pg::Connection& c, std::span<const std::string> queues,
                       std::span<const std::string> push_sinks, std::int64_t exact_up_to);

}  // namespace tp::pgstore
