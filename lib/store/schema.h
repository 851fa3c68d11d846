// The database's schema: its version, and the migrations that take a file
// of any earlier version to this build's. Internal to lib/store.
#pragma once

#include <SQLiteCpp/Database.h>

#include "core/status.h"

namespace tp {

// The schema version this build writes. Opening an older file migrates it
// forward; a newer one is refused.
inline constexpr int kSchemaVersion = 13;

// The file's version (0 for a new file). Throws SQLite's errors.
StatusOr<int> ReadVersion(SQLite::Database& db);
// Takes the file from its version to `target` in one transaction; refuses a
// file newer than this build. Throws SQLite's errors.
Status Migrate(SQLite::Database& db, int target);

}  // namespace tp
