// The PostgreSQL store's connection and its transactions, as the store's
// Transactions contract (store/transactions.h) and the fire's claims need
// them. Internal to lib/store.
//
// Three kinds of transaction, never two at once:
//  - a group: Begin() ... Commit(), a savepoint per request inside
//    (Savepoint()/Release()/RollbackTo()), the daemon's group commit;
//  - a claim: BeginClaim() opens one for the rows TakeDue() locks (FOR NO
//    KEY UPDATE ... SKIP LOCKED), and FinishClaim() writes the outcomes and
//    commits, so no other daemon can take those rows in between, and a
//    daemon that dies mid-way leaves them to the others at once;
//  - a call's own: Atomically() outside a group.
//
// A lost connection is reopened by the next call outside a group (at most
// one attempt a second while the server does not answer, unless the
// daemon's probe finds it answering meanwhile: the others fail at once);
// inside a group, every call fails (Unavailable) until the
// caller rolls back, since what the group wrote is gone. The new
// connection is opened on a thread of its own: the call that starts the
// attempt waits for it at most kConnectWait, then fails (Unavailable), as
// do the calls while it lasts, and a later call takes it up. So a server
// whose host drops packets holds the owner's thread (the daemon's loop)
// for that long, not for the connect timeout (2 s). (A statement sent on
// a connection whose packets are dropped still waits for TCP to give up
// on it: tcp_user_timeout, 8 s; pg::Connection::Open.)
//
// Not thread-safe: one thread owns it. Its destructor waits for a
// connection being opened (at most the connect timeout).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "pg/connection.h"

namespace tp::pgstore {

class Session {
 public:
  // Connects and migrates; the connection shows as `application_name` in
  // pg_stat_activity, and asks for `settings` (pg::Connection::Open), as
  // does each connection that replaces it. Throws pg::Error.
  explicit Session(std::string url, std::string application_name = "touchpointd",
                   std::string settings = {});

  const std::string& url() const { return url_; }

  // The daemon's probe found the server answering again: no attempt that
  // started before this holds the next one back (kReconnectPause), so every
  // session in the process (the loop's and each thread's) reconnects at its
  // next call. Any thread may call it.
  static void ServerAnswers() { answers_.fetch_add(1, std::memory_order_relaxed); }
  // ServerAnswers() calls so far (for connections kept outside a Session:
  // store/pg_reader.cc).
  static std::uint64_t Answers() { return answers_.load(std::memory_order_relaxed); }

  // While the server does not answer, one attempt to connect per pause
  // (store/pg_reader.cc's threads keep to it too).
  static constexpr std::chrono::milliseconds kReconnectPause{1000};
  static constexpr std::chrono::milliseconds kConnectWait{50};

  // The connection, reopened if lost while no transaction was open. Throws
  // pg::Error (transient) when it cannot be, or not yet.
  pg::Connection& conn();
  // How long a statement of this session waits for the server's answer
  // before its connection is given up (pg::Connection::set_answer_limit),
  // on this connection and those that replace it. Zero: no limit.
  void set_answer_limit(std::chrono::milliseconds limit);
  // The server's statement_timeout for this session's statements, on this
  // connection (now) and those that replace it; a statement it ends fails
  // as Unavailable. Throws pg::Error.
  void set_statement_timeout(std::chrono::milliseconds timeout);

  // This connection's session as other sessions see it in
  // pg_stat_activity: its server process and when that started (in
  // microseconds since the epoch), which claims record. Connects if
  // needed; a new connection is a new session. Throws pg::Error.
  struct Identity {
    std::int64_t pid = 0;
    std::int64_t start = 0;
    bool operator==(const Identity&) const = default;
  };
  const Identity& identity();
  // The sessions this one had before (the last kEarlierKept, oldest
  // first): what they claimed and this one claims again is its own, not
  // taken over from another daemon.
  static constexpr std::size_t kEarlierKept = 16;
  const std::vector<Identity>& earlier() const { return earlier_; }

