#include "store/database.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "store/checkpointer.h"
#include "store/schema.h"
#include "store/sql.h"

namespace tp {

using sql::Failed;
using sql::Guard;

Database::Database(const std::string& path, int lock_fd)
    // One thread owns the connection: SQLite's per-call connection mutex
    // (serialized mode) buys nothing and costs a lock per API call.
    : lock_{lock_fd}, path_(path), db_(path, SQLite::OPEN_READWRITE | SQLite::OPEN_NOMUTEX) {}

Database::~Database() = default;

Database::LockFd::~LockFd() {
  if (fd >= 0) ::close(fd);
}

StatusOr<std::unique_ptr<Database>> Database::Open(const std::string& path, bool full_sync) {
  // SQLite's memory statistics take a global mutex on every allocation and
  // nothing here reads them. Only possible before SQLite initialises; a
  // later call is refused (SQLITE_MISUSE) and changes nothing.
  static const bool kNoMemoryStatistics = [] {
    return sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0) == SQLITE_OK;
  }();
  (void)kNoMemoryStatistics;
  // Lock first, so a second daemon does not even migrate the file. Locking
  // with flock() does not interfere with SQLite's own fcntl() locks.
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) return Status::Error("cannot open database " + path + ": " + std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    ::close(fd);
    return Status::Error("database " + path +
                         (err == EWOULDBLOCK
                              ? " is in use by another touchpointd"
                              : std::string(": cannot lock: ") + std::strerror(err)));
  }
  try {
    SQLite::Database db(path, SQLite::OPEN_READWRITE);
    db.setBusyTimeout(5000);
    db.exec("PRAGMA journal_mode = WAL");
    if (Status s = Migrate(db, kSchemaVersion); !s.ok()) {
      ::close(fd);
      return Status::Error("database " + path + ": " + s.message());
    }
  } catch (const std::exception& e) {
    ::close(fd);
    return Failed("cannot open database " + path, e);
  }
  std::unique_ptr<Database> d;
  try {
    d.reset(new Database(path, fd));  // its first member owns `fd`, even if this throws
  } catch (const std::exception& e) {
    return Failed("cannot open database " + path, e);
  }
  // From here `d` owns the lock's fd.
  try {
    SQLite::Database& db = d->db_;
    db.setBusyTimeout(5000);
    db.exec(full_sync ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL");
    // A statement that changes several rows inside a transaction keeps the
    // pages it changes in a statement journal, so that it can fail alone.
    // On disk that costs a write per page; in memory, a copy.
    db.exec("PRAGMA temp_store = MEMORY");
    // Checkpoints run on their own thread; a WAL that grew past the limit
    // meanwhile is truncated back when it restarts.
    db.exec("PRAGMA journal_size_limit = 67108864");
    d->checkpointer_ = std::make_unique<Checkpointer>(path);
    sqlite3_wal_hook(db.getHandle(), &Checkpointer::OnCommit, d->checkpointer_.get());
    return d;
  } catch (const std::exception& e) {
    return Failed("cannot open database " + path, e);
  }
}

void Database::SetMaxSize(std::optional<std::uint64_t> bytes) {
  // SQLite answers SQLITE_FULL past the cap, as on a full disk. No cap is
  // SQLite's own maximum.
  const std::int64_t page_size = db_.execAndGet("PRAGMA page_size").getInt64();
  const std::int64_t pages =
      bytes ? static_cast<std::int64_t>(*bytes) / page_size : std::int64_t{4294967294};
  const std::int64_t set =
      db_.execAndGet("PRAGMA max_page_count = " + std::to_string(pages)).getInt64();
  max_pages_.reset();
  if (bytes) max_pages_ = set;
}

