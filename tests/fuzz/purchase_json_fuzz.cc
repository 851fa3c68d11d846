// libFuzzer target: the body of POST /v1/purchases (api/purchase_json.h).
//
// Beyond not crashing: a body is either refused or yields purchases that
// pass planner/purchase_check.h; each accepted purchase, written back as
// JSON, parses to itself; and written as a CSV row, `simulate` and `import`
// accept it as the same purchase (purchase_check.h promises one set of
// rules for both).
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "api/purchase_json.h"
#include "core/json_parse.h"
#include "fuzz_support.h"
#include "planner/purchase_check.h"
#include "simulate/csv.h"

namespace {

// Small, so that the limit is reached by inputs libFuzzer keeps short.
constexpr std::size_t kMaxItems = 8;

nlohmann::json ToJson(const tp::Purchase& p) {
  nlohmann::json out = {
      {"order_id", p.order_id}, {"buyer_id", p.buyer_id},
      {"product", p.product},   {"quantity", p.quantity},
      {"amount", p.amount},     {"purchased_at", tp::FormatRfc3339(p.purchased_at, tp::UtcZone())},
      {"timezone", p.timezone}};
  if (!p.attributes.empty()) out["attributes"] = nlohmann::json::parse(p.attributes);
  return out;
}

std::string CsvField(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + '"';
}

std::string CsvRow(const tp::Purchase& p) {
  char amount[64];
  const auto end = std::to_chars(amount, amount + sizeof amount, p.amount).ptr;
  return CsvField(p.order_id) + ',' + CsvField(p.buyer_id) + ',' + CsvField(p.product) + ',' +
         std::to_string(p.quantity) + ',' + std::string(amount, end) + ',' +
         tp::FormatRfc3339(p.purchased_at, tp::UtcZone()) + ',' + CsvField(p.timezone);
}

void CheckAccepted(const tp::Purchase& p, const tp::Rules& rules) {
  FUZZ_CHECK(!tp::CheckPurchase(p, rules));
  if (!p.attributes.empty()) {
    const tp::ParsedJson attributes = tp::ParseJson(p.attributes);
    FUZZ_CHECK(!attributes.error && attributes.value.is_object());
    FUZZ_CHECK(attributes.value.dump() == p.attributes);
  }

  const tp::ParsedPurchases again = tp::ParsePurchases(ToJson(p).dump(), rules);
  FUZZ_CHECK(!again.error && again.items.size() == 1);
  FUZZ_CHECK(again.items[0].SameAs(p));

  std::vector<std::string> header;
  FUZZ_CHECK(
      !tp::SplitCsvLine("order_id,buyer_id,product,quantity,amount,purchased_at,timezone", header));
  auto parser = tp::PurchaseRowParser::FromHeader(header, rules);
  FUZZ_CHECK(parser.ok());
  std::vector<std::string> fields;
  FUZZ_CHECK(!tp::SplitCsvLine(CsvRow(p), fields));
  tp::Purchase from_csv;
  FUZZ_CHECK(!parser->Parse(fields, from_csv));
  from_csv.attributes = p.attributes;  // CSV has no column for them
  FUZZ_CHECK(from_csv.SameAs(p));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  const auto rules = tp::fuzz::BriefRules();
  const tp::ParsedPurchases parsed = tp::ParsePurchases(body, *rules, kMaxItems);
  if (parsed.error) {
    FUZZ_CHECK(parsed.items.empty());
    FUZZ_CHECK(!parsed.error->error.empty());
    return 0;
  }
  FUZZ_CHECK(!parsed.items.empty() && parsed.items.size() <= kMaxItems);
  for (const tp::Purchase& p : parsed.items) CheckAccepted(p, *rules);
  return 0;
}
