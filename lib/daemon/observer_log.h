// What a Scheduler told its observer, kept to be told to another observer
// later, in the same order: on another thread (the daemon's metrics live
// on its loop), and only once the transaction it describes has committed.
// DropFrom() forgets what was heard since a point (a request rolled back
// to its savepoint).
//
// Not thread-safe: filled on one thread, then moved (Take()) to another.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "scheduler/scheduler.h"

namespace tp {

class ObserverLog final : public SchedulerObserver {
 public:
  struct Seen {
    enum class Kind : std::uint8_t { kTouchpoints, kDeferred, kFired, kEngaged, kRepurchase };
    Kind kind;
    std::string cadence;  // kRepurchase: the credited cadence, "" for none
    TouchpointState state = TouchpointState::kPending;  // kTouchpoints
    std::int64_t count = 0;                             // kTouchpoints
    Millis late{0};                                     // kFired
    bool in_window = false;                             // kRepurchase
  };

  void OnTouchpoints(std::string_view cadence, TouchpointState state, std::int64_t count) override;
  void OnDeferred(std::string_view cadence) override;
  void OnFired(std::string_view cadence, Millis late) override;
  void OnEngaged(std::string_view cadence) override;
  void OnRepurchase(bool in_window, std::string_view credited_cadence) override;

  // A point to DropFrom() later.
  std::size_t size() const { return seen_.size(); }
  void DropFrom(std::size_t mark) {
    if (mark < seen_.size()) seen_.resize(mark);
  }
  // Everything heard so far; the log is empty after.
  std::vector<Seen> Take();

  // Tells `observer` what `seen` holds, in order.
  static void Tell(const std::vector<Seen>& seen, SchedulerObserver& observer);

 private:
  std::vector<Seen> seen_;
};

}  // namespace tp
