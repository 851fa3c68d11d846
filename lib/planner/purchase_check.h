// What a purchase must be to be recorded and planned: the one set of rules
// the API, `touchpointctl import` (through the API) and `simulate` apply, so
// a file that simulates also imports, with the same messages. The bounds
// keep every date the planner derives from a purchase between the years
// 1900 and 2300, where RFC 3339 and the calendar arithmetic hold
// (docs/api.md, "Limits"). Pure.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "config/rules.h"
#include "core/model.h"

namespace tp {

inline constexpr std::int64_t kMaxQuantity = 1'000'000;
inline constexpr double kMaxAmount = 1e12;
// purchased_at is in [kMinPurchasedAt, kMaxPurchasedAt).
inline constexpr Instant kMinPurchasedAt{Millis(946'684'800'000)};    // 2000-01-01T00:00:00Z
inline constexpr Instant kMaxPurchasedAt{Millis(4'102'444'800'000)};  // 2100-01-01T00:00:00Z
// quantity x supply_days: when the supply runs out, in days after the purchase.
inline constexpr std::int64_t kMaxRunoutDays = 36'500;
// The canonical JSON of `attributes`.
inline constexpr std::size_t kMaxAttributesBytes = 64 * 1024;

// Each names what is wrong with one field's value in a sentence that starts
// with the field's name and shows the value, or is nullopt when it is fine.
std::optional<std::string> IdFieldProblem(std::string_view field, std::string_view id);
std::optional<std::string> ProductProblem(std::string_view product, const Rules& rules);
// `product` must be one the rules know.
std::optional<std::string> QuantityProblem(std::int64_t quantity, std::string_view product,
                                           const Rules& rules);
std::optional<std::string> AmountProblem(double amount);
std::optional<std::string> PurchasedAtProblem(Instant purchased_at);
// "" is fine: the config's default zone.
std::optional<std::string> TimezoneProblem(std::string_view timezone);
std::optional<std::string> AttributesProblem(std::string_view canonical_json);

struct PurchaseProblem {
  std::string field;  // e.g. "quantity"
  std::string message;
};

// The first field of `purchase`, in the order order_id, buyer_id, product,
// quantity, amount, purchased_at, timezone, attributes, that breaks a rule
// above, or nullopt.
std::optional<PurchaseProblem> CheckPurchase(const Purchase& purchase, const Rules& rules);

}  // namespace tp
