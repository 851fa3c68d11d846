// systemd's service protocol (sd_notify(3)): readiness, reloads, stopping,
// a status line and the watchdog. Outside systemd (no NOTIFY_SOCKET in the
// environment) every call does nothing, so the daemon runs the same by hand.
#pragma once

#include <optional>
#include <string_view>

#include "core/time.h"

namespace tp::service {

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
