// Grouping store calls into one transaction (the daemon's group commit):
// Begin()/Commit(), and inside them Savepoint()/Release()/RollbackTo() to
// make one request's calls atomic, so a bad request rolls back alone while
// the others commit. Between Savepoint() and Release() the calls open no
// savepoints of their own: after any error the caller must RollbackTo().
// SqliteStore implements it; PgStore too, with TakeBuyersTurns().
//
// Threading: the thread that owns the store. Errors: a Status, Unavailable
// when storage is full for now; after a failed Commit() the caller must
// Rollback() (which does nothing if the store already rolled back).
#pragma once

#include <span>
#include <string>

#include "core/status.h"

namespace tp {

class Transactions {
 public:
  virtual ~Transactions() = default;

  virtual Status Begin() = 0;
  virtual Status Commit() = 0;
  virtual Status Rollback() = 0;
  virtual Status Savepoint() = 0;
  virtual Status Release() = 0;
  virtual Status RollbackTo() = 0;

  // Inside a group, before its requests: holds, until the group ends, the
  // turns of the buyers its requests write, taken in one order. Two
  // writers' groups that share buyers then wait for each other rather than
  // deadlock (a request takes its buyers as it goes: events one at a time).
  // A store with one writer at a time (SQLite) has nothing to hold.
  virtual Status TakeBuyersTurns(std::span<const std::string> buyer_ids) {
    (void)buyer_ids;
    return Status::Ok();
  }
};

}  // namespace tp
