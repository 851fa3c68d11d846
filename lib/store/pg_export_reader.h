// `touchpointctl export` from a PostgreSQL database (store/export_reader.h):
// one REPEATABLE READ, READ ONLY transaction, so the daemons go on writing
// and none of it shows, and the rows read through server-side cursors, a
// batch at a time, so memory does not grow with the database.
#pragma once

#include <memory>
#include <string>

#include "core/status.h"
#include "store/export_reader.h"

namespace tp {

// Opens `url` (a database of any schema this build knows) and starts the
// snapshot; the password is not shown in errors.
StatusOr<std::unique_ptr<ExportReader>> OpenPgExportReader(const std::string& url);

}  // namespace tp
