// The source of "now". Components take a Clock& so tests and `simulate` run
// months of schedule on a virtual clock in milliseconds.
#pragma once

#include "core/time.h"

namespace tp {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual Instant Now() const = 0;
};

// The system's real-time clock.
class SystemClock final : public Clock {
 public:
  Instant Now() const override;
};

// A clock that moves only when told. Not thread-safe.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(Instant start) : now_(start) {}
  Instant Now() const override { return now_; }
  void Set(Instant t) { now_ = t; }
  void Advance(Millis d) { now_ += d; }

 private:
  Instant now_;
};

}  // namespace tp
