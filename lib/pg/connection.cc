#include "pg/connection.h"

#include <libpq-fe.h>
#include <sys/socket.h>

#include <array>
#include <atomic>
#include <charconv>
#include <cstdio>
#include <cstring>

#include "pg/errors.h"
#include "pg/url.h"

namespace tp::pg {
namespace {

// The connection is gone, or never was: SQLSTATE class 08, except 08P01
// (protocol_violation), which the server also answers a client's mistake
// with (a statement given the wrong number of parameters) on a session
// that goes on; where it ends the session, the connection's status says
// so.
bool IsConnectionClass(std::string_view sqlstate) {
  return sqlstate.substr(0, 2) == "08" && sqlstate != "08P01";
}

// 25006, read_only_sql_transaction.
constexpr std::string_view kReadOnly = "25006";

// A write refused because the session is on a standby (a URL of several
// hosts without `target_session_attrs=read-write`, or a server that came
// back as one): a new session may find the primary. The server reports
// `in_hot_standby` to the client with every change, so this asks it
// nothing.
bool OnStandby(pg_conn* conn, std::string_view sqlstate) {
  if (conn == nullptr || sqlstate != kReadOnly) return false;
  const char* standby = PQparameterStatus(conn, "in_hot_standby");
  return standby != nullptr && std::string_view(standby) == "on";
}

using detail::Head;
using detail::MakeError;

[[noreturn]] void Throw(pg_conn* conn, const pg_result* r, std::string_view what) {
  throw MakeError(conn, r, what);
}

template <typename T>
T Parse(std::string_view text, const char* what) {
  T v{};
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size()) {
    throw Error(std::string("not ") + what + ": " + std::string(text), "", false);
  }
  return v;
}

}  // namespace

namespace detail {

// (A hint after a tab, DETAIL and HINT after the message, a caret under the
// statement: so that a log line or a JSON error stays one line.)
std::string OneLine(std::string_view message) {
  std::string out;
  while (!message.empty()) {
    const auto end = message.find('\n');
    std::string_view line = message.substr(0, end);
    message = end == std::string_view::npos ? std::string_view() : message.substr(end + 1);
    const bool indented = !line.empty() && (line[0] == '\t' || line[0] == ' ');
    const auto first = line.find_first_not_of(" \t\r");
    if (first == std::string_view::npos) continue;
    line = line.substr(first);
    while (!line.empty() && (line.back() == ' ' || line.back() == '\r')) line.remove_suffix(1);
    // The caret under a statement's position points at nothing on one line.
    if (line.find_first_not_of("^ ") == std::string_view::npos) continue;
    // An indented line (libpq's hints) goes on the sentence before it, or
    // starts the next; DETAIL, HINT and the statement's line come after.
    if (!out.empty() && !indented) {
      out += "; ";
    } else if (!out.empty()) {
      const bool continues = line[0] >= 'a' && line[0] <= 'z';
      const bool ended = out.back() == '.' || out.back() == '?' || out.back() == '!';
      out += continues || ended ? " " : ". ";
    }
    out += line;
  }
  return out;
}

Error MakeError(pg_conn* conn, const pg_result* r, std::string_view what) {
  std::string state, constraint;
  if (r != nullptr) {
    if (const char* s = PQresultErrorField(r, PG_DIAG_SQLSTATE)) state = s;
    if (const char* s = PQresultErrorField(r, PG_DIAG_CONSTRAINT_NAME)) constraint = s;
  }
  const bool lost = conn == nullptr || PQstatus(conn) == CONNECTION_BAD ||
                    IsConnectionClass(state) || OnStandby(conn, state);
  std::string message = OneLine(r != nullptr ? PQresultErrorMessage(r) : "");
  if (message.empty() && conn != nullptr) message = OneLine(PQerrorMessage(conn));
  if (message.empty()) message = "unknown error";
  std::string full(what);
  if (!full.empty()) full += ": ";
  full += message;
  return Error(full, std::move(state), lost, std::move(constraint));
}

// A statement's first words, which name it in a message; the rest is noise.
std::string_view Head(std::string_view sql) {
  std::string_view head = sql.substr(0, 60);
  if (auto nl = head.find('\n'); nl != std::string_view::npos) head = head.substr(0, nl);
  return head;
}

}  // namespace detail

