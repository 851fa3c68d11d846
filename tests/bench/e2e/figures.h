// The figures defined beside e2e_bench.cc's: what they need of each
// other.
#pragma once

#include <cstdint>
#include <string>

#include "load.h"

namespace tp::e2e {

// `events_per_s` and `report_s_1m` (events_figure.cc).
void EventsFigure(const Options& options, const std::string& work);

// The daemon's PostgreSQL WAL position, to measure what follows (pg_sizes.cc).
std::string PgWalPosition(const Daemon& daemon);
// Notes each table's and index's size (bytes per touchpoint and per
// purchase), the WAL written since `wal_before`, and a VACUUM's time;
// the database's size (pg_sizes.cc).
std::uintmax_t PgSizes(const Daemon& daemon, const IngestResult& r, const std::string& wal_before);

}  // namespace tp::e2e
