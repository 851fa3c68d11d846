#include "delivery/retry.h"

#include <date/date.h>

#include <algorithm>
#include <charconv>
#include <sstream>
#include <string>

namespace tp {

Verdict Judge(int status) {
  if (status >= 200 && status < 300) return Verdict::kDelivered;
  if (status == 0 || status == 408 || status == 429 || status >= 500) return Verdict::kRetry;
  return Verdict::kDeadLetter;
}

Millis Backoff(const RetryPolicy& policy, int failed_attempts, std::mt19937_64& rng) {
  Millis delay = policy.initial;
  for (int i = 1; i < failed_attempts && delay < policy.max_delay; ++i) delay *= 2;
  delay = std::min(delay, policy.max_delay);
  std::uniform_real_distribution<double> jitter(0.75, 1.25);
  return Millis(static_cast<std::int64_t>(static_cast<double>(delay.count()) * jitter(rng)));
}

std::optional<Millis> ParseRetryAfter(std::string_view value, Instant now) {
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
  if (value.empty()) return std::nullopt;
  if (value.front() >= '0' && value.front() <= '9') {
    std::int64_t seconds = 0;
    const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
    if (ec != std::errc() || end != value.data() + value.size()) return std::nullopt;
    // A year is plenty; beyond it the number is nonsense, not a schedule.
    return Millis(std::min<std::int64_t>(seconds, 366LL * 86400) * 1000);
  }
  std::istringstream in{std::string(value)};
  date::sys_seconds at;
  in >> date::parse("%a, %d %b %Y %H:%M:%S GMT", at);
  if (in.fail()) return std::nullopt;
  const auto delta = std::chrono::duration_cast<Millis>(at - now);
  return std::max(delta, Millis(0));
}

}  // namespace tp
