// The store's database handle: one SQLite file in WAL mode, locked against a
// second daemon, migrated to this build's schema, with its checkpointer
// thread; and its transactions. Internal to lib/store: the files that hold
// the tables' statements (schedule_tables.h, queue_tables.h, ...) write
// through it.
//
// Transactions. Every mutating call of the store is atomic on its own
// (Atomically(): an IMMEDIATE transaction of its own, or a savepoint inside
// a group). Begin()/Commit() group several
// calls (the daemon's group commit), and Savepoint()/Release()/RollbackTo()
// make a part of that group atomic, so one bad request rolls back alone
// while the others commit. Between Savepoint() and Release() calls open no
// savepoints of their own (they cost a copy of every page touched): after
// any error the caller must RollbackTo(). A Transaction is a group in RAII
// form, rolled back by its destructor unless committed.
//
// Not thread-safe: one thread owns it (the daemon's I/O thread).
#pragma once

#include <SQLiteCpp/Database.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"
#include "store/space.h"

namespace tp {

class Checkpointer;

class Database {
 public:
  // Opens (creating if needed) and migrates the file at `path` after taking
  // an exclusive lock on it, so no second daemon fires from the same file.
  // `full_sync`: PRAGMA synchronous = FULL rather than NORMAL.
  static StatusOr<std::unique_ptr<Database>> Open(const std::string& path, bool full_sync);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  SQLite::Database& sql() { return db_; }
  const std::string& path() const { return path_; }

  // Caps the file at `bytes` (PRAGMA max_page_count), or lifts the cap:
  // past it writes fail with SQLITE_FULL, as on a full disk. A cap under
  // the file's size holds it there. Throws SQLite's errors.
  void SetMaxSize(std::optional<std::uint64_t> bytes);
  // The room the file has to grow (store/space.h).
  StatusOr<StorageSpace> Space();

  // `sql` with an error naming `what` instead of an exception.
  Status Run(const char* what, const char* sql);
  // SELECT COUNT(*) ... with one text parameter.
  StatusOr<std::int64_t> Count(const char* what, const char* sql, std::string_view arg);
  // Runs `fn` (which throws SQLite's errors) atomically on its own, or as
  // part of the caller's transaction; inside a RequestScope, atomic with it.
  Status Atomically(const char* what, const std::function<void()>& fn);

  // The transaction calls the store's facade offers (sqlite_store.h).
  Status Begin();
  Status Commit();
  Status Rollback();  // nothing to undo when SQLite rolled back itself
  Status Savepoint();
  Status Release();
  Status RollbackTo();
  // While true, calls run without a savepoint of their own: the caller
  // rolls back on any error.
  bool enclosed() const { return enclosed_; }
  void set_enclosed(bool enclosed) { enclosed_ = enclosed; }

 private:
  Database(const std::string& path, int lock_fd);

  // The flock() against a second daemon. Declared first, so closed last:
  // a process's POSIX locks on the file (SQLite's) die with its last fd.
  struct LockFd {
    int fd = -1;
    ~LockFd();
  } lock_;
  std::string path_;
  SQLite::Database db_;
  // Declared after `db_`: stops and closes its connection before `db_` closes.
  std::unique_ptr<Checkpointer> checkpointer_;
  // PRAGMA max_page_count as set by SetMaxSize(), if capped.
  std::optional<std::int64_t> max_pages_;
  bool enclosed_ = false;
};

// BEGIN IMMEDIATE ... COMMIT; rolled back by the destructor unless
// committed. With `enclosing`, calls inside run without savepoints of their
// own, and the whole transaction is all or nothing.
class Transaction {
 public:
  enum class Calls : bool { kEachAtomic, kAllOrNothing };
  Transaction(Database& db, Calls calls);
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  // Whether BEGIN worked; nothing else may be called if not.
  const Status& status() const { return begun_; }
  Status Commit();

 private:
  Database& db_;
  Status begun_;
  bool open_ = false;
};

}  // namespace tp
