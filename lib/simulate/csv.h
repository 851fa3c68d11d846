// Purchases as CSV: header `order_id,buyer_id,product,quantity,amount,
// purchased_at,timezone` (any column order; `timezone` may be omitted or
// blank). Fields follow RFC 4180 quoting; a record is one line.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "config/rules.h"
#include "core/model.h"
#include "core/status.h"

namespace tp {

// Splits one CSV line into `fields` (reused to avoid allocations). Returns an
// error message for an unterminated or stray quote.
std::optional<std::string> SplitCsvLine(std::string_view line, std::vector<std::string>& fields);

// Reads purchase rows once the header has told where each column is.
// Keeps a cache of zone lookups; not thread-safe.
class PurchaseRowParser {
 public:
  enum Column {
    kOrderId,
    kBuyerId,
    kProduct,
    kQuantity,
    kAmount,
    kPurchasedAt,
    kTimezone,
    kColumns
  };
  static constexpr std::array<std::string_view, kColumns> kColumnNames = {
      "order_id", "buyer_id", "product", "quantity", "amount", "purchased_at", "timezone"};

  // Validates the header row; the error names what is missing or unknown.
  static StatusOr<PurchaseRowParser> FromHeader(const std::vector<std::string>& header,
                                                const Rules& rules);

  // Parses one row into `out`. On failure returns "field 'NAME': PROBLEM".
  std::optional<std::string> Parse(const std::vector<std::string>& fields, Purchase& out);

 private:
  explicit PurchaseRowParser(const Rules& rules) : rules_(&rules) {}
  const Rules* rules_;
  std::array<int, kColumns> index_{};
  std::size_t width_ = 0;
  std::unordered_map<std::string, bool> zone_ok_;
};

}  // namespace tp
