#include "store/pg/session.h"

#include <utility>

#include "store/pg/schema.h"

namespace tp::pgstore {

Session::Session(std::string url, std::string application_name, std::string settings)
    : url_(std::move(url)),
      application_name_(std::move(application_name)),
      settings_(std::move(settings)) {
  conn_ = pg::Connection::Open(url_, application_name_, settings_);
  if (Status s = Migrate(*conn_); !s.ok()) throw pg::Error(s.message(), "", false);
}

pg::Connection& Session::conn() {
  if (deferred_) {
    // Taken out first: the write itself asks for the connection.
    auto write = std::move(deferred_);
    deferred_ = nullptr;
    try {
      write();
    } catch (...) {
      // What the caller kept counts the write as done: void from here.
      EndScope();
      throw;
    }
  }
  if (broken_) {
    throw pg::Error("the connection to PostgreSQL was lost inside a transaction", "08006", true);
  }
  // ok() reads what the server sent: asked once, so both checks agree.
  const bool alive = conn_ && conn_->ok();
  if (conn_ && !alive && (group_ || claim_)) {
    // What the transaction held is gone with the session: never carry on
    // with its work on another.
    Drop();
    throw pg::Error("the connection to the database was lost inside a transaction", "08006", true);
  }
  if (!alive) {
    conn_.reset();
    identity_.reset();
    if (!connecting_.valid()) {
      // While the server does not answer, one attempt per kReconnectPause.
      const auto now = std::chrono::steady_clock::now();
      if (last_failed_connect_ && now - *last_failed_connect_ < kReconnectPause) {
        throw pg::Error("not connected to the database (reconnecting)", "08006", true);
      }
      connecting_ = std::async(std::launch::async,
                               [url = url_, name = application_name_, settings = settings_] {
                                 return pg::Connection::Open(url, name, settings);
                               });
    }
    if (connecting_.wait_for(kConnectWait) != std::future_status::ready) {
      throw pg::Error("not connected to the database (connecting, no answer yet)", "08006", true);
    }
    try {
      conn_ = connecting_.get();
      last_failed_connect_.reset();
    } catch (const pg::Error&) {
      last_failed_connect_ = std::chrono::steady_clock::now();
      throw;
    }
  }
  return *conn_;
}

const Session::Identity& Session::identity() {
  pg::Connection& c = conn();
  if (!identity_) {
    pg::Result r = c.Exec(
        "SELECT pid, (extract(epoch FROM backend_start) * 1000000)::bigint FROM pg_stat_activity "
        "WHERE pid = pg_backend_pid()");
    identity_ = Identity{r.Int64(0, 0), r.Int64(0, 1)};
  }
  return *identity_;
}

void Session::Defer(std::function<void()> write) {
  if (deferred_) throw pg::Error("a deferred write is already waiting", "", false);
  if (scope() == 0) throw pg::Error("a deferred write needs a group", "", false);
  deferred_ = std::move(write);
}

void Session::EndScope() {
  ++scope_;
  deferred_ = nullptr;
}

void Session::Drop() {
  EndScope();
  conn_.reset();
  identity_.reset();
  // A group's requests were answered as if committed: its caller must
  // learn that it was lost. A claim was the pass's own: gone with it.
  if (group_) broken_ = true;
  claim_ = false;
}

Status Session::Failed(std::string_view what, const std::exception& e) {
  const auto* pe = dynamic_cast<const pg::Error*>(&e);
  if (pe != nullptr && pe->connection_lost()) {
    Drop();
  } else if (claim_ && !group_) {
    // A claim whose pass failed is over: its locks go now, and the next
    // read does not run in an aborted transaction.
    EndClaim(false);
  }
  return pg::ToStatus(what, e);
}

void Session::EndClaim(bool commit) {
  if (!claim_) return;
  claim_ = false;
  try {
    if (conn_ && conn_->ok()) conn_->Exec(commit ? "COMMIT" : "ROLLBACK");
  } catch (const std::exception&) {
    // Ended either way: the server ends a transaction whose session fails.
  }
}

Status Session::Atomically(std::string_view what, const std::function<void()>& fn) {
  try {
    if (claim_ && !group_) {
      // A call outside the claim (ingest between two fires): the claim was
      // abandoned (its scheduler pass failed), so its locks go.
      claim_ = false;
      conn().Exec("ROLLBACK");
    }
    if (group_ && enclosed_) {
      fn();
      return Status::Ok();
    }
    if (group_) {
      conn().Exec("SAVEPOINT call");
      try {
        fn();
      } catch (...) {
        EndScope();
        if (conn_ && conn_->ok()) conn_->Exec("ROLLBACK TO SAVEPOINT call");
        throw;
      }
      conn().Exec("RELEASE SAVEPOINT call");
      return Status::Ok();
    }
    pg::Transaction txn(conn());
    fn();
    txn.Commit();
    return Status::Ok();
  } catch (const std::exception& e) {
    return Failed(what, e);
  }
}

Status Session::Begin() {
  if (group_) return Status::Error("begin: a transaction is already open");
  try {
    if (claim_) {
      claim_ = false;
      conn().Exec("ROLLBACK");
    }
    conn().Exec("BEGIN");
    group_ = true;
    EndScope();
    return Status::Ok();
  } catch (const std::exception& e) {
    return Failed("begin", e);
  }
}

Status Session::Commit() {
  if (!group_) return Status::Error("commit: no transaction is open");
  try {
    pg::Result r = conn().Exec("COMMIT");
    group_ = false;
    enclosed_ = false;
    EndScope();
    // A transaction a statement failed in is rolled back by COMMIT, which
    // says so only in its tag.
    if (r.command() != "COMMIT") {
      return Status::Error("commit: the transaction had failed and was rolled back");
    }
    return Status::Ok();
  } catch (const std::exception& e) {
    return Failed("commit", e);
  }
}

Status Session::Rollback() {
  const bool had = group_ && !broken_;
  EndScope();
  group_ = false;
  enclosed_ = false;
  broken_ = false;
  if (!had) return Status::Ok();
  try {
    // After a failed COMMIT the server has rolled back already; ROLLBACK
    // then only warns.
    if (conn_ && conn_->ok()) conn_->Exec("ROLLBACK");
    return Status::Ok();
  } catch (const std::exception& e) {
    return Failed("rollback", e);
  }
}

Status Session::Savepoint() {
  try {
    conn().Exec("SAVEPOINT request");
    enclosed_ = true;
    return Status::Ok();
  } catch (const std::exception& e) {
    return Failed("savepoint", e);
  }
}

Status Session::Release() {
  try {
    conn().Exec("RELEASE SAVEPOINT request");
    enclosed_ = false;
    return Status::Ok();
  } catch (const std::exception& e) {
    return Failed("release savepoint", e);
  }
}

Status Session::RollbackTo() {
  enclosed_ = false;
  EndScope();
  try {
    conn().Exec("ROLLBACK TO SAVEPOINT request");
    conn().Exec("RELEASE SAVEPOINT request");
    return Status::Ok();
  } catch (const std::exception& e) {
    return Failed("rollback to savepoint", e);
  }
}

void Session::BeginClaim() {
  if (group_) return;
  if (claim_) {
    claim_ = false;
    conn().Exec("ROLLBACK");
  }
  conn().Exec("BEGIN");
  claim_ = true;
}

Status Session::FinishClaim(std::string_view what, const std::function<void()>& fn) {
  if (!claim_) return Atomically(what, fn);
  try {
    fn();
    claim_ = false;
    conn().Exec("COMMIT");
    return Status::Ok();
  } catch (const std::exception& e) {
    EndClaim(false);
    return Failed(what, e);
  }
}

}  // namespace tp::pgstore
