// A small RAII layer over libpq, in the manner of SQLiteCpp: a Connection
// owns a PGconn, a Result owns a PGresult, a Statement is prepared once per
// connection and reused, a Transaction rolls back in its destructor unless
// committed. Parameters and results travel as text (PostgreSQL's own input
// and output forms), so nothing here knows a type's binary layout.
//
// Errors are exceptions inside the store (pg::Error, with the SQLSTATE and
// whether the connection is gone) and become a Status at the store's
// boundary (ToStatus): a lost connection or a server that is starting,
// stopping or out of disk is Unavailable (the same call may work later),
// anything else an Error.
//
// Not thread-safe: a Connection belongs to one thread at a time.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <initializer_list>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "core/status.h"

struct pg_conn;
struct pg_result;
struct pg_cancel;

namespace tp::pg {

class Error : public std::runtime_error {
 public:
  Error(const std::string& message, std::string sqlstate, bool connection_lost,
        std::string constraint = {})
      : std::runtime_error(message),
        sqlstate_(std::move(sqlstate)),
        constraint_(std::move(constraint)),
        connection_lost_(connection_lost) {}
  // The five-character SQLSTATE, or "" when the server sent none (the
  // connection failed).
  const std::string& sqlstate() const { return sqlstate_; }
  // The constraint a violation names (a unique key's index), or "".
  const std::string& constraint() const { return constraint_; }
  bool connection_lost() const { return connection_lost_; }
  // Whether the same work may succeed if tried again: the connection is
  // gone, the server is starting or shutting down, short of disk or
  // memory, or the transaction lost a deadlock or serialization race.
  bool transient() const;
  // A deadlock or serialization failure: retry the whole transaction.
  bool retry_transaction() const { return sqlstate_ == "40001" || sqlstate_ == "40P01"; }

 private:
  std::string sqlstate_;
  std::string constraint_;
  bool connection_lost_;
};

// An exception as a Status naming `what`: Unavailable when transient.
Status ToStatus(std::string_view what, const std::exception& e);

// Runs `fn`, turning exceptions into a Status naming `what`.
template <typename Fn>
auto Guard(std::string_view what, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const std::exception& e) {
    return ToStatus(what, e);
  }
}

// A query's rows. Values are text; NULL reads as IsNull().
class Result {
 public:
  Result() = default;
  explicit Result(pg_result* r) : r_(r) {}
  Result(Result&& other) noexcept : r_(other.r_) { other.r_ = nullptr; }
  Result& operator=(Result&& other) noexcept;
  ~Result();
  Result(const Result&) = delete;
  Result& operator=(const Result&) = delete;

  int rows() const;
  int cols() const;
  // Rows an INSERT/UPDATE/DELETE touched.
  std::int64_t affected() const;
  // The command's tag: "COMMIT", or "ROLLBACK" for a COMMIT of a
  // transaction that had failed.
  std::string_view command() const;
  bool IsNull(int row, int col) const;
  // Valid while this Result lives.
  std::string_view Text(int row, int col) const;
  std::int64_t Int64(int row, int col) const;
  double Double(int row, int col) const;
  bool Bool(int row, int col) const;
  std::optional<std::int64_t> OptionalInt64(int row, int col) const;

 private:
  pg_result* r_ = nullptr;
};

// Text parameters for one statement: values are copied in. Not copyable:
// values() points into the values' own storage.
class Params {
 public:
  Params() = default;
  Params(const Params&) = delete;
  Params& operator=(const Params&) = delete;
  Params(Params&&) = default;
  Params& operator=(Params&&) = default;
  Params& Add(std::string_view text);
  // (Else a string literal would be taken for a bool.)
  Params& Add(const char* text) { return Add(std::string_view(text)); }
  Params& Add(std::int64_t v);
  Params& Add(int v) { return Add(static_cast<std::int64_t>(v)); }
  Params& Add(double v);
  Params& Add(bool v) { return Add(std::string_view(v ? "t" : "f")); }
  Params& AddNull();
  // NULL for an empty text.
  Params& AddTextOrNull(std::string_view text);
  Params& Add(std::optional<std::int64_t> v) { return v ? Add(*v) : AddNull(); }
  // PostgreSQL's array literal of the values: `= ANY($n)` in SQL, one
  // parameter for a whole batch.
  Params& AddArray(const std::vector<std::int64_t>& values);
  Params& AddArray(const std::vector<std::string>& values);
  Params& AddArray(const std::vector<double>& values);

