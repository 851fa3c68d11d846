#include "daemon/stop_guard.h"

#include <spdlog/spdlog.h>

#include <system_error>
#include <utility>

namespace tp {

StopGuard::StopGuard(std::function<int(Millis)> cut) : cut_(std::move(cut)) {}

StopGuard::~StopGuard() {
  {
    const std::lock_guard lock(mutex_);
    done_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void StopGuard::Start() {
  if (thread_.joinable()) return;
  try {
    thread_ = std::thread([this] { Watch(); });
  } catch (const std::system_error& e) {
    // The stop goes on unguarded: at worst systemd's TimeoutStopSec ends it.
    spdlog::error("stopping: cannot start the guard against a database that does not answer: {}",
                  e.what());
  }
}

void StopGuard::Watch() {
  Millis waited = kGrace;
  std::unique_lock lock(mutex_);
  // Every kCheck until the destructor says done.
  while (!wake_.wait_for(lock, kCheck, [this] { return done_; })) {
    lock.unlock();
    const int cut = cut_(waited);
    if (cut > 0) {
      spdlog::warn(
          "stopping: cut loose {} statement{} that waited {} s for the database's answer "
          "(their connections closed; what they wrote is rolled back unless it was committed)",
          cut, cut == 1 ? "" : "s", waited.count() / 1000);
      waited = kAfterCut;
    }
    lock.lock();
  }
}

}  // namespace tp
