// The daemon's side of a PostgreSQL server that stops answering (it
// restarts, fails over, or the network to it is cut): StoreWatch for a
// PostgreSQL store. A store call failing as Unavailable makes it probe the
// server at once; if the server does not answer, the daemon is paused
// (purchases 503 with Retry-After, firing stopped, /healthz "degraded"
// with the reason, touchpoint_database_up 0) and the probe is tried again
// with backoff, from kFirstRetry doubling to kMaxRetry, until it answers:
// then everything resumes by itself.
//
// Not thread-safe: the daemon's loop only.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <optional>
#include <string>

#include "core/clock.h"
#include "core/status.h"
#include "daemon/daemon_metrics.h"
#include "daemon/store_watch.h"

namespace tp {

class DatabaseWatch final : public StoreWatch {
 public:
  static constexpr Millis kFirstRetry{250};
  static constexpr Millis kMaxRetry{4000};

  // `probe` asks the server (PgStore::Probe); `changed(paused)` after each
  // change of state.
  DatabaseWatch(boost::asio::io_context& io, std::function<Status()> probe, const Clock& clock,
                DaemonMetrics& metrics, std::function<void(bool paused)> changed);

  void Start() override;
  void Stop() override;
  void Check(bool failed = false) override;
  bool paused() const override { return down_; }
  std::string reason() const override { return reason_; }
  nlohmann::json Health() const override;

 private:
  void RetryLater();

  std::function<Status()> probe_;
  const Clock& clock_;
  DaemonMetrics& metrics_;
  std::function<void(bool)> changed_;
  boost::asio::steady_timer timer_;
  bool down_ = false;
  bool stopped_ = false;
  std::optional<Instant> since_;
  std::string reason_;
  Millis backoff_ = kFirstRetry;
};

}  // namespace tp