  // Runs `fn` (which throws) as one read; errors as a Status naming `what`.
  template <typename Fn>
  auto Read(std::string_view what, Fn&& fn) -> decltype(fn()) {
    try {
      return fn();
    } catch (const std::exception& e) {
      return Failed(what, e);
    }
  }
  // Runs `fn` (which throws) atomically on its own, or as part of the
  // caller's group (a savepoint around it, none when enclosed).
  // In a transaction of its own, `mode` says which (kSnapshot: several
  // reads that must agree, as the other sessions write meanwhile); in the
  // caller's group, the group's.
  Status Atomically(std::string_view what, const std::function<void()>& fn,
                    pg::Transaction::Mode mode = pg::Transaction::Mode::kReadWrite);

  Status Begin();
  Status Commit();
  Status Rollback();
  Status Savepoint();
  Status Release();
  Status RollbackTo();

  // Which group this is, for what a caller keeps while it lasts (turns
  // taken, rows read ahead): a number no earlier group or savepoint rolled
  // back had, 0 outside a group. It changes when the group ends and when a
  // savepoint inside it is rolled back, since what was taken after that
  // savepoint (advisory locks too) is gone.
  std::uint64_t scope() const { return group_ && !broken_ ? scope_ : 0; }
  // Which group this is, whatever savepoints inside it were rolled back
  // (what it took before them stays: the turns it took at its start); 0
  // outside a group.
  std::uint64_t group() const { return group_ && !broken_ ? groups_ : 0; }
  // Whether a request's savepoint is open (Savepoint() ... Release()):
  // what is taken now goes if it is rolled back.
  bool enclosed() const { return enclosed_; }
  // Writes a caller holds back (a batch's purchases) to run as one: `write`
  // runs before the next statement anyone sends on this connection (so
  // reads see it, and Release()/Commit() include it), and is dropped with
  // the scope. One at a time; only inside a group.
  void Defer(std::function<void()> write);

  // Opens the claim's transaction (rolling back one never finished), unless
  // a group is open: then the claim is part of it. Throws pg::Error.
  void BeginClaim();
  // Runs `fn`, then commits the claim's transaction; rolls it back on error.
  Status FinishClaim(std::string_view what, const std::function<void()>& fn);
  // Ends the claim's transaction, if one is open (a pass that found
  // nothing due commits; a failed one rolls back). Never throws.
  void EndClaim(bool commit);

 private:
  // `e` as a Status; a lost connection is dropped, to be reopened.
  Status Failed(std::string_view what, const std::exception& e);
  void Drop();
  // Starts opening a connection on a thread of its own. Throws pg::Error.
  void StartAttempt();
  // The attempt's outcome, which must be ready: true with its connection
  // taken; false when it came kReconnectPause or more before `now` (stale:
  // try again); else its error thrown, and no new attempt for
  // kReconnectPause.
  bool TakeAttempt(std::chrono::steady_clock::time_point now);
  // What was kept for the scope is void from here on.
  void EndScope();

  std::string url_;
  std::string application_name_;
  std::string settings_;
  std::unique_ptr<pg::Connection> conn_;
  std::optional<Identity> identity_;  // of conn_
  std::vector<Identity> earlier_;     // see earlier()
  // conn_ is gone: its identity, if it was asked for, joins earlier_.
  void ForgetIdentity();
  std::optional<std::chrono::steady_clock::time_point> last_failed_connect_;
  // ServerAnswers() calls so far, and before the last attempt started:
  // one since then voids its failure's pause.
  static inline std::atomic<std::uint64_t> answers_{0};
  std::uint64_t answers_before_attempt_ = 0;
  // A connection being opened, on its own thread (see conn()): its
  // outcome and when it came.
  struct Attempt {
    std::unique_ptr<pg::Connection> conn;
    std::exception_ptr error;
    std::chrono::steady_clock::time_point finished;
  };
  std::future<Attempt> connecting_;
  bool group_ = false;     // Begin() ... Commit()
  bool enclosed_ = false;  // Savepoint() ... Release()
  bool claim_ = false;     // BeginClaim() ... FinishClaim()
  std::chrono::milliseconds answer_limit_{0};
  bool atomic_ = false;  // inside Atomically()'s own transaction
  bool broken_ = false;  // the connection was lost inside a transaction
  std::uint64_t scope_ = 1;
  std::uint64_t groups_ = 0;        // Begin() calls that opened a group
  std::function<void()> deferred_;  // see Defer()
};

}  // namespace tp::pgstore
