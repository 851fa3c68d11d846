#include "api/purchase_json.h"

#include <date/tz.h>

#include <nlohmann/json.hpp>
#include <unordered_map>

#include "core/text.h"
#include "planner/purchase_check.h"

namespace tp {
namespace {

using namespace json_items;  // NOLINT(google-build-using-namespace): the field readers

class ItemParser {
 public:
  explicit ItemParser(const Rules& rules) : rules_(rules) {}

  // Fills `out` from `item`; on failure returns the error (index unset).
  // Each field is checked for its type, then for its value, in order.
  std::optional<PurchaseBodyError> Parse(const json& item, Purchase& out) {
    if (auto e = OnlyFields(item, "purchase",
                            {"order_id", "buyer_id", "product", "quantity", "amount",
                             "purchased_at", "timezone", "attributes"})) {
      return e;
    }
    if (auto e = Text(item, "order_id", out.order_id)) return e;
    if (auto e = Check("order_id", IdFieldProblem("order_id", out.order_id))) return e;
    if (auto e = Text(item, "buyer_id", out.buyer_id)) return e;
    if (auto e = Check("buyer_id", IdFieldProblem("buyer_id", out.buyer_id))) return e;
    if (auto e = Text(item, "product", out.product)) return e;
    if (auto e = Check("product", ProductProblem(out.product, rules_))) return e;

    const json* quantity = Find(item, "quantity");
    if (quantity == nullptr) return Missing("quantity");
    if (!quantity->is_number_integer()) {
      return Fail("quantity", "quantity must be an integer, got " + Shown(*quantity));
    }
    // An unsigned beyond int64 would not survive the conversion.
    if (quantity->is_number_unsigned() && quantity->get<std::uint64_t>() > kMaxQuantity) {
      return Fail("quantity", "quantity must be an integer from 1 to " +
                                  std::to_string(kMaxQuantity) + ", got " + Shown(*quantity));
    }
    out.quantity = quantity->get<std::int64_t>();
    if (auto e = Check("quantity", QuantityProblem(out.quantity, out.product, rules_))) return e;

    const json* amount = Find(item, "amount");
    if (amount == nullptr) return Missing("amount");
    if (!amount->is_number()) {
      return Fail("amount", "amount must be a number, got " + Shown(*amount));
    }
    out.amount = amount->get<double>();
    if (auto e = Check("amount", AmountProblem(out.amount))) return e;

    if (auto e = Time(item, "purchased_at", out.purchased_at)) return e;
    if (auto e = Check("purchased_at", PurchasedAtProblem(out.purchased_at))) return e;

    out.timezone.clear();
    if (const json* tz = Find(item, "timezone"); tz != nullptr && !tz->is_null()) {
      if (!tz->is_string()) return Fail("timezone", "timezone must be a string, got " + Shown(*tz));
      out.timezone = tz->get<std::string>();
      if (!out.timezone.empty() && !ZoneKnown(out.timezone)) {
        return Check("timezone", TimezoneProblem(out.timezone));
      }
    }

    return Attributes(item, out.attributes);
  }

 private:
  bool ZoneKnown(const std::string& name) {
    auto it = zones_.find(name);
    if (it == zones_.end()) it = zones_.emplace(name, FindZone(name) != nullptr).first;
    return it->second;
  }

  const Rules& rules_;
  std::unordered_map<std::string, bool> zones_;
};

// The effective zone's name, so that "" and the default zone spelt out
// compare equal (as the store compares them).
std::string ZoneOf(const Purchase& p, const Rules& rules) {
  if (p.timezone.empty()) return rules.timezone != nullptr ? rules.timezone->name() : "";
  const Zone* zone = FindZone(p.timezone);
  return zone != nullptr ? zone->name() : p.timezone;
}

// An order twice in one request: fine when both say the same, an error at
// the second otherwise (the first is not recorded yet to conflict with).
std::optional<PurchaseBodyError> RepeatedOrder(const std::vector<Purchase>& items,
                                               const Rules& rules) {
  std::unordered_map<std::string_view, std::size_t> first;
  for (std::size_t i = 0; i < items.size(); ++i) {
    auto [it, inserted] = first.emplace(items[i].order_id, i);
    if (inserted) continue;
    Purchase earlier = items[it->second];
    if (ZoneOf(earlier, rules) == ZoneOf(items[i], rules)) earlier.timezone = items[i].timezone;
    const std::string_view field = earlier.FirstDifference(items[i]);
    if (field.empty()) continue;
    return PurchaseBodyError{"order_id '" + Excerpt(items[i].order_id) + "' is also item " +
                                 std::to_string(it->second) + " of this request, with another " +
                                 std::string(field),
                             i, std::string(field)};
  }
  return std::nullopt;
}

}  // namespace

ParsedPurchases ParsePurchases(std::string_view body, const Rules& rules, std::size_t max_items) {
  ParsedPurchases result;
  ItemParser parser(rules);
  result.error = ParseItems<Purchase>(
      body, "purchase", "purchases", max_items,
      [&](const json& item, Purchase& out) { return parser.Parse(item, out); }, result.items);
  if (!result.error) result.error = RepeatedOrder(result.items, rules);
  if (result.error) result.items.clear();
  return result;
}

}  // namespace tp
