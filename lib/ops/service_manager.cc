#include "ops/service_manager.h"

#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>

#include <chrono>
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

StartExtender::StartExtender() {
  thread_ = std::thread([this] {
    const auto started = std::chrono::steady_clock::now();
    auto next_log = started + kLogAfter;
    std::unique_lock lock(mutex_);
    while (!wake_.wait_for(lock, kEvery, [this] { return done_; })) {
      const auto now = std::chrono::steady_clock::now();
      const long long seconds =
          std::chrono::duration_cast<std::chrono::seconds>(now - started).count();
      const std::string doing =
          "opening the database (a schema migration, this daemon's or "
          "another's, can take minutes on large tables)";
      Notify("EXTEND_TIMEOUT_USEC=" +
             std::to_string(std::chrono::duration_cast<std::chrono::microseconds>(kBy).count()) +
             "\nSTATUS=starting for " + std::to_string(seconds) + " s: " + doing);
      if (now >= next_log) {
        spdlog::info("still starting after {} s: {}", seconds, doing);
        next_log = now + kLogEvery;
      }
    }
  });
}

StartExtender::~StartExtender() {
  {
    std::lock_guard lock(mutex_);
    done_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

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
