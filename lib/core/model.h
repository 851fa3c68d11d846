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

  // The first field (in declaration order) whose value differs from
  // `other`'s, or "" when they are the same purchase (an idempotent
  // re-send) rather than a conflicting one. `timezone` is compared as text:
  // a caller that knows the zones may make an equivalent one equal first.
  std::string_view FirstDifference(const Purchase& other) const {
    if (order_id != other.order_id) return "order_id";
    if (buyer_id != other.buyer_id) return "buyer_id";
    if (product != other.product) return "product";
    if (quantity != other.quantity) return "quantity";
    if (amount != other.amount) return "amount";
    if (purchased_at != other.purchased_at) return "purchased_at";
    if (timezone != other.timezone) return "timezone";
    if (attributes != other.attributes) return "attributes";
    return "";
  }
  bool SameAs(const Purchase& other) const { return FirstDifference(other).empty(); }
};

// An engagement event: the buyer (or the messaging tool on the buyer's
// behalf) did something, one CSV row or one item of POST /v1/events.
struct EngagementEvent {
  std::string event_id;
  std::string buyer_id;
  std::string type;  // one of the config's engagement types
  Instant at;
  std::string touchpoint_id = {};  // the touchpoint it answers; empty if none
  // A JSON object in canonical form, or empty for none (as a purchase's).
  std::string attributes = {};

  // The first field whose value differs from `other`'s, or "" for the same
  // event (an idempotent re-send).
  std::string_view FirstDifference(const EngagementEvent& other) const {
    if (event_id != other.event_id) return "event_id";
    if (buyer_id != other.buyer_id) return "buyer_id";
    if (type != other.type) return "type";
    if (at != other.at) return "at";
    if (touchpoint_id != other.touchpoint_id) return "touchpoint_id";
    if (attributes != other.attributes) return "attributes";
    return "";
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
