// The store `database` names, opened for the daemon: a SQLite file, or a
// PostgreSQL database with the sessions of the threads that share it.
#pragma once

#include <memory>
#include <string>

#include "core/status.h"
#include "daemon/fire_thread.h"
#include "daemon/ingest_batcher.h"
#include "daemon/replanner.h"
#include "store/store.h"
#include "store/store_reads.h"

namespace tp {

class PgStore;
class RulesInForce;
class SqliteStore;

struct OpenedStore {
  std::unique_ptr<Store> store;  // the loop's
  std::unique_ptr<StoreReads> reader;
  SqliteStore* sqlite = nullptr;  // one of these: the store as what it is
  PgStore* pg = nullptr;
};

// Opens (and migrates) the store `database` names, a postgresql:// URL or
// a SQLite file, and its reader. On PostgreSQL, also warns of what keeps a
// takeover late (other daemons' roles, a small lock table). The error is
// one line.
StatusOr<OpenedStore> OpenStore(const std::string& database, const RulesInForce& rules);

// On PostgreSQL, the sessions of the threads that work beside the loop,
// each named for pg_stat_activity: firing, ingest groups, re-plan steps.
FireThread::OpenStore PgFiringSessions(const std::string& url);
IngestBatcher::OpenStore PgIngestSessions(const std::string& url);
Replanner::OpenStore PgReplanSessions(const std::string& url);

}  // namespace tp
