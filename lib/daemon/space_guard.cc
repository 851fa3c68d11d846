#include "daemon/space_guard.h"

#include <spdlog/spdlog.h>

namespace tp {
namespace {

constexpr Millis kQuietAfterFailure = std::chrono::seconds(5);

std::string Bytes(std::uint64_t n) {
  char buf[32];
  if (n >= (1u << 20)) {
    std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(n) / (1 << 20));
  } else if (n >= 1024) {
    std::snprintf(buf, sizeof buf, "%.1f KiB", static_cast<double>(n) / 1024);
  } else {
    std::snprintf(buf, sizeof buf, "%llu bytes", static_cast<unsigned long long>(n));
  }
  return buf;
}

}  // namespace

SpaceGuard::SpaceGuard(Measure measure, DiskReserve& reserve, const Clock& clock)
    : measure_(std::move(measure)), reserve_(reserve), clock_(clock) {}

bool SpaceGuard::Check(bool write_failed) {
  const Instant now = clock_.Now();
  if (write_failed) last_failure_ = now;
  auto space = measure_();
  if (!space.ok()) {
    if (!measure_failed_) spdlog::warn("disk space: {}", space.status().message());
    measure_failed_ = true;
    if (write_failed && !short_) {
      Enter(last_, true);
      return true;
    }
    return false;
  }
  measure_failed_ = false;
  last_ = *space;
  const std::uint64_t reserve = space->Reserve();
  if (!short_) {
    if (write_failed || space->Room() < reserve / 2) {
      Enter(*space, write_failed);
      return true;
    }
    // Taken back a little at a time as the disk allows, never into the
    // half-reserve margin that would make it short again.
    if (reserve_.held() < reserve && space->fs_free > reserve) {
      reserve_.Fill(std::min(reserve, reserve_.held() + (space->fs_free - reserve)));
    }
    return false;
  }
  const bool quiet = !last_failure_ || now - *last_failure_ >= kQuietAfterFailure;
  // Free pages inside the file count as room, but the disk must have the
  // reserve to give back: without it the first write that grows the WAL
  // would fail and make it short again.
  if (space->Room() < 2 * reserve || space->fs_free < reserve || !quiet) return false;
  reserve_.Fill(reserve);
  short_ = false;
  spdlog::info(
      "disk space: {} of room for the database again (reserve {} held); taking purchases and "
      "firing again after {} short",
      Bytes(space->Room()), Bytes(reserve_.held()),
      since_ ? std::to_string(
                   std::chrono::duration_cast<std::chrono::seconds>(now - *since_).count()) +
                   " s"
             : std::string("a while"));
  since_.reset();
  reason_.clear();
  return true;
}

void SpaceGuard::Enter(const StorageSpace& space, bool write_failed) {
  short_ = true;
  since_ = clock_.Now();
  const std::uint64_t released = reserve_.Release();
  const bool capped = space.cap_left && *space.cap_left < space.fs_free;
  reason_ = std::string(write_failed ? "a write failed: " : "") +
            (capped ? "the database is at database_max_size (" + Bytes(*space.cap) + ")"
                    : "the disk holding the database is full (" + Bytes(space.fs_free) +
                          " free of " + Bytes(space.fs_size) + ")") +
            ", " + Bytes(space.free_pages) + " free inside the database";
  spdlog::error(
      "disk space: {}; refusing purchases (503) and pausing firing until there is room, gave "
      "back the {} reserve so leases, acks and deliveries go on",
      reason_, Bytes(released));
}

SpaceGuard::Report SpaceGuard::report() const {
  return Report{short_, since_, reason_, last_, reserve_.held()};
}

}  // namespace tp
