// Grouping store calls into one transaction (the daemon's group commit):
// Begin()/Commit(), and inside them Savepoint()/Release()/RollbackTo() to
// make one request's calls atomic, so a bad request rolls back alone while
// the others commit. Between Savepoint() and Release() the calls open no
// savepoints of their own: after any error the caller must RollbackTo().
// SqliteStore implements it.
//
// Threading: the thread that owns the store. Errors: a Status, Unavailable
// when storage is full for now; after a failed Commit() the caller must
// Rollback() (which does nothing if the store already rolled back).
#pragma once

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
};

}  // namespace tp
