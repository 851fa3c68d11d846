// The fire loop: sleeps on a timer set to the earliest pending next_at (no
// polling), re-armed whenever that changes and whenever the wall clock is
// set (a Linux timerfd with TFD_TIMER_CANCEL_ON_SET reports clock jumps);
// when it wakes, the scheduler fires what is due, a few batches per loop
// turn so requests interleave. A store error is retried a second later
// (Hooks::retry).
//
// Not thread-safe: the thread that runs `io` only (the daemon's loop, or
// a FireThread's own).
#pragma once

// Boost 1.74's Asio needs <utility> before it under C++20.
#include <utility>
// (keep the blank line above: clang-format must not reorder this include)

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/system_timer.hpp>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "core/clock.h"
#include "daemon/firing.h"
#include "scheduler/scheduler.h"
#include "scheduler/store.h"

namespace tp {

class FireLoop final : public Firing {
 public:
  // Firing batches per loop turn: the rest is posted, so requests interleave.
  static constexpr std::size_t kBatchesPerTurn = 2;

  struct Hooks {
    // Whether firing may go on now (not while stopping or short of space).
    std::function<bool()> may_fire;
    // Whether what is due by `now` may fire by the current rules (a re-plan
    // under way has passed it).
    std::function<bool(Instant now)> covered;
    // A write failed for want of space.
    std::function<void()> storage_full;
    // Touchpoints fired: the dispatcher has outbox entries to deliver.
    std::function<void()> fired;
    // After each pass of the scheduler, whatever it did (may be empty).
    std::function<void()> passed = nullptr;
    // Health() changed: a failure, or the first success after some.
    std::function<void(const FiringHealth&)> health_changed = nullptr;
    // For a store other daemons share: read the next wakeup at least this
    // often (another daemon may have recorded an earlier touchpoint, or
    // died holding some), and after a pass that found every due
    // touchpoint held by another daemon, look again kHeldRetry later.
    std::optional<Millis> poll = std::nullopt;
    // How long after a store error firing tries again.
    Millis retry = Millis(1000);
  };
  static constexpr Millis kHeldRetry{100};
  // The furthest ahead the timer is armed (see Rearm()).
  static constexpr Millis kLongestWait{24 * 60 * 60 * 1000};

  FireLoop(boost::asio::io_context& io, ScheduleStore& store, Scheduler& scheduler,
           const Clock& clock, Hooks hooks);

  // Firing (daemon/firing.h).
  void Start() override;
  void Rearm(bool force) override;
  void Pause() override;
  void Stop() override;
  FiringHealth Health() const override { return health_; }
  std::int64_t HeldForOrder() const override { return store_.HeldForOrder(); }
  // Fires what is due now, then re-arms.
  void RunDue();

 private:
  // A store error while scheduling (disk full, I/O error) in a pass, or
  // else in a read of the next wakeup: log it, count it, and try again
  // Hooks::retry later rather than spin or give up.
  void RetrySoon(const std::string& what, bool pass);
  // What failed went through: Health() is clean again, and the log says so.
  void Succeeded();
  void ClearHealth();
  void WatchClockJumps();
  void ArmClockJumpWatch();

  boost::asio::io_context& io_;
  ScheduleStore& store_;
  Scheduler& scheduler_;
  const Clock& clock_;
  Hooks hooks_;
  boost::asio::system_timer timer_;
  boost::asio::steady_timer retry_;
  boost::asio::posix::stream_descriptor clock_jumps_;
  std::optional<Instant> armed_;
  bool idle_pass_ = false;  // the last pass decided nothing
  FiringHealth health_;
  bool pass_failed_ = false;  // a pass failed since health_ was last clean
  bool stopped_ = false;
  // Pause()s so far: a timer's handler already queued when it was
  // cancelled (its time had come) runs anyway, with no error; it does
  // nothing once a pause came after it was armed.
  std::uint64_t pauses_ = 0;
};

}  // namespace tp
