// touchpointd's core: the SQLite store, the scheduler on a wall-clock timer,
// and the HTTP API, all on one io_context thread (which therefore owns the
// database; nothing here is shared between threads).
//
// Ingest is group-committed: requests that arrive while the loop is busy are
// written in one transaction, each inside its own savepoint so a bad request
// rolls back alone, and every 2xx is sent only after the commit.
//
// The scheduler sleeps on a timer set to the earliest pending next_at (no
// polling), re-armed whenever that changes and whenever the wall clock is set
// (a Linux timerfd with TFD_TIMER_CANCEL_ON_SET reports clock jumps).
//
// SIGHUP reloads options.config_path: a file with errors keeps the old
// rules (the errors are logged and shown on /healthz and /metrics); a valid
// one is swapped in after re-planning pending touchpoints
// (docs/operations.md, "Reloading the rules").
#pragma once

#include <memory>
#include <string>

#include "config/rules.h"
#include "core/clock.h"
#include "core/status.h"

namespace boost::asio {
class io_context;
}

namespace tp {

struct DaemonOptions {
  std::string config_path;          // the rules file, read again on SIGHUP
  std::string listen;               // HOST:PORT; port 0 picks a free one
  std::string database;             // a SQLite file, or a postgresql:// URL
  bool listen_from_flag = false;    // --listen set `listen`, not the config
  bool database_from_flag = false;  // --database set `database`
  std::string log_level;            // --log-level: wins over the config's `log:`
  std::string version;              // for touchpoint_build_info
  bool handle_signals = true;       // SIGINT/SIGTERM stop gracefully, SIGHUP reloads
};

class Daemon {
 public:
  // Opens and migrates the store, binds the listener and arms the scheduler
  // (touchpoints missed while down are decided at once: late within
  // misfire_grace fires, older is skipped). The error is one line.
  static StatusOr<std::unique_ptr<Daemon>> Start(boost::asio::io_context& io,
                                                 std::shared_ptr<const Rules> rules,
                                                 const DaemonOptions& options, const Clock& clock);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // The address the API listens on, as HOST:PORT.
  std::string Address() const;
  // Stops accepting, answers requests in flight, stops the scheduler; the
  // io_context then runs out of work and returns.
  void Stop();

 private:
  struct Impl;
  explicit Daemon(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tp
