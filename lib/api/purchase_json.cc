#include "api/purchase_json.h"

#include <cmath>
#include <nlohmann/json.hpp>
#include <unordered_map>

namespace tp {
namespace {

using nlohmann::json;

class ItemParser {
 public:
  explicit ItemParser(const Rules& rules) : rules_(rules) {}

  // Fills `out` from `item`; on failure returns the error (index unset).
  std::optional<PurchaseBodyError> Parse(const json& item, Purchase& out) {
    if (!item.is_object()) return Fail("", "each purchase must be a JSON object");
    for (const auto& [key, value] : item.items()) {
      if (key != "order_id" && key != "buyer_id" && key != "product" && key != "quantity" &&
          key != "amount" && key != "purchased_at" && key != "timezone" && key != "attributes") {
        return Fail(key, "unknown field '" + key +
                             "' (expected order_id, buyer_id, product, quantity, amount, "
                             "purchased_at, timezone, attributes)");
      }
    }
    if (auto e = Id(item, "order_id", out.order_id)) return e;
    if (auto e = Id(item, "buyer_id", out.buyer_id)) return e;

    const json* product = Find(item, "product");
    if (product == nullptr) return Missing("product");
    if (!product->is_string()) return Fail("product", "product must be a string");
    out.product = product->get<std::string>();
    if (rules_.ProductIndex(out.product) < 0) {
      return Fail("product", "unknown product '" + out.product + "'");
    }

    const json* quantity = Find(item, "quantity");
    if (quantity == nullptr) return Missing("quantity");
    if (!quantity->is_number_integer()) return Fail("quantity", "quantity must be an integer");
    const bool in_range =
        quantity->is_number_unsigned()
            ? quantity->get<std::uint64_t>() >= 1 && quantity->get<std::uint64_t>() <= INT32_MAX
            : quantity->get<std::int64_t>() >= 1 && quantity->get<std::int64_t>() <= INT32_MAX;
    if (!in_range) {
      return Fail("quantity", "quantity must be at least 1 (and at most 2147483647)");
    }
    out.quantity = quantity->get<std::int64_t>();

    const json* amount = Find(item, "amount");
    if (amount == nullptr) return Missing("amount");
    if (!amount->is_number()) return Fail("amount", "amount must be a number");
    out.amount = amount->get<double>();
    if (!std::isfinite(out.amount) || out.amount < 0) {
      return Fail("amount", "amount must not be negative");
    }

    const json* at = Find(item, "purchased_at");
    if (at == nullptr) return Missing("purchased_at");
    if (!at->is_string()) return Fail("purchased_at", "purchased_at must be an RFC 3339 string");
    auto instant = ParseRfc3339(at->get_ref<const std::string&>());
    if (!instant) {
      return Fail("purchased_at",
                  "purchased_at must be RFC 3339 with an offset, like "
                  "2026-11-01T15:30:00+08:00; got '" +
                      at->get<std::string>() + "'");
    }
    out.purchased_at = *instant;

    out.timezone.clear();
    if (const json* tz = Find(item, "timezone"); tz != nullptr && !tz->is_null()) {
      if (!tz->is_string()) return Fail("timezone", "timezone must be a string");
      out.timezone = tz->get<std::string>();
      if (!out.timezone.empty() && !ZoneKnown(out.timezone)) {
        return Fail("timezone", "unknown time zone '" + out.timezone +
                                    "' (use an IANA name like Asia/Shanghai)");
      }
    }

    out.attributes.clear();
    if (const json* attrs = Find(item, "attributes"); attrs != nullptr && !attrs->is_null()) {
      if (!attrs->is_object()) return Fail("attributes", "attributes must be a JSON object");
      // Canonical: keys sorted (std::map), no whitespace.
      if (!attrs->empty()) out.attributes = attrs->dump();
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
  static PurchaseBodyError Missing(const char* field) {
    return Fail(field, std::string("missing field '") + field + "'");
  }
  static std::optional<PurchaseBodyError> Id(const json& item, const char* field,
                                             std::string& out) {
    const json* v = Find(item, field);
    if (v == nullptr) return Missing(field);
    if (!v->is_string()) return Fail(field, std::string(field) + " must be a string");
    out = v->get<std::string>();
    if (out.empty()) return Fail(field, std::string(field) + " must not be empty");
    if (out.size() > kMaxIdLength) {
      return Fail(field, std::string(field) + " must be at most " + std::to_string(kMaxIdLength) +
                             " bytes");
    }
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

}  // namespace

ParsedPurchases ParsePurchases(std::string_view body, const Rules& rules, std::size_t max_items) {
  ParsedPurchases result;
  json doc;
  try {
    doc = json::parse(body);
  } catch (const json::parse_error& e) {
    std::string what = e.what();
    // "[json.exception.parse_error.101] parse error at line 1, column 2: ..."
    if (auto pos = what.find("] "); pos != std::string::npos) what = what.substr(pos + 2);
    result.error = PurchaseBodyError{"malformed JSON: " + what, std::nullopt, ""};
    return result;
  }
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
  return result;
}

}  // namespace tp