bool Error::transient() const {
  if (connection_lost_ || IsConnectionClass(sqlstate_) || retry_transaction()) return true;
  // 57P01 admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now;
  // class 53: insufficient resources (disk full, out of memory, too many
  // connections).
  // 55P03: a lock not had within lock_timeout (another daemon holds it).
  // 57014: a statement ended by a statement timeout or a cancel (an
  // operator's pg_cancel_backend): the server was too slow for now.
  // 25006: a write refused by a standby, or by a database made read-only
  // (`default_transaction_read_only`) for a while.
  return sqlstate_ == "57P01" || sqlstate_ == "57P02" || sqlstate_ == "57P03" ||
         sqlstate_ == "57014" || sqlstate_ == "55P03" || sqlstate_ == kReadOnly ||
         sqlstate_.substr(0, 2) == "53";
}

Status ToStatus(std::string_view what, const std::exception& e) {
  std::string message = std::string(what) + ": " + e.what();
  if (const auto* pe = dynamic_cast<const Error*>(&e); pe != nullptr && pe->transient()) {
    return Status::Unavailable(std::move(message));
  }
  return Status::Error(std::move(message));
}

// --- Result ------------------------------------------------------------

Result& Result::operator=(Result&& other) noexcept {
  if (this != &other) {
    if (r_ != nullptr) PQclear(r_);
    r_ = other.r_;
    other.r_ = nullptr;
  }
  return *this;
}

Result::~Result() {
  if (r_ != nullptr) PQclear(r_);
}

int Result::rows() const { return r_ == nullptr ? 0 : PQntuples(r_); }

int Result::cols() const { return r_ == nullptr ? 0 : PQnfields(r_); }

std::int64_t Result::affected() const {
  if (r_ == nullptr) return 0;
  const char* n = PQcmdTuples(r_);
  if (n == nullptr || *n == '\0') return 0;
  return Parse<std::int64_t>(n, "a row count");
}

std::string_view Result::command() const { return r_ == nullptr ? "" : PQcmdStatus(r_); }

bool Result::IsNull(int row, int col) const { return PQgetisnull(r_, row, col) != 0; }

std::string_view Result::Text(int row, int col) const {
  return {PQgetvalue(r_, row, col), static_cast<std::size_t>(PQgetlength(r_, row, col))};
}

std::int64_t Result::Int64(int row, int col) const {
  return Parse<std::int64_t>(Text(row, col), "an integer");
}

double Result::Double(int row, int col) const {
  // PostgreSQL prints a float8 in its shortest exact form (extra_float_digits
  // defaults to 1 since 12), which strtod reads back exactly.
  const std::string text(Text(row, col));
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size()) throw Error("not a number: " + text, "", false);
  return v;
}

bool Result::Bool(int row, int col) const { return Text(row, col) == "t"; }

std::optional<std::int64_t> Result::OptionalInt64(int row, int col) const {
  if (IsNull(row, col)) return std::nullopt;
  return Int64(row, col);
}

// --- Statement -----------------------------------------------------------

Statement::Statement(std::string sql, Plan plan) : sql_(std::move(sql)), plan_(plan) {
  static std::atomic<std::uint64_t> next{0};
  name_ = "tp" + std::to_string(next.fetch_add(1, std::memory_order_relaxed));
}

// --- Connection ----------------------------------------------------------

