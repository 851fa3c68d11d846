#include "core/time.h"

#include <date/tz.h>

#include <charconv>
#include <exception>

namespace tp {
namespace {

using std::chrono::floor;
using Seconds = std::chrono::seconds;

bool ParseDigits(std::string_view text, std::size_t pos, std::size_t n, int& out) {
  if (pos + n > text.size()) return false;
  int v = 0;
  for (std::size_t i = pos; i < pos + n; ++i) {
    const char c = text[i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  out = v;
  return true;
}

// Appends a non-negative value zero-padded to `width` digits (hot in
// simulate's output, hence no printf).
void AppendPadded(std::string& out, int value, int width) {
  char buf[12];
  int n = 0;
  do {
    buf[n++] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value > 0 && n < 12);
  for (int i = n; i < width; ++i) out.push_back('0');
  while (n > 0) out.push_back(buf[--n]);
}

}  // namespace

Millis Duration::Exact() const {
  switch (unit) {
    case Unit::kSeconds:
      return Seconds(count);
    case Unit::kMinutes:
      return std::chrono::minutes(count);
    case Unit::kHours:
      return std::chrono::hours(count);
    case Unit::kDays:
      return std::chrono::hours(24 * count);
  }
  return Millis(0);
}

std::string Duration::ToString() const {
  static constexpr char kUnits[] = {'s', 'm', 'h', 'd'};
  return std::to_string(count) + kUnits[static_cast<int>(unit)];
}

std::optional<Duration> ParseDuration(std::string_view text) {
  if (text.size() < 2) return std::nullopt;
  Duration d;
  switch (text.back()) {
    case 's':
      d.unit = Duration::Unit::kSeconds;
      break;
    case 'm':
      d.unit = Duration::Unit::kMinutes;
      break;
    case 'h':
      d.unit = Duration::Unit::kHours;
      break;
    case 'd':
      d.unit = Duration::Unit::kDays;
      break;
    default:
      return std::nullopt;
  }
  std::string_view number = text.substr(0, text.size() - 1);
  const bool negative = !number.empty() && number.front() == '-';
  if (negative) number.remove_prefix(1);
  if (number.empty() || number.front() < '0' || number.front() > '9' || number.size() > 9) {
    return std::nullopt;
  }
  std::int64_t value = 0;
  auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
  if (ec != std::errc() || end != number.data() + number.size()) return std::nullopt;
  d.count = negative ? -value : value;
  return d;
}

std::optional<TimeOfDay> ParseTimeOfDay(std::string_view text) {
  int h = 0;
  int m = 0;
  if (text.size() != 5 || text[2] != ':' || !ParseDigits(text, 0, 2, h) ||
      !ParseDigits(text, 3, 2, m) || m > 59 || h > 24 || (h == 24 && m != 0)) {
    return std::nullopt;
  }
  return TimeOfDay{h * 60 + m};
}

std::string FormatTimeOfDay(TimeOfDay t) {
  std::string out;
  AppendPadded(out, t.minutes / 60, 2);
  out.push_back(':');
  AppendPadded(out, t.minutes % 60, 2);
  return out;
}

const Zone* FindZone(std::string_view name) {
  if (name.empty()) return nullptr;
  try {
    return date::locate_zone(name);
  } catch (const std::exception&) {
    return nullptr;
  }
}

const Zone* UtcZone() {
  static const Zone* utc = date::locate_zone("Etc/UTC");
  return utc;
}

LocalTime ToLocal(Instant t, const Zone* zone) {
  const date::sys_info info = zone->get_info(floor<Seconds>(t));
  return LocalTime((t + info.offset).time_since_epoch());
}

Instant FromLocal(LocalTime local, const Zone* zone) {
  const date::local_info info = zone->get_info(floor<Seconds>(local));
  // unique: first is the only period. nonexistent: first is the period before
  // the gap, so subtracting its offset shifts the time forward by the gap.
  // ambiguous: first is the earlier period, giving the earlier instant.
  return Instant((local - info.first.offset).time_since_epoch());
}

Instant AddCalendarDays(Instant t, std::int64_t days, const Zone* zone) {
  return FromLocal(ToLocal(t, zone) + date::days(days), zone);
}

Instant AddDuration(Instant t, const Duration& d, const Zone* zone) {
  if (d.IsCalendar()) return AddCalendarDays(t, d.count, zone);
  return t + d.Exact();
}

Instant StartOfLocalDay(Instant t, const Zone* zone) {
  return FromLocal(floor<date::days>(ToLocal(t, zone)), zone);
}

Instant StartOfNextLocalDay(Instant t, const Zone* zone) {
  return FromLocal(floor<date::days>(ToLocal(t, zone)) + date::days(1), zone);
}

namespace {

// t's local day, as a count of days since 1970-01-01 (local).
date::local_days LocalDay(Instant t, const Zone* zone) {
  return floor<date::days>(ToLocal(t, zone));
}

date::local_days MondayOf(date::local_days day) {
  return day - (date::weekday(day) - date::Monday);
}

date::local_days FirstOfMonth(date::local_days day) {
  const date::year_month_day ymd(day);
  return date::local_days(ymd.year() / ymd.month() / 1);
}

}  // namespace

Instant StartOfLocalWeek(Instant t, const Zone* zone) {
  return FromLocal(MondayOf(LocalDay(t, zone)), zone);
}

Instant StartOfNextLocalWeek(Instant t, const Zone* zone) {
  return FromLocal(MondayOf(LocalDay(t, zone)) + date::weeks(1), zone);
}

Instant StartOfLocalMonth(Instant t, const Zone* zone) {
  return FromLocal(FirstOfMonth(LocalDay(t, zone)), zone);
}

Instant StartOfNextLocalMonth(Instant t, const Zone* zone) {
  const date::year_month_day first(FirstOfMonth(LocalDay(t, zone)));
  return FromLocal(date::local_days(first.year() / first.month() / 1 + date::months(1)), zone);
}

TimeOfDay LocalTimeOfDay(Instant t, const Zone* zone) {
  const LocalTime local = ToLocal(t, zone);
  const auto since_midnight = local - floor<date::days>(local);
  return TimeOfDay{static_cast<int>(floor<std::chrono::minutes>(since_midnight).count())};
}

Instant AtLocalTimeOfDay(Instant t, TimeOfDay tod, const Zone* zone) {
  const LocalTime day = floor<date::days>(ToLocal(t, zone));
  return FromLocal(day + std::chrono::minutes(tod.minutes), zone);
}

std::optional<Instant> ParseRfc3339(std::string_view text) {
  // YYYY-MM-DDTHH:MM:SS[.fff...](Z|+hh:mm|-hh:mm)
  int y, mo, d, h, mi, s;
  if (text.size() < 20 || !ParseDigits(text, 0, 4, y) || text[4] != '-' ||
      !ParseDigits(text, 5, 2, mo) || text[7] != '-' || !ParseDigits(text, 8, 2, d) ||
      (text[10] != 'T' && text[10] != 't') || !ParseDigits(text, 11, 2, h) || text[13] != ':' ||
      !ParseDigits(text, 14, 2, mi) || text[16] != ':' || !ParseDigits(text, 17, 2, s)) {
    return std::nullopt;
  }
  std::size_t pos = 19;
  int millis = 0;
  if (text[pos] == '.') {
    ++pos;
    const std::size_t start = pos;
    int scale = 100;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      millis += (text[pos] - '0') * scale;
      scale /= 10;
      ++pos;
    }
    if (pos == start) return std::nullopt;
  }
  if (pos >= text.size()) return std::nullopt;
  int offset_minutes = 0;
  if (text[pos] == 'Z' || text[pos] == 'z') {
    ++pos;
  } else if (text[pos] == '+' || text[pos] == '-') {
    int oh, om;
    if (!ParseDigits(text, pos + 1, 2, oh) || pos + 3 >= text.size() || text[pos + 3] != ':' ||
        !ParseDigits(text, pos + 4, 2, om) || oh > 23 || om > 59) {
      return std::nullopt;
    }
    offset_minutes = (oh * 60 + om) * (text[pos] == '-' ? -1 : 1);
    pos += 6;
  } else {
    return std::nullopt;
  }
  if (pos != text.size()) return std::nullopt;
  const date::year_month_day ymd{date::year(y), date::month(static_cast<unsigned>(mo)),
                                 date::day(static_cast<unsigned>(d))};
  if (!ymd.ok() || h > 23 || mi > 59 || s > 59) return std::nullopt;
  const auto local = date::sys_days(ymd) + std::chrono::hours(h) + std::chrono::minutes(mi) +
                     Seconds(s) + Millis(millis);
  return Instant(local - std::chrono::minutes(offset_minutes));
}

void AppendRfc3339(std::string& out, Instant t, const Zone* zone) {
  const date::sys_info info = zone->get_info(floor<Seconds>(t));
  const auto local = t + info.offset;
  const auto day = floor<date::days>(local);
  const date::year_month_day ymd{day};
  const date::hh_mm_ss<Millis> hms{local - day};
  AppendPadded(out, static_cast<int>(ymd.year()), 4);
  out.push_back('-');
  AppendPadded(out, static_cast<int>(static_cast<unsigned>(ymd.month())), 2);
  out.push_back('-');
  AppendPadded(out, static_cast<int>(static_cast<unsigned>(ymd.day())), 2);
  out.push_back('T');
  AppendPadded(out, static_cast<int>(hms.hours().count()), 2);
  out.push_back(':');
  AppendPadded(out, static_cast<int>(hms.minutes().count()), 2);
  out.push_back(':');
  AppendPadded(out, static_cast<int>(hms.seconds().count()), 2);
  if (hms.subseconds().count() != 0) {
    out.push_back('.');
    AppendPadded(out, static_cast<int>(hms.subseconds().count()), 3);
  }
  const auto offset = floor<std::chrono::minutes>(info.offset).count();
  if (offset == 0) {
    out.push_back('Z');
    return;
  }
  const auto abs = offset < 0 ? -offset : offset;
  out.push_back(offset < 0 ? '-' : '+');
  AppendPadded(out, static_cast<int>(abs / 60), 2);
  out.push_back(':');
  AppendPadded(out, static_cast<int>(abs % 60), 2);
}

std::string FormatRfc3339(Instant t, const Zone* zone) {
  std::string out;
  AppendRfc3339(out, t, zone);
  return out;
}

}  // namespace tp
