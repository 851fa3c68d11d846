#include "daemon/space_watch.h"

#include <chrono>
#include <utility>

#include "api/http_json.h"

namespace tp {

SpaceWatch::SpaceWatch(boost::asio::io_context& io, const std::string& database, Measure measure,
                       std::function<std::uint64_t()> full_failures, const Clock& clock,
                       DaemonMetrics& metrics, std::function<void(bool short_of_space)> changed)
    : reserve_(database + "-reserve"),
      guard_(std::move(measure), reserve_, clock),
      full_failures_(std::move(full_failures)),
      full_failures_seen_(full_failures_()),
      timer_(io),
      metrics_(metrics),
      changed_(std::move(changed)) {}

void SpaceWatch::Start() {
  Check();
  Watch();
}

void SpaceWatch::Stop() {
  stopped_ = true;
  timer_.cancel();
}

void SpaceWatch::Check(bool /*failed*/) {
  if (stopped_) return;
  // A write failed for want of space since the last check, whoever made
  // it (a hook's failure checks at once; one no hook reports, such as a
  // delivery's record, at the next second's check). A failure that did
  // not add to the count found the file locked: not the disk's business.
  const std::uint64_t full = full_failures_();
  const bool write_failed = full != full_failures_seen_;
  full_failures_seen_ = full;
  if (guard_.Check(write_failed)) changed_(guard_.short_of_space());
  const SpaceGuard::Report r = guard_.report();
  metrics_.storage_short.Set({}, r.short_of_space ? 1 : 0);
  metrics_.storage_room.Set({}, static_cast<double>(r.last.Room()));
}

void SpaceWatch::Watch() {
  timer_.expires_after(std::chrono::seconds(1));
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopped_) return;
    Check();
    Watch();
  });
}

nlohmann::json SpaceWatch::Health() const {
  const SpaceGuard::Report room = guard_.report();
  nlohmann::json storage = {{"state", room.short_of_space ? "short" : "ok"},
                            {"room_bytes", room.last.Room()},
                            {"disk_free_bytes", room.last.fs_free},
                            {"reserve_bytes", room.reserve_held}};
  if (room.since) storage["since"] = FormatRfc3339(*room.since, UtcZone());
  if (!room.reason.empty()) storage["reason"] = room.reason;
  return storage;
}

}  // namespace tp
