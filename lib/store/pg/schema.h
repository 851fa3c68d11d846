// The PostgreSQL store's tables and their forward-only migrations. Several
// daemons may start at once on one database: each migrates under a
// transaction-level advisory lock, so one migrates and the others find the
// schema current. Internal to lib/store.
#pragma once

#include "core/status.h"
#include "pg/connection.h"

namespace tp::pgstore {

// The schema version this build writes.
inline constexpr int kSchemaVersion = 12;

// The version the database is at (0: empty). Throws pg::Error.
int ReadVersion(pg::Connection& conn);
// Migrates to `target` (at most kSchemaVersion), or refuses a database
// newer than this build. Throws pg::Error.
Status Migrate(pg::Connection& conn, int target = kSchemaVersion);

}  // namespace tp::pgstore
