// `touchpointctl export --database PATH OUT_DIR`: the live database's
// purchases and engagement events as the CSVs `simulate` reads
// (OUT_DIR/purchases.csv, OUT_DIR/events.csv), from one snapshot, safe
// while touchpointd runs (store/export_reader.h).
#pragma once

#include <cstdint>
#include <ostream>
#include <string>

#include "core/status.h"

namespace tp {

struct ExportOptions {
  std::string database;
  std::string out_dir;  // created if missing; the two files must not exist
  // The terminal's columns, to redraw one progress line; 0 when not a
  // terminal: a line about every 10% instead.
  int terminal_width = 0;
};

struct ExportResult {
  std::int64_t purchases = 0;
  std::int64_t events = 0;
};

// Writes both files (each to NAME.partial, renamed when complete), with
// progress on `progress`.
Status Export(const ExportOptions& options, ExportResult& result, std::ostream& progress);

}  // namespace tp
