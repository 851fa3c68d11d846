#include "api/purchase_json.h"

#include <date/tz.h>

#include <nlohmann/json.hpp>
#include <unordered_map>

#include "core/json_parse.h"
#include "core/text.h"
#include "planner/purchase_check.h"

namespace tp {
namespace {

using nlohmann::json;

// A JSON value for a message: short, and never the whole of a huge one.
std::string Shown(const json& v) {
  return Excerpt(v.dump(-1, ' ', false, json::error_handler_t::replace), 48);
}

class ItemParser {
 public:
  explicit ItemParser(const Rules& rules) : rules_(rules) {}

  // Fills `out` from `item`; on failure returns the error (index unset).
  // Each field is checked for its type, then for its value, in order.
  std::optional<PurchaseBodyError> Parse(const json& item, Purchase& out) {
    if (!item.is_object()) {
      return Fail("", "each purchase must be a JSON object, got " + Shown(item));
    }
    for (const auto& [key, value] : item.items()) {
      if (key != "order_id" && key != "buyer_id" && key != "product" && key != "quantity" &&
          key != "amount" && key != "purchased_at" && key != "timezone" && key != "attributes") {
        return Fail(Excerpt(key), "unknown field '" + Excerpt(key) +
                                      "' (expected order_id, buyer_id, product, quantity, "
                                      "amount, purchased_at, timezone, attributes)");
      }
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

    const json* at = Find(item, "purchased_at");
    if (at == nullptr) return Missing("purchased_at");
    auto instant = at->is_string() ? ParseRfc3339(at->get_ref<const std::string&>()) : std::nullopt;
    if (!instant) {
      return Fail("purchased_at",
                  "purchased_at must be an RFC 3339 time with an offset, like "
                  "2026-11-01T15:30:00+08:00, got " +
                      Shown(*at));
    }
    out.purchased_at = *instant;
    if (auto e = Check("purchased_at", PurchasedAtProblem(out.purchased_at))) return e;

    out.timezone.clear();
    if (const json* tz = Find(item, "timezone"); tz != nullptr && !tz->is_null()) {
      if (!tz->is_string()) return Fail("timezone", "timezone must be a string, got " + Shown(*tz));
      out.timezone = tz->get<std::string>();
      if (!out.timezone.empty() && !ZoneKnown(out.timezone)) {
        return Check("timezone", TimezoneProblem(out.timezone));
      }
    }

    out.attributes.clear();
    if (const json* attrs = Find(item, "attributes"); attrs != nullptr && !attrs->is_null()) {
      if (!attrs->is_object()) {
        return Fail("attributes", "attributes must be a JSON object, got " + Shown(*attrs));
      }
      // Canonical: keys sorted (std::map), no whitespace. Its depth is
      // bounded by the parse, so dump() cannot recurse too deep.
      if (!attrs->empty()) out.attributes = attrs->dump();
      if (auto e = Check("attributes", AttributesProblem(out.attributes))) return e;
    }
    return std::nullopt;
  }

 private:
  static const json* Find(const json& item, const char* key) {
    auto it = item.find(key);
    return it == item.end() ? nullptr : &*it;
  }
  static PurchaseBodyError Fail(std::string field, std::string message) {
    return {std::move(message), std::nullopt, std::move(field)};
  }
  static std::optional<PurchaseBodyError> Check(const char* field,
                                                std::optional<std::string> problem) {
    if (!problem) return std::nullopt;
    return Fail(field, std::move(*problem));
  }
  static PurchaseBodyError Missing(const char* field) {
    return Fail(field, std::string("missing field '") + field + "'");
  }
  static std::optional<PurchaseBodyError> Text(const json& item, const char* field,
                                               std::string& out) {
    const json* v = Find(item, field);
    if (v == nullptr) return Missing(field);
    if (!v->is_string())
      return Fail(field, std::string(field) + " must be a string, got " + Shown(*v));
    out = v->get<std::string>();
    return std::nullopt;
  }
  bool ZoneKnown(const std::string& name) {
    auto it = zones_.find(name);
    if (it == zones_.end()) it = zones_.emplace(name, FindZone(name) != nullptr).first;
    return it->second;
  }

  const Rules& rules_;
  std::unordered_map<std::string, bool> zones_;
};

// The error ParseJson() reported, as the body's: the item's index and its
// top-level field when the path has them (a path that starts with an index
// is in an array of purchases, one that starts with a key in the one
// purchase the body is).
PurchaseBodyError BodyError(const JsonParseError& e) {
  PurchaseBodyError out{e.message, std::nullopt, ""};
  if (e.path.empty()) return out;
  out.error = e.PathText() + ": " + e.message;
  const bool array = e.path[0].index.has_value();
  out.index = array ? *e.path[0].index : 0;
  const std::size_t field_at = array ? 1 : 0;
  if (e.path.size() > field_at && !e.path[field_at].index)
    out.field = Excerpt(e.path[field_at].key);
  return out;
}

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
  ParsedJson parsed = ParseJson(body);
  if (parsed.error) {
    result.error = BodyError(*parsed.error);
    return result;
  }
  const json& doc = parsed.value;
  ItemParser parser(rules);
  if (doc.is_object()) {
    result.items.resize(1);
    if (auto e = parser.Parse(doc, result.items[0])) {
      e->index = 0;
      result.error = std::move(e);
      result.items.clear();
    }
    return result;
  }
  if (!doc.is_array()) {
    result.error = PurchaseBodyError{"the body must be a purchase object or an array of them",
                                     std::nullopt, ""};
    return result;
  }
  if (doc.empty()) {
    result.error = PurchaseBodyError{"the array holds no purchases", std::nullopt, ""};
    return result;
  }
  if (doc.size() > max_items) {
    result.error =
        PurchaseBodyError{"too many purchases in one request: " + std::to_string(doc.size()) +
                              " (at most " + std::to_string(max_items) + ")",
                          std::nullopt, ""};
    return result;
  }
  result.items.resize(doc.size());
  for (std::size_t i = 0; i < doc.size(); ++i) {
    if (auto e = parser.Parse(doc[i], result.items[i])) {
      e->index = i;
      result.error = std::move(e);
      result.items.clear();
      return result;
    }
  }
  if (auto e = RepeatedOrder(result.items, rules)) {
    result.error = std::move(e);
    result.items.clear();
  }
  return result;
}

}  // namespace tp
