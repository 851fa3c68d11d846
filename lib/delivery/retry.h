// How a delivery attempt's result is judged, and when the next one goes.
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <string_view>

#include "config/rules.h"
#include "core/time.h"

namespace tp {

enum class Verdict : std::uint8_t { kDelivered, kRetry, kDeadLetter };

// 2xx delivered; 408, 429 and 5xx retried; any other status dead-letters.
// status 0 means no response (connection error, timeout): retried.
Verdict Judge(int status);

// The delay before attempt `failed_attempts` + 1: initial * 2^(failed - 1),
// capped at max_delay, then scaled by a uniform factor in [0.75, 1.25].
Millis Backoff(const RetryPolicy& policy, int failed_attempts, std::mt19937_64& rng);

// The delay a Retry-After header asks for: delta-seconds or an HTTP-date
// (IMF-fixdate) relative to `now`. nullopt if malformed; never negative.
std::optional<Millis> ParseRetryAfter(std::string_view value, Instant now);

}  // namespace tp
