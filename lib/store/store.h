// Every interface of the store, as the daemon holds it: SqliteStore (a file,
// one daemon) or PgStore (PostgreSQL, several daemons). Each interface is a
// header of its own that says who calls it and how it fails; this adds what
// the daemon asks of the backend as a whole.
//
// Threading: the thread that owns the store (the daemon's loop).
#pragma once

#include <cstdint>
#include <optional>

#include "core/status.h"
#include "scheduler/store.h"
#include "store/outbox_store.h"
#include "store/queue_store.h"
#include "store/replan_store.h"
#include "store/report_store.h"
#include "store/retention_store.h"
#include "store/transactions.h"

namespace tp {

class Store : public ScheduleStore,
              public QueueStore,
              public OutboxStore,
              public ReplanStore,
              public ReportStore,
              public RetentionStore,
              public Transactions {
 public:
  // Caps the database at `bytes` (database_max_size), or lifts the cap.
  // Only a SQLite file has one: a PostgreSQL server keeps its own disk, and
  // the setting changes nothing there (docs/config.md says so).
  virtual Status SetMaxSize(std::optional<std::uint64_t> bytes) = 0;
  // Push deliveries this daemon took over from another daemon's session
  // that ended while attempting them (each may have reached its sink
  // twice); always 0 for a store only one daemon uses.
  virtual std::int64_t TakenOver() const = 0;
};

}  // namespace tp
