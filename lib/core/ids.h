// Stable touchpoint ids.
#pragma once

#include <string>
#include <string_view>

namespace tp {

// "tp_" followed by 32 lowercase hex digits: the first 128 bits of
// SHA-256(order_id 0x1F cadence 0x1F step). The same order, cadence and step
// always give the same id, so re-planning never creates a second id for one
// step and consumers can use it as an idempotency key. Thread-safe.
std::string TouchpointId(std::string_view order_id, std::string_view cadence,
                         std::string_view step);

// SHA-256 of `text` as 64 lowercase hex digits. Thread-safe.
std::string Sha256Hex(std::string_view text);

}  // namespace tp
