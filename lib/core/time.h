// Instants, durations and buyer-local calendar arithmetic.
//
// Every instant is UTC with millisecond precision. Buyer-local reasoning goes
// through a date::time_zone from the system tz database. Local times that do
// not exist (a spring-forward gap) or exist twice (a fall-back overlap) are
// resolved as RFC 5545 does: a nonexistent time is shifted forward by the
// length of the gap (02:30 in a 02:00->03:00 gap becomes 03:30), an ambiguous
// time takes its first (earlier) occurrence.
#pragma once

#include <date/date.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace date {
class time_zone;
}

namespace tp {

using Millis = std::chrono::milliseconds;
using Instant = std::chrono::time_point<std::chrono::system_clock, Millis>;
using LocalTime = date::local_time<Millis>;
using Zone = date::time_zone;

// A duration as written in the config: an integer and one unit.
// Days are calendar days in the buyer's zone (same wall-clock time); seconds,
// minutes and hours are exact.
struct Duration {
  enum class Unit : std::uint8_t { kSeconds, kMinutes, kHours, kDays };
  std::int64_t count = 0;
  Unit unit = Unit::kSeconds;

  bool IsCalendar() const { return unit == Unit::kDays; }
  bool IsNegative() const { return count < 0; }
  // Days counted as 24 hours; for uses where a calendar makes no sense.
  Millis Exact() const;
  std::string ToString() const;
  friend bool operator==(const Duration&, const Duration&) = default;
};

// Parses "<integer><s|m|h|d>", optionally with a leading '-'. nullopt if not.
std::optional<Duration> ParseDuration(std::string_view text);

// Minutes since local midnight, 0..1440 (1440 only as an exclusive end).
struct TimeOfDay {
  int minutes = 0;
  friend auto operator<=>(const TimeOfDay&, const TimeOfDay&) = default;
};
// Parses "HH:MM" (00:00..24:00). nullopt if not.
std::optional<TimeOfDay> ParseTimeOfDay(std::string_view text);
std::string FormatTimeOfDay(TimeOfDay t);

// The zone named `name` in the system tz database, or nullptr.
const Zone* FindZone(std::string_view name);
const Zone* UtcZone();

LocalTime ToLocal(Instant t, const Zone* zone);
// The instant of a local time, resolving gaps and overlaps as described above.
Instant FromLocal(LocalTime local, const Zone* zone);
// Same wall-clock time `days` calendar days later (or earlier) in `zone`.
Instant AddCalendarDays(Instant t, std::int64_t days, const Zone* zone);
// t + d: calendar arithmetic for days, exact for s/m/h.
Instant AddDuration(Instant t, const Duration& d, const Zone* zone);
// The local midnight that starts t's local day, and the one after it.
Instant StartOfLocalDay(Instant t, const Zone* zone);
Instant StartOfNextLocalDay(Instant t, const Zone* zone);
// The local Monday 00:00 that starts t's ISO week, and the next one.
Instant StartOfLocalWeek(Instant t, const Zone* zone);
Instant StartOfNextLocalWeek(Instant t, const Zone* zone);
// The local 00:00 of the first day of t's calendar month, and of the next.
Instant StartOfLocalMonth(Instant t, const Zone* zone);
Instant StartOfNextLocalMonth(Instant t, const Zone* zone);
// Minutes since local midnight of t's wall-clock time.
TimeOfDay LocalTimeOfDay(Instant t, const Zone* zone);
// The instant of `tod` on the local day that contains t.
Instant AtLocalTimeOfDay(Instant t, TimeOfDay tod, const Zone* zone);

// RFC 3339 with a mandatory offset ("Z" or "+hh:mm"), optional fraction
// (truncated to milliseconds). nullopt if the text is not a valid instant.
std::optional<Instant> ParseRfc3339(std::string_view text);
// RFC 3339 with the zone's offset at t; fraction only when non-zero.
std::string FormatRfc3339(Instant t, const Zone* zone);
void AppendRfc3339(std::string& out, Instant t, const Zone* zone);

}  // namespace tp
