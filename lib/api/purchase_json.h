// The body of POST /v1/purchases: one purchase object or an array of them,
// checked completely before anything is recorded (the request is atomic).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/rules.h"
#include "core/model.h"

namespace tp {

// What is wrong with a request body: the first bad item and field. `index`
// is the item's position (0 for a single object); `field` is empty when the
// problem is not one field's (malformed JSON, wrong shape, too many items).
struct PurchaseBodyError {
  std::string error;
  std::optional<std::size_t> index;
  std::string field;
};

struct ParsedPurchases {
  std::vector<Purchase> items;
  std::optional<PurchaseBodyError> error;
};

inline constexpr std::size_t kMaxPurchasesPerRequest = 10'000;
inline constexpr std::size_t kMaxIdLength = 256;

// Fields: order_id, buyer_id (non-empty strings), product (one the rules
// know), quantity (integer >= 1), amount (number >= 0), purchased_at (RFC
// 3339 with offset), timezone (optional IANA name; empty or null = the
// config's default), attributes (optional object). Any other field is an
// error, so a misspelt optional field is not silently ignored.
ParsedPurchases ParsePurchases(std::string_view body, const Rules& rules,
                               std::size_t max_items = kMaxPurchasesPerRequest);

}  // namespace tp
