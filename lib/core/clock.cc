#include "core/clock.h"

namespace tp {

Instant SystemClock::Now() const {
  return std::chrono::floor<Millis>(std::chrono::system_clock::now());
}

}  // namespace tp
