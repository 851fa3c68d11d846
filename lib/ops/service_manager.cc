#include "ops/service_manager.h"

#include <systemd/sd-daemon.h>

#include <ctime>
#include <string>

namespace tp::service {
namespace {

void Notify(const std::string& state) {
  // unset_environment = 0: a reload notifies again later. The result is only
  // an error when NOTIFY_SOCKET is set and unusable; nothing to do about it.
  (void)sd_notify(0, state.c_str());
}

}  // namespace

void NotifyReady(std::string_view status) { Notify("READY=1\nSTATUS=" + std::string(status)); }

void NotifyReloading() {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  const long long usec = static_cast<long long>(now.tv_sec) * 1'000'000 + now.tv_nsec / 1'000;
  Notify("RELOADING=1\nSTATUS=reloading the config\nMONOTONIC_USEC=" + std::to_string(usec));
}

void NotifyStopping() { Notify("STOPPING=1\nSTATUS=stopping"); }

void PingWatchdog() { Notify("WATCHDOG=1"); }

std::optional<Millis> WatchdogInterval() {
  std::uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return std::nullopt;
  return Millis(std::max<std::uint64_t>(usec / 2'000, 1));
}

}  // namespace tp::service
