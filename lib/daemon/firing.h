// What the daemon asks of its firing, wherever that runs: on the daemon's
// loop (FireLoop, daemon/fire_loop.h) or on a thread of its own
// (FireThread, daemon/fire_thread.h). Called on the daemon's loop.
#pragma once

#include <cstdint>
#include <string>

namespace tp {

// How firing has gone lately, for /healthz: the failures in a row of its
// passes and of its reads of the next wakeup (each retried a second
// later), and the last one's error while they last. Both reset when a
// pass goes through, when a read does and no pass failed (or nothing is
// due any more), and when firing is paused (the store's state says why).
struct FiringHealth {
  int consecutive_failures = 0;
  std::string last_error;
};
// After this many failures in a row (ten seconds or more), /healthz says
// `degraded`: due touchpoints wait.
inline constexpr int kFiringFailuresDegrade = 10;

class Firing {
 public:
  virtual ~Firing() = default;

  // Watches for wall clock changes and arms the timer.
  virtual void Start() = 0;
  // Sets the timer to the earliest pending next_at, if that changed (or
  // always, with `force`: the rules, the clock or the re-plan changed).
  virtual void Rearm(bool force) = 0;
  // Cancels the timers until the next Rearm() (short of space).
  virtual void Pause() = 0;
  virtual void Stop() = 0;
  virtual FiringHealth Health() const = 0;
  // The firing store's ScheduleStore::HeldForOrder().
  virtual std::int64_t HeldForOrder() const = 0;
};

}  // namespace tp