StatusOr<StorageSpace> Database::Space() {
  auto space = MeasureFilesystem(path_);
  if (!space.ok()) return space;
  return Guard("measure the database", [&]() -> StatusOr<StorageSpace> {
    const auto page_size =
        static_cast<std::uint64_t>(db_.execAndGet("PRAGMA page_size").getInt64());
    const auto pages = static_cast<std::uint64_t>(db_.execAndGet("PRAGMA page_count").getInt64());
    const auto free_pages =
        static_cast<std::uint64_t>(db_.execAndGet("PRAGMA freelist_count").getInt64());
    space->free_pages = free_pages * page_size;
    if (max_pages_) {
      const auto cap = static_cast<std::uint64_t>(*max_pages_) * page_size;
      space->cap = cap;
      space->cap_left = cap > pages * page_size ? cap - pages * page_size : 0;
    }
    return *space;
  });
}

Status Database::Run(const char* what, const char* sql) {
  return Guard(what, [&] {
    db_.exec(sql);
    return Status::Ok();
  });
}

StatusOr<std::int64_t> Database::Count(const char* what, const char* sql, std::string_view arg) {
  return Guard(what, [&]() -> StatusOr<std::int64_t> {
    SQLite::Statement q(db_, sql);
    sql::BindText(q, 1, arg);
    q.executeStep();
    return q.getColumn(0).getInt64();
  });
}

Status Database::Atomically(const char* what, const std::function<void()>& fn) {
  if (enclosed_) {
    try {
      fn();
      return Status::Ok();
    } catch (const std::exception& e) {
      return Failed(what, e);
    }
  }
  // Outside a transaction, one of its own, IMMEDIATE. A SAVEPOINT would
  // begin a deferred one, whose first write then takes the write lock
  // from a read transaction, where SQLite does not call the busy handler:
  // SQLITE_BUSY at once whenever another connection holds that lock for a
  // moment, as the checkpointer's does when it reads a WAL header a commit
  // is rewriting (wal.c, walIndexReadHdr). A purchase was refused so, now
  // and then, under load (SqliteStoreTest.TheWalStaysBoundedUnderSteadyWrites).
  const bool own = sqlite3_get_autocommit(db_.getHandle()) != 0;
  try {
    db_.exec(own ? "BEGIN IMMEDIATE" : "SAVEPOINT op");
  } catch (const std::exception& e) {
    return Failed(what, e);
  }
  try {
    fn();
    db_.exec(own ? "COMMIT" : "RELEASE op");
    return Status::Ok();
  } catch (const std::exception& e) {
    try {
      if (own) {
        if (sqlite3_get_autocommit(db_.getHandle()) == 0) db_.exec("ROLLBACK");
      } else {
        db_.exec("ROLLBACK TO op");
        db_.exec("RELEASE op");
      }
    } catch (const std::exception&) {
      // The transaction is gone already (SQLite rolled it back itself).
    }
    return Failed(what, e);
  }
}

Status Database::Begin() { return Run("begin", "BEGIN IMMEDIATE"); }
Status Database::Commit() { return Run("commit", "COMMIT"); }
Status Database::Rollback() {
  enclosed_ = false;
  if (sqlite3_get_autocommit(db_.getHandle()) != 0) return Status::Ok();
  return Run("rollback", "ROLLBACK");
}
Status Database::Savepoint() {
  Status s = Run("savepoint", "SAVEPOINT request");
  enclosed_ = s.ok();
  return s;
}
Status Database::Release() {
  enclosed_ = false;
  return Run("release", "RELEASE request");
}
Status Database::RollbackTo() {
  enclosed_ = false;
  return Run("rollback to savepoint", "ROLLBACK TO request; RELEASE request");
}

Transaction::Transaction(Database& db, Calls calls) : db_(db), begun_(db.Begin()) {
  open_ = begun_.ok();
  if (open_ && calls == Calls::kAllOrNothing) db_.set_enclosed(true);
}

Transaction::~Transaction() {
  db_.set_enclosed(false);
  if (open_) (void)db_.Rollback();
}

Status Transaction::Commit() {
  db_.set_enclosed(false);
  if (!open_) return Status::Error("commit: no transaction");
  open_ = false;
  if (Status s = db_.Commit(); !s.ok()) {
    (void)db_.Rollback();
    return s;
  }
  return Status::Ok();
}

}  // namespace tp
