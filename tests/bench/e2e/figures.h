// The figures defined beside e2e_bench.cc's: what they need of each
// other.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "load.h"

namespace tp::e2e {

// `events_per_s` and `report_s_1m` (events_figure.cc).
void EventsFigure(const Options& options, const std::string& work);

// `pending` touchpoints planned from first purchases (none fires or
// cancels) on `daemon` (fresh, not started), then a restart, a /metrics
// scrape, /v1/status twice and a reload that moves one step of every
// journey. RSS is the peak over all of it. On PostgreSQL: each table's and
// index's size, the WAL written, and how long a VACUUM of the touchpoints
// takes, for the capacity plan (pending_figure.cc).
void PendingFigure(const Options& options, const std::string& work, std::unique_ptr<Daemon> daemon);

// The daemon's PostgreSQL WAL position, to measure what follows (pg_sizes.cc).
std::string PgWalPosition(const Daemon& daemon);
// Notes each table's and index's size (bytes per touchpoint and per
// purchase), the WAL written since `wal_before`, and a VACUUM's time;
// the database's size (pg_sizes.cc).
std::uintmax_t PgSizes(const Daemon& daemon, const IngestResult& r, const std::string& wal_before);

}  // namespace tp::e2e
