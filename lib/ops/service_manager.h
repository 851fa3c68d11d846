// systemd's service protocol (sd_notify(3)): readiness, reloads, stopping,
// a status line and the watchdog. Outside systemd (no NOTIFY_SOCKET in the
// environment) every call does nothing, so the daemon runs the same by hand.
#pragma once

#include <condition_variable>
#include <mutex>
#include <optional>
#include <string_view>
#include <thread>

#include "core/time.h"

namespace tp::service {

// While alive, keeps systemd's start timeout (90 s by default) from
// running out: every kEvery, EXTEND_TIMEOUT_USEC for kBy more, with a
// STATUS= line of how long the start has taken; and a log line after
// kLogAfter, then every kLogEvery. Opening the database can legitimately
// take minutes (a schema migration building an index on a large table,
// or waiting for another daemon's): killed at the timeout, the start
// would begin the migration again after the restart, and be killed again.
class StartExtender {
 public:
  static constexpr Millis kEvery{2'000}, kBy{15'000}, kLogAfter{10'000}, kLogEvery{30'000};

  StartExtender();
  ~StartExtender();
  StartExtender(const StartExtender&) = delete;
  StartExtender& operator=(const StartExtender&) = delete;

 private:
  std::mutex mutex_;
  std::condition_variable wake_;
  bool done_ = false;
  std::thread thread_;
};

// READY=1 with a STATUS= line: the store is open and the API listening.
void NotifyReady(std::string_view status);
// RELOADING=1 with MONOTONIC_USEC=now, as Type=notify-reload expects; the
// reload ends with NotifyReady().
void NotifyReloading();
// STOPPING=1: the daemon is shutting down gracefully.
void NotifyStopping();
// WATCHDOG=1: the event loop is alive.
void PingWatchdog();
// How often to ping: half of WATCHDOG_USEC when systemd set a watchdog for
// this process (WATCHDOG_PID, if set, is ours), else nullopt.
std::optional<Millis> WatchdogInterval();

}  // namespace tp::service