std::unique_ptr<Connection> Connection::Open(const std::string& url,
                                             std::string_view application_name,
                                             std::string_view settings) {
  // Keepalives and a user timeout, both ways: a connection to a host cut
  // from the network fails within 8 s (2 s idle, then 3 probes 2 s apart;
  // 8 s for unacknowledged data) instead of the kernel's minutes or hours,
  // here and on the server, which then ends the session and frees what it
  // held (docs/scaling.md, "Failover"). On the server too: a transaction
  // left idle for 10 s is ended (a daemon stopped mid-way), and a statement
  // waits at most 5 s for a lock. JIT is off: the store's statements are
  // short, and a batch's estimates (arrays of unknown length) put them over
  // jit_above_cost, so each paid ~600 ms of compiling for ~60 ms of work.
  // No statement timeout but the session's own (the loop's readers set
  // one): a timeout set on the role or the database, as managed servers
  // often do, would end the days' count, an outcomes report or an ingest
  // group on a busy server as failures.
  // What the URL sets wins, key by key: its client settings replace these
  // (they come before it), and its `options` come after these server
  // settings rather than instead of them, so a URL that sets only
  // `search_path` keeps the rest. The session's name stays the daemon's
  // (the daemons find each other's sessions by it, docs/scaling.md); a
  // name in the URL follows it in brackets.
  std::string app(application_name);
  if (std::string theirs = UrlParameter(url, "application_name"); !theirs.empty()) {
    app.append(" (").append(theirs).append(")");
  }
  std::string options =
      "-c tcp_keepalives_idle=2 -c tcp_keepalives_interval=2 -c tcp_keepalives_count=3 "
      "-c tcp_user_timeout=8000 -c idle_in_transaction_session_timeout=10s -c lock_timeout=5s "
      "-c statement_timeout=0 -c jit=off";
  if (!settings.empty()) options.append(" ").append(settings);
  if (std::string theirs = UrlParameter(url, "options"); !theirs.empty()) {
    options.append(" ").append(theirs);
  }
  const char* keys[] = {"keepalives",
                        "keepalives_idle",
                        "keepalives_interval",
                        "keepalives_count",
                        "tcp_user_timeout",
                        "connect_timeout",
                        "dbname",
                        "options",
                        "application_name",
                        nullptr};
  const char* values[] = {"1",         "2",    "2", "3", "8000", "2", url.c_str(), options.c_str(),
                          app.c_str(), nullptr};
  pg_conn* conn = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
  if (conn == nullptr)
    throw Error("cannot connect to " + Redacted(url) + ": out of memory", "", true);
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string message = detail::OneLine(PQerrorMessage(conn));
    PQfinish(conn);
    throw Error("cannot connect to " + Redacted(url) + ": " + message, "08006", true);
  }
  // Notices (a table that already exists, ...) are not for stderr.
  PQsetNoticeProcessor(
      conn, [](void*, const char*) {}, nullptr);
  return std::unique_ptr<Connection>(new Connection(conn));
}

bool Connection::ok() const {
  if (broken_) return false;
  // Reads what the server sent meanwhile, without waiting: a session it
  // ended (an administrator, a restart) has said so and closed, and shows
  // here as bad before a statement is sent to it.
  if (PQstatus(conn_) != CONNECTION_OK) return false;
  if (!PQisBusy(conn_) && PQconsumeInput(conn_) == 0) return false;
  if (PQstatus(conn_) != CONNECTION_OK) return false;
  char byte = 0;
  const int fd = PQsocket(conn_);
  return fd < 0 || ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) != 0;  // 0: closed
}

int Connection::backend_pid() const { return PQbackendPID(conn_); }

bool Connection::in_transaction() const {
  const PGTransactionStatusType t = PQtransactionStatus(conn_);
  return t == PQTRANS_INTRANS || t == PQTRANS_INERROR || t == PQTRANS_ACTIVE;
}

Canceller::Canceller(Connection& c) : cancel_(PQgetCancel(c.handle())) {}

Canceller::~Canceller() {
  if (cancel_ != nullptr) PQfreeCancel(cancel_);
}

bool Canceller::Cancel() const {
  if (cancel_ == nullptr) return false;
  std::array<char, 256> error{};
  return PQcancel(cancel_, error.data(), static_cast<int>(error.size())) == 1;
}

Result Connection::Check(pg_result* r, std::string_view sql) {
  const ExecStatusType s = r == nullptr ? PGRES_FATAL_ERROR : PQresultStatus(r);
  if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK || s == PGRES_COPY_IN) return Result(r);
  Result owned(r);  // freed as the exception leaves
  Throw(conn_, r, Head(sql));
}

void Connection::RefuseIfBroken() const {
  if (broken_) {
    throw Error("the connection was given up (left mid-pipeline, or waited on too long)", "08006",
                true);
  }
}

// Without an answer limit, libpq's PQexec calls; with one, what they do
// (send, then read every result), waiting within it.
Result Connection::Exec(std::string_view sql) {
  RefuseIfBroken();
  const Waiting waiting(*this);
  const std::string text(sql);
  if (answer_limit_.count() <= 0) return Check(PQexec(conn_, text.c_str()), sql);
  if (PQsendQuery(conn_, text.c_str()) != 1) SendFailed(Head(sql));
  return Check(LastResult(Head(sql)), sql);
}