  int size() const { return static_cast<int>(values_.size()); }
  const char* const* values() const { return values_.data(); }
  const int* lengths() const { return lengths_.data(); }

 private:
  std::deque<std::string> storage_;  // stable addresses for values_
  std::vector<const char*> values_;
  std::vector<int> lengths_;
};

// SQL prepared on each connection that runs it, under a name of its own.
class Statement {
 public:
  // How the server plans it.
  enum class Plan : std::uint8_t {
    // Prepared once: after five runs the server may keep one generic plan
    // for every run, which it makes again only when the tables' statistics
    // change.
    kCached,
    // Planned at each run for its parameters and the tables' sizes then
    // (sent unprepared). For a statement whose table grows from empty
    // faster than autovacuum analyzes it: a generic plan made while it was
    // small scans the whole table at each run once it is large (an ack
    // planned on an empty queue took 2 s a run at 200,000 messages).
    kEachRun,
  };
  explicit Statement(std::string sql, Plan plan = Plan::kCached);
  const std::string& sql() const { return sql_; }
  const std::string& name() const { return name_; }
  Plan plan() const { return plan_; }

 private:
  std::string sql_;
  std::string name_;
  Plan plan_;
};

class Connection {
 public:
  // Connects to `url` (postgresql://USER@HOST:PORT/DB?...) within 2 s
  // (connect_timeout), unless the URL says otherwise. TCP keepalives are on
  // both ways, so a peer cut from the network is noticed within 8 s.
  // Throws Error.
  // `settings`: more server settings for the session, as `-c name=value`
  // options after the defaults.
  static std::unique_ptr<Connection> Open(const std::string& url,
                                          std::string_view application_name = "touchpointd",
                                          std::string_view settings = {});
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // One or more statements without parameters. Throws Error.
  Result Exec(std::string_view sql);
  // One statement with parameters (unprepared). Throws Error.
  Result Exec(std::string_view sql, const Params& params);
  // `statement`, prepared on this connection the first time (unless it is
  // planned at each run). Throws Error.
  Result Run(const Statement& statement, const Params& params = {});
  // One statement of RunTogether().
  struct Step {
    const Statement& statement;
    const Params& params;
  };
  // `steps` sent at once and answered at once (libpq's pipeline mode): one
  // round trip for them all. Each statement takes its own snapshot, as
  // Run() one after the other would, and in that order. Outside a
  // transaction they are one transaction of their own, committed after the
  // last; inside one, part of it. At the first that fails the rest do not
  // run (nothing of them is committed) and its error is thrown. Their
  // results in order. Throws Error: the server's, an error at the implicit
  // commit (a deferred constraint, a serialization failure) included; one
  // that leaves the pipeline unfinished (the connection went, or a send
  // failed) leaves the connection not ok(), refusing anything more, and
  // says the connection was lost. More than 65,535 parameters for a
  // statement is an error before anything is sent.
  std::vector<Result> RunTogether(std::initializer_list<Step> steps);
  // COPY table (columns) FROM STDIN with rows in text format, each row's
  // values tab-separated and escaped by CopyText(). Throws Error.
  void CopyIn(std::string_view copy_sql, std::string_view data);

  // Whether the connection is still up: as libpq last saw it, after reading
  // (without waiting) what the server sent since, so a session the server
  // ended shows as down; and not left mid-pipeline (RunTogether). Notifications read are kept for
  // TakeNotifications().
  bool ok() const;
  // The server's process id for this session (pg_terminate_backend()).
  int backend_pid() const;
  // Whether a transaction is open on it (begun, not yet ended).
  bool in_transaction() const;
  pg_conn* handle() { return conn_; }
  // At most this long to wait for the server's answer to a statement
  // (zero, the default: as long as the connection stays up). Past it the
  // connection is given up: not ok(), and the statement throws an Error
  // that says the connection was lost. A server that is stopped (a frozen
  // VM, a stalled disk) keeps the connection up, and nothing else ends the
  // wait.
  void set_answer_limit(std::chrono::milliseconds limit) { answer_limit_ = limit; }
  // Notifications received (LISTEN), consumed without waiting: returns the
  // channels that have been notified since the last call. Throws Error.
  std::vector<std::string> TakeNotifications();

