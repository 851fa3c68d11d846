// The daemon's side of a PostgreSQL server that stops answering (it
// restarts, fails over, or the network to it is cut): StoreWatch for a
// PostgreSQL store. A store call failing as Unavailable makes it probe the
// server at once (while it answered; once paused, only the backoff's
// probes, below, ask it again); if the server does not answer, the daemon is paused
// (purchases 503 with Retry-After, firing stopped, /healthz "degraded"
// with the reason, touchpoint_database_up 0) and the probe is tried again
// with backoff, from kFirstRetry doubling to kMaxRetry, until it answers:
// then everything resumes by itself.
//
// A server that stops answering without refusing anything (frozen: a
// paused VM, a stalled disk) fails no call until an answer limit gives up
// on it, and the threads without one (firing, ingest, re-plan) wait for as
// long: so the watch also probes once a statement of the process has
// waited kStalled for its answer (`longest_wait`), at most once per
// kStalled.
//
// A probe opens a connection, which can wait for the connect timeout
// (2 s) when the server's host drops packets: it runs on a thread of its
// own, and its answer comes back to the loop, so the loop answers
// meanwhile (/healthz, /metrics, 503s). One probe at a time.
//
// Not thread-safe: the daemon's loop only (`probe` runs on another
// thread). The destructor waits for a probe under way (at most the
// connect timeout and the probe's answer limit), Stop() does not.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "core/clock.h"
#include "core/status.h"
#include "daemon/daemon_metrics.h"
#include "daemon/store_watch.h"

namespace tp {

class DatabaseWatch final : public StoreWatch {
 public:
  static constexpr Millis kFirstRetry{250};
  static constexpr Millis kMaxRetry{4000};
  static constexpr Millis kStalled{10000};
  static constexpr Millis kStallCheck{1000};

  // `probe` asks the server (PgStore::Probe): not ok, its message is the
  // reason `/healthz` gives. `longest_wait`: how long the statement that
  // has waited longest for the server so far has (PgStore::LongestWait).
  // `changed(paused)` after each change of state.
  DatabaseWatch(boost::asio::io_context& io, std::function<Status()> probe,
                std::function<Millis()> longest_wait, const Clock& clock, DaemonMetrics& metrics,
                std::function<void(bool paused)> changed);
  ~DatabaseWatch() override;
  DatabaseWatch(const DatabaseWatch&) = delete;
  DatabaseWatch& operator=(const DatabaseWatch&) = delete;

  void Start() override;
  void Stop() override;
  void Check(bool failed = false) override;
  bool paused() const override { return down_; }
  std::string reason() const override { return reason_; }
  nlohmann::json Health() const override;

 private:
  // Starts a probe on its own thread, unless one is under way.
  void Probe();
  // The probe's answer, on the loop.
  void Answered(const Status& answer);
  void RetryLater();
  // Every kStallCheck while up: a probe if a statement has stalled.
  void WatchStalls();

  boost::asio::io_context& io_;
  std::function<Status()> probe_;
  std::function<Millis()> longest_wait_;
  const Clock& clock_;
  DaemonMetrics& metrics_;
  std::function<void(bool)> changed_;
  boost::asio::steady_timer timer_;
  boost::asio::steady_timer stall_timer_;
  // The last probe for a stall (steady time, as the timers').
  std::optional<std::chrono::steady_clock::time_point> stall_probed_;
  bool down_ = false;
  bool stopped_ = false;
  std::optional<Instant> since_;
  std::string reason_;
  Millis backoff_ = kFirstRetry;
  bool probing_ = false;
  std::thread prober_;
  // Held while this lives: an answer posted after it is gone is dropped.
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

}  // namespace tp
