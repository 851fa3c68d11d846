// SqliteStore::Backup(): a consistent copy of a live database with SQLite's
// backup API, checked before it takes its name.
#include <SQLiteCpp/Backup.h>
#include <SQLiteCpp/SQLiteCpp.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "store/sql.h"
#include "store/sqlite_store.h"

namespace tp {

using sql::Guard;

Status SqliteStore::Backup(const std::string& from, const std::string& to) {
  std::error_code ec;
  if (std::filesystem::exists(to, ec)) {
    return Status::Error(to + " exists; remove it or choose another name");
  }
  const std::string partial = to + ".partial";
  std::filesystem::remove(partial, ec);
  if (::access(from.c_str(), R_OK) != 0) {
    return Status::Error("cannot read the database " + from + ": " + std::strerror(errno));
  }
  // Made here first so a missing or read-only folder is named with the
  // system's reason (SQLite would only say "unable to open database file").
  if (const int fd = ::open(partial.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
      fd >= 0) {
    ::close(fd);
  } else {
    return Status::Error("cannot write " + partial + ": " + std::strerror(errno));
  }
  Status s = Guard("backup", [&]() -> Status {
    // Read-write only so a WAL file can be read without its writer: nothing
    // is written to `from`.
    SQLite::Database source(from, SQLite::OPEN_READWRITE);
    source.setBusyTimeout(5000);
    {
      SQLite::Database target(partial, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
      // One step copies every page under one read transaction: a consistent
      // snapshot, however busy the daemon is meanwhile.
      SQLite::Backup backup(target, source);
      backup.executeStep(-1);
    }
    SQLite::Database copy(partial, SQLite::OPEN_READWRITE);
    copy.exec("PRAGMA journal_mode = DELETE");  // one self-contained file
    SQLite::Statement check(copy, "PRAGMA integrity_check");
    check.executeStep();
    const std::string verdict = check.getColumn(0).getString();
    if (verdict != "ok") return Status::Error("the copy fails its integrity check: " + verdict);
    return Status::Ok();
  });
  if (!s.ok()) {
    std::filesystem::remove(partial, ec);
    return s;
  }
  // The copy holds the same buyers' data: give it the original's mode, not
  // the umask's (often world-readable).
  std::filesystem::permissions(partial, std::filesystem::status(from, ec).permissions(), ec);
  std::filesystem::rename(partial, to, ec);
  if (ec) return Status::Error("cannot rename " + partial + " to " + to + ": " + ec.message());
  return Status::Ok();
}

}  // namespace tp
