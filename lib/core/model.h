// Value types shared by every layer.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/time.h"

namespace tp {

// A purchase as recorded: one CSV row or one item of POST /v1/purchases.
struct Purchase {
  std::string order_id;
  std::string buyer_id;
  std::string product;
  std::int64_t quantity = 1;
  double amount = 0;
  Instant purchased_at;
  std::string timezone;  // IANA name; empty = the config's default zone
  // Opaque to scheduling and handed out with every touchpoint: a JSON object
  // in canonical form (keys sorted, no spaces), or empty for none.
  std::string attributes = {};

  // Same content (idempotent re-ingest) as opposed to a conflicting order.
  bool SameAs(const Purchase& other) const {
    return order_id == other.order_id && buyer_id == other.buyer_id && product == other.product &&
           quantity == other.quantity && amount == other.amount &&
           purchased_at == other.purchased_at && timezone == other.timezone &&
           attributes == other.attributes;
  }
};

enum class TouchpointState : std::uint8_t {
  kPending,
  kFired,
  kCancelled,
  kSuppressed,
  kSkipped,
  kDead,
};

std::string_view StateName(TouchpointState s);

inline std::string_view StateName(TouchpointState s) {
  switch (s) {
    case TouchpointState::kPending:
      return "pending";
    case TouchpointState::kFired:
      return "fired";
    case TouchpointState::kCancelled:
      return "cancelled";
    case TouchpointState::kSuppressed:
      return "suppressed";
    case TouchpointState::kSkipped:
      return "skipped";
    case TouchpointState::kDead:
      return "dead";
  }
  return "unknown";
}

}  // namespace tp
