#include "planner/window.h"

namespace tp {

Instant NextOpening(Instant t, const SendWindow& window, const Zone* zone) {
  const TimeOfDay tod = LocalTimeOfDay(t, zone);
  if (window.Contains(tod)) return t;
  if (tod < window.from) {
    const Instant open = AtLocalTimeOfDay(t, window.from, zone);
    if (open >= t) return open;
  }
  return NextDayOpening(t, window, zone);
}

Instant NextDayOpening(Instant t, const SendWindow& window, const Zone* zone) {
  const Instant next_day = StartOfNextLocalDay(t, zone);
  return AtLocalTimeOfDay(next_day, window.from, zone);
}

}  // namespace tp
