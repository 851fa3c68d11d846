#include "store/pg/session.h"

#include <spdlog/spdlog.h>

#include <string>
#include <system_error>
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
  if (conn_ && !alive && atomic_) {
    // Not dropped here: Atomically()'s transaction (and its caller's
    // statements) still refer to this connection. It is dropped once they
    // are gone, when the error reaches Atomically().
    throw pg::Error("the connection to the database was lost inside a transaction", "08006", true);
  }
  if (conn_ && !alive && (group_ || claim_)) {
    // What the transaction held is gone with the session: never carry on
    // with its work on another.
    Drop();
    throw pg::Error("the connection to the database was lost inside a transaction", "08006", true);
  }
  if (!alive) {
    conn_.reset();
    ForgetIdentity();
    const auto now = std::chrono::steady_clock::now();
    const auto ready = [this](std::chrono::milliseconds wait) {
      return connecting_.wait_for(wait) == std::future_status::ready;
    };
    if (connecting_.valid() && ready(std::chrono::milliseconds(0)) && TakeAttempt(now)) {
      return *conn_;
    }
    if (!connecting_.valid()) {
      // While the server does not answer, one attempt per kReconnectPause.
      if (last_failed_connect_ && now - *last_failed_connect_ < kReconnectPause &&
          answers_.load(std::memory_order_relaxed) == answers_before_attempt_) {
        throw pg::Error("not connected to the database (reconnecting)", "08006", true);
      }
      StartAttempt();
      // Only the call that starts an attempt waits for it.
      if (ready(kConnectWait) && TakeAttempt(now)) return *conn_;
    }
    throw pg::Error("not connected to the database (connecting, no answer yet)", "08006", true);
  }
  return *conn_;
}

void Session::StartAttempt() {
  const std::uint64_t answers = answers_.load(std::memory_order_relaxed);
  try {
    connecting_ = std::async(
        std::launch::async, [url = url_, name = application_name_, settings = settings_] {
          Attempt a;
          try {
            a.conn = pg::Connection::Open(url, name, settings);
          } catch (const pg::Error&) {
            a.error = std::current_exception();
          } catch (const std::exception& e) {
            a.error = std::make_exception_ptr(
                pg::Error(std::string("cannot connect to the database: ") + e.what(), "", true));
          }
          a.finished = std::chrono::steady_clock::now();
          return a;
        });
  } catch (const std::system_error& e) {  // no thread to be had
    throw pg::Error(std::string("cannot connect to the database: ") + e.what(), "", true);
  }
  answers_before_attempt_ = answers;
}

void Session::set_answer_limit(std::chrono::milliseconds limit) {
  answer_limit_ = limit;
  if (conn_) conn_->set_answer_limit(limit);
}

void Session::set_statement_timeout(std::chrono::milliseconds timeout) {
  const std::string ms = std::to_string(timeout.count());
  settings_ += (settings_.empty() ? "" : " ") + std::string("-c statement_timeout=") + ms;
  conn().Exec("SET statement_timeout = " + ms);
}

bool Session::TakeAttempt(std::chrono::steady_clock::time_point now) {
  Attempt a = connecting_.get();
  if (a.conn && a.conn->ok()) {
    conn_ = std::move(a.conn);
    conn_->set_answer_limit(answer_limit_);
    last_failed_connect_.reset();
    return true;
  }
  // An outcome nobody asked for in time (the daemon was paused meanwhile)
  // says nothing of now: a new attempt.
  if (now - a.finished >= kReconnectPause) {
    if (a.error) {
      try {
        std::rethrow_exception(a.error);
      } catch (const std::exception& e) {
        spdlog::debug("{}: a reconnect that failed unasked ({}); trying again", application_name_,
                      e.what());
      }
    }
    last_failed_connect_.reset();
    return false;
  }
  last_failed_connect_ = a.finished;
  if (a.error) std::rethrow_exception(a.error);
  throw pg::Error("the new connection to the database was lost", "08006", true);
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

void Session::ForgetIdentity() {
  if (!identity_) return;
  if (earlier_.size() == kEarlierKept) earlier_.erase(earlier_.begin());
  earlier_.push_back(*identity_);
  identity_.reset();
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
  ForgetIdentity();
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
  // (A statement the server ended at a statement timeout or a cancel,
  // 57014, is a server too slow for now, as one given up past the answer
  // limit is away: Unavailable, try later; pg::Error::transient().)
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

Status Session::Atomically(std::string_view what, const std::function<void()>& fn,
                           pg::Transaction::Mode mode) {
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
    {
      pg::Transaction txn(conn(), mode);
      // Until the transaction ends: conn() must not open another meanwhile
      // (the rest of fn's statements would run there, outside it, and txn
      // would refer to a connection gone).
      struct Inside {
        bool& flag;
        const bool was;
        explicit Inside(bool& f) : flag(f), was(f) { flag = true; }
        ~Inside() { flag = was; }
        Inside(const Inside&) = delete;
        Inside& operator=(const Inside&) = delete;
      } inside(atomic_);
      fn();
      txn.Commit();
    }
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
    ++groups_;
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
    // Asked while the claim is still open, conn() refuses a connection lost
    // meanwhile: were it to open another, COMMIT there would only warn that
    // no transaction is open, and the claim's writes, rolled back with its
    // session, would count as done.
    pg::Result r = conn().Exec("COMMIT");
    claim_ = false;
    if (r.command() != "COMMIT") {
      return Status::Error(std::string(what) + ": the transaction had failed and was rolled back");
    }
    return Status::Ok();
  } catch (const std::exception& e) {
    EndClaim(false);
    return Failed(what, e);
  }
}

}  // namespace tp::pgstore