  // How long the statement of this process's connections that has waited
  // longest for the server's answer so far has waited (zero: none waits).
  // A server that stopped answering shows here, whichever thread waits for
  // it, with or without an answer limit. Any thread may call it.
  static std::chrono::milliseconds LongestWait();
  // Leaves this connection's statements out of LongestWait(): those that
  // may run for minutes by design (an outcomes report, a count of every
  // pending touchpoint), which say nothing of the server. Owner's thread.
  void set_watched(bool watched) { watched_.store(watched, std::memory_order_relaxed); }
  // Cuts loose every statement of this process's connections that has
  // waited at least `waited` for the server's answer (watched or not): its
  // socket is shut down, so its wait ends at once and it throws an Error
  // that says the connection was lost, whether or not the server would
  // ever answer. For a stop that a frozen server would hold (the daemon's,
  // daemon/stop_guard.h): a statement cut at its commit may have
  // committed. How many were cut. Any thread may call it.
  static int CutWaiting(std::chrono::milliseconds waited);

 private:
  explicit Connection(pg_conn* conn);
  // Marks a statement waiting for its answer while it lives (the outermost
  // of nested ones), for LongestWait().
  class Waiting {
   public:
    explicit Waiting(Connection& c);
    ~Waiting();
    Waiting(const Waiting&) = delete;
    Waiting& operator=(const Waiting&) = delete;

   private:
    Connection& c_;
  };
  // Throws a lost connection's Error once left mid-pipeline.
  void RefuseIfBroken() const;
  // A PQsend*() or a copy's data refused: the connection is given up
  // (broken_), and libpq's reason thrown.
  [[noreturn]] void SendFailed(std::string_view what);
  Result Check(pg_result* r, std::string_view sql);
  // With an answer limit: when the answer to what was sent now must have
  // come (lib/pg/answer.cc); without one, Deadline::max().
  using Deadline = std::chrono::steady_clock::time_point;
  Deadline AnswerDeadline() const;
  // Waits for the answer until `deadline` (at once for Deadline::max()):
  // past it, throws Error, the connection given up.
  void AwaitAnswer(std::string_view what, Deadline deadline);
  // PQgetResult() after AwaitAnswer().
  pg_result* NextResult(std::string_view what, Deadline deadline);
  // What PQexec() would return for what was sent, by NextResult().
  pg_result* LastResult(std::string_view what);

  pg_conn* conn_;
  std::unordered_set<std::string> prepared_;
  bool broken_ = false;  // left mid-pipeline (RunTogether) or a copy, or waited on too long
  std::chrono::milliseconds answer_limit_{0};
  // A copy of the connection's socket descriptor (-1 if none could be
  // made), open while the connection is, and whether CutWaiting() shut it
  // down.
  int socket_;
  mutable std::atomic<bool> cut_{false};
  // Since when (steady clock, nanoseconds) the statement under way has
  // waited; 0: none. Written by the owner's thread, read by LongestWait()
  // and CutWaiting().
  std::atomic<std::int64_t> waiting_since_{0};
  int waiting_depth_ = 0;
  std::atomic<bool> watched_{true};
};

// Asks the server to cancel the statement a connection is running, from
// any thread (libpq's PQcancel, a connection of its own to the server):
// the statement fails with SQLSTATE 57014. The request arrives a moment
// later: one that finds the session idle is ignored, but it may find the
// next statement instead, so cancel only a connection whose later
// statements may fail too. Made from a connection on its owner's thread;
// stays usable (and does nothing harmful) after that connection is gone.
class Canceller {
 public:
  explicit Canceller(Connection& c);
  ~Canceller();
  Canceller(const Canceller&) = delete;
  Canceller& operator=(const Canceller&) = delete;
  // Whether the request was sent (not whether anything was cancelled).
  bool Cancel() const;

 private:
  pg_cancel* cancel_;
};

// Appends `text` to a COPY text-format row, escaped.
void CopyText(std::string& row, std::string_view text);

// BEGIN ... COMMIT; rolled back by the destructor unless committed.
class Transaction {
 public:
  enum class Mode : std::uint8_t {
    kReadWrite,  // BEGIN: the session's defaults (read committed)
    kSnapshot,   // read only, every statement seeing the database as the first did
  };
  explicit Transaction(Connection& conn, Mode mode = Mode::kReadWrite);
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  void Commit();

 private:
  Connection& conn_;
  bool open_ = true;
};

}  // namespace tp::pg
