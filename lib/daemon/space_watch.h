// The daemon's side of a full disk (daemon/space_guard.h decides): the
// reserve file beside the database, a check every second and after every
// write that failed for want of space, the metrics, and the answer a route
// gives when a store call failed. When the state changes it tells the
// daemon, which pauses firing (short) or resumes it (room again).
//
// Not thread-safe: the daemon's loop only.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <functional>
#include <string>

#include "core/clock.h"
#include "core/status.h"
#include "daemon/daemon_metrics.h"
#include "daemon/space_guard.h"
#include "daemon/store_watch.h"
#include "http/server.h"
#include "store/space.h"

namespace tp {

class SpaceWatch final : public StoreWatch {
 public:
  using Measure = SpaceGuard::Measure;
  // `changed(short_of_space)` after each change of state. The reserve file
  // is `database` + "-reserve". `full_failures`: how many store calls have
  // failed for want of space so far (SqliteStore::FullFailures), to tell
  // them from those that found the file locked.
  SpaceWatch(boost::asio::io_context& io, const std::string& database, Measure measure,
             std::function<std::uint64_t()> full_failures, const Clock& clock,
             DaemonMetrics& metrics, std::function<void(bool short_of_space)> changed);

  // Checks now (a full disk at start: short from the outset), then every
  // second.
  void Start() override;
  void Stop() override;

  // Measures and decides, now rather than at the next second's check
  // when `failed` (a store call just failed as Unavailable). A write
  // failed for want of space if the store counted one since the last check
  // (`full_failures`), whether or not a hook told it; an Unavailable
  // failure that the store did not count found the file locked by another
  // process: the call's 503 says so, and nothing is paused.
  void Check(bool failed = false) override;

  bool paused() const override { return guard_.short_of_space(); }
  std::string reason() const override { return guard_.report().reason; }
  // The room left, the disk's free bytes, the reserve; since when and why
  // short.
  nlohmann::json Health() const override;

  bool short_of_space() const { return guard_.short_of_space(); }
  const SpaceGuard& guard() const { return guard_; }

 private:
  void Watch();

  DiskReserve reserve_;
  SpaceGuard guard_;
  std::function<std::uint64_t()> full_failures_;
  std::uint64_t full_failures_seen_;
  boost::asio::steady_timer timer_;
  DaemonMetrics& metrics_;
  std::function<void(bool)> changed_;
  bool stopped_ = false;
};

}  // namespace tp
