// The body of POST /v1/purchases: one purchase object or an array of them,
// checked completely before anything is recorded (the request is atomic).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/json_items.h"
#include "config/rules.h"
#include "core/model.h"

namespace tp {

// The body's first problem (api/json_items.h).
using PurchaseBodyError = BodyError;

struct ParsedPurchases {
  std::vector<Purchase> items;
  std::optional<PurchaseBodyError> error;
};

inline constexpr std::size_t kMaxPurchasesPerRequest = 1'000;

// The body is parsed by ParseJson() (nesting, duplicate keys, numbers out of
// range, NUL bytes: an error at the item and field). Fields: order_id,
// buyer_id, product, quantity, amount, purchased_at (RFC 3339 with offset),
// timezone (optional IANA name; empty or null = the config's default),
// attributes (optional object), each within planner/purchase_check.h's
// bounds. Any other field is an error, so a misspelt optional field is not
// silently ignored. An order twice in one array must say the same both
// times (the second is then a duplicate); otherwise the second is an error.
ParsedPurchases ParsePurchases(std::string_view body, const Rules& rules,
                               std::size_t max_items = kMaxPurchasesPerRequest);

}  // namespace tp
