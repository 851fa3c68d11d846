#include "planner/purchase_check.h"

#include <cmath>
#include <cstdio>

#include "core/text.h"

namespace tp {

std::optional<std::string> IdFieldProblem(std::string_view field, std::string_view id) {
  if (auto problem = IdProblem(id)) return std::string(field) + " " + *problem;
  return std::nullopt;
}

std::optional<std::string> ProductProblem(std::string_view product, const Rules& rules) {
  if (rules.ProductIndex(product) >= 0) return std::nullopt;
  std::string known;
  for (const Product& p : rules.products) known += (known.empty() ? "" : ", ") + p.name;
  return "unknown product '" + Excerpt(product) + "' (the rules have " + known + ")";
}

std::optional<std::string> QuantityProblem(std::int64_t quantity, std::string_view product,
                                           const Rules& rules) {
  if (quantity < 1 || quantity > kMaxQuantity) {
    return "quantity must be an integer from 1 to " + std::to_string(kMaxQuantity) + ", got " +
           std::to_string(quantity);
  }
  const int index = rules.ProductIndex(product);
  if (index < 0) return std::nullopt;
  const std::int64_t days = rules.products[static_cast<std::size_t>(index)].supply_days;
  if (quantity * days > kMaxRunoutDays) {
    return "quantity " + std::to_string(quantity) + " of '" + std::string(product) + "' lasts " +
           std::to_string(quantity * days) + " days (supply_days " + std::to_string(days) +
           "), more than the " + std::to_string(kMaxRunoutDays) + " a purchase may";
  }
  return std::nullopt;
}

std::optional<std::string> AmountProblem(double amount) {
  if (std::isfinite(amount) && amount >= 0 && amount <= kMaxAmount) return std::nullopt;
  char value[32];
  std::snprintf(value, sizeof value, "%.17g", amount);
  return std::string("amount must be a number from 0 to 1e12, got ") + value;
}

std::optional<std::string> PurchasedAtProblem(Instant purchased_at) {
  if (purchased_at >= kMinPurchasedAt && purchased_at < kMaxPurchasedAt) return std::nullopt;
  return "purchased_at must be from 2000-01-01T00:00:00Z to before 2100-01-01T00:00:00Z, got " +
         FormatRfc3339(purchased_at, UtcZone());
}

std::optional<std::string> TimezoneProblem(std::string_view timezone) {
  if (timezone.empty() || FindZone(timezone) != nullptr) return std::nullopt;
  return "unknown time zone '" + Excerpt(timezone) + "' (use an IANA name like Asia/Shanghai)";
}

std::optional<std::string> AttributesProblem(std::string_view canonical_json) {
  if (canonical_json.size() <= kMaxAttributesBytes) return std::nullopt;
  return "attributes must be at most " + std::to_string(kMaxAttributesBytes) +
         " bytes as JSON, got " + std::to_string(canonical_json.size());
}

std::optional<PurchaseProblem> CheckPurchase(const Purchase& p, const Rules& rules) {
  auto problem = [](const char* field, std::optional<std::string> message) {
    return message ? std::optional<PurchaseProblem>(PurchaseProblem{field, std::move(*message)})
                   : std::nullopt;
  };
  if (auto e = problem("order_id", IdFieldProblem("order_id", p.order_id))) return e;
  if (auto e = problem("buyer_id", IdFieldProblem("buyer_id", p.buyer_id))) return e;
  if (auto e = problem("product", ProductProblem(p.product, rules))) return e;
  if (auto e = problem("quantity", QuantityProblem(p.quantity, p.product, rules))) return e;
  if (auto e = problem("amount", AmountProblem(p.amount))) return e;
  if (auto e = problem("purchased_at", PurchasedAtProblem(p.purchased_at))) return e;
  if (auto e = problem("timezone", TimezoneProblem(p.timezone))) return e;
  return problem("attributes", AttributesProblem(p.attributes));
}

}  // namespace tp
