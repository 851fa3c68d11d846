// Keeps touchpointd working when the disk holding its database fills (or
// the file reaches database_max_size), instead of failing every write and
// then refilling whatever space comes back (docs/operations.md, "A full
// disk").
//
// Two states. Roomy: everything as usual, and a reserve file (DiskReserve)
// holds back StorageSpace::Reserve() bytes. Short, entered when a write
// fails for want of space or the room left drops under half the reserve:
// the reserve is given back so that leases, acks and delivery records (which
// make room) can still be written; the daemon refuses purchases (503) and
// stops firing, which would spend the room consumers free. Roomy again once
// the room left is at least twice the reserve and no write has failed for
// want of space for 5 seconds; the reserve is taken back first.
//
// Not thread-safe: the daemon's loop calls it (every second, and after a
// write failed for want of space).
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "core/clock.h"
#include "core/status.h"
#include "store/space.h"

namespace tp {

class SpaceGuard {
 public:
  using Measure = std::function<StatusOr<StorageSpace>()>;

  // `measure` reads the database's room (SqliteStore::Space); `reserve`
  // and `clock` must outlive *this.
  SpaceGuard(Measure measure, DiskReserve& reserve, const Clock& clock);

  // Measures and decides; `write_failed`: a write just failed for want of
  // space. Returns whether the state changed (the caller pauses or resumes
  // ingest and firing). Logs each change in one line.
  bool Check(bool write_failed = false);

  bool short_of_space() const { return short_; }

  // What /healthz and /metrics show.
  struct Report {
    bool short_of_space = false;
    std::optional<Instant> since;  // when it became short
    std::string reason;            // why it is short; empty when roomy
    StorageSpace last;             // the last measure
    std::uint64_t reserve_held = 0;
  };
  Report report() const;

 private:
  void Enter(const StorageSpace& space, bool write_failed);

  Measure measure_;
  DiskReserve& reserve_;
  const Clock& clock_;
  bool short_ = false;
  std::optional<Instant> since_;
  std::optional<Instant> last_failure_;
  std::string reason_;
  StorageSpace last_;
  bool measure_failed_ = false;  // logged once until a measure works again
};

}  // namespace tp