Result Connection::Exec(std::string_view sql, const Params& params) {
  RefuseIfBroken();
  const Waiting waiting(*this);
  const std::string text(sql);
  if (answer_limit_.count() <= 0) {
    return Check(PQexecParams(conn_, text.c_str(), params.size(), nullptr, params.values(),
                              params.lengths(), nullptr, 0),
                 sql);
  }
  if (PQsendQueryParams(conn_, text.c_str(), params.size(), nullptr, params.values(),
                        params.lengths(), nullptr, 0) != 1) {
    SendFailed(Head(sql));
  }
  return Check(LastResult(Head(sql)), sql);
}

Result Connection::Run(const Statement& statement, const Params& params) {
  RefuseIfBroken();
  const Waiting waiting(*this);
  if (statement.plan() == Statement::Plan::kEachRun) return Exec(statement.sql(), params);
  const std::string_view head = Head(statement.sql());
  if (prepared_.count(statement.name()) == 0) {
    if (answer_limit_.count() <= 0) {
      Check(PQprepare(conn_, statement.name().c_str(), statement.sql().c_str(), 0, nullptr),
            statement.sql());
    } else {
      if (PQsendPrepare(conn_, statement.name().c_str(), statement.sql().c_str(), 0, nullptr) !=
          1) {
        SendFailed(head);
      }
      Check(LastResult(head), statement.sql());
    }
    prepared_.insert(statement.name());
  }
  if (answer_limit_.count() <= 0) {
    return Check(PQexecPrepared(conn_, statement.name().c_str(), params.size(), params.values(),
                                params.lengths(), nullptr, 0),
                 statement.sql());
  }
  if (PQsendQueryPrepared(conn_, statement.name().c_str(), params.size(), params.values(),
                          params.lengths(), nullptr, 0) != 1) {
    SendFailed(head);
  }
  return Check(LastResult(head), statement.sql());
}

void Connection::CopyIn(std::string_view copy_sql, std::string_view data) {
  RefuseIfBroken();
  const Waiting waiting(*this);
  Result started = Exec(copy_sql);
  // Left in the middle of the copy, the connection takes no statement.
  if (!data.empty() && PQputCopyData(conn_, data.data(), static_cast<int>(data.size())) != 1) {
    SendFailed("copy");
  }
  if (PQputCopyEnd(conn_, nullptr) != 1) SendFailed("copy");
  // Every result read, a failed one's too, so that the connection is
  // ready for the next statement.
  std::optional<Error> failed;
  const Deadline deadline = AnswerDeadline();
  while (pg_result* r = NextResult("copy", deadline)) {
    const Result owned(r);
    if (!failed && PQresultStatus(r) != PGRES_COMMAND_OK) {
      failed = MakeError(conn_, r, copy_sql.substr(0, 40));
    }
  }
  if (failed) throw *failed;
}

void Connection::SendFailed(std::string_view what) {
  // A connection that takes nothing more (another command's results still
  // unread, a copy left midway) is given up, not handed to the next caller.
  broken_ = true;
  Throw(conn_, nullptr, what);
}

std::vector<std::string> Connection::TakeNotifications() {
  if (PQconsumeInput(conn_) != 1) Throw(conn_, nullptr, "read notifications");
  std::vector<std::string> channels;
  while (PGnotify* n = PQnotifies(conn_)) {
    channels.emplace_back(n->relname);
    PQfreemem(n);
  }
  return channels;
}

void CopyText(std::string& row, std::string_view text) {
  for (char c : text) {
    switch (c) {
      case '\\':
        row += "\\\\";
        break;
      case '\t':
        row += "\\t";
        break;
      case '\n':
        row += "\\n";
        break;
      case '\r':
        row += "\\r";
        break;
      default:
        row += c;
    }
  }
}

// --- Transaction ---------------------------------------------------------

Transaction::Transaction(Connection& conn, Mode mode) : conn_(conn) {
  conn_.Exec(mode == Mode::kSnapshot ? "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY"
                                     : "BEGIN");
}

Transaction::~Transaction() {
  if (!open_) return;
  try {
    if (conn_.ok()) conn_.Exec("ROLLBACK");
  } catch (const std::exception&) {
    // The connection is gone: so is the transaction.
  }
}

void Transaction::Commit() {
  open_ = false;
  conn_.Exec("COMMIT");
}

}  // namespace tp::pg
