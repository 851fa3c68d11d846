// Purchases as CSV: header `order_id,buyer_id,product,quantity,amount,
// purchased_at,timezone,attributes` (any column order; `timezone` and
// `attributes`, a JSON object, may be omitted, blank or null); engagement events as CSV:
// `event_id,buyer_id,type,at, touchpoint_id` (`touchpoint_id` may be omitted or blank). Fields
// follow RFC 4180 quoting; a record is one line. `simulate` and `touchpointctl import` read files
// the same way (CsvLineReader).
#pragma once

#include <array>
#include <cstdint>
#include <fstream>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "config/rules.h"
#include "core/model.h"
#include "core/status.h"

namespace tp {

// Appends `value` as one CSV field: quoted (quotes doubled) when it holds a
// comma, a quote, a line break or leading or trailing space, as is otherwise.
void AppendCsvField(std::string& out, std::string_view value);

// Splits one CSV line into `fields` (reused to avoid allocations). Returns an
// error message for an unterminated or stray quote.
std::optional<std::string> SplitCsvLine(std::string_view line, std::vector<std::string>& fields);

// Reads a CSV file a line at a time: LF or CRLF endings, a UTF-8 byte order
// mark before the header dropped, and a line longer than kMaxLine refused
// (skipped, never held in memory whole). Not thread-safe.
class CsvLineReader {
 public:
  static constexpr std::size_t kMaxLine = 1 << 20;

  explicit CsvLineReader(const std::string& path);
  // Empty once the file is open; else "cannot read FILE: REASON".
  const std::string& open_error() const { return open_error_; }

  enum class Read : std::uint8_t { kLine, kTooLong, kEnd };
  // The next line into `line` (kTooLong: the line was skipped). A read
  // error ends the file early: check read_error() after kEnd.
  Read Next(std::string& line);
  // The number (1-based) and byte offset of the line Next() returned.
  std::uint64_t number() const { return number_; }
  std::uint64_t offset() const { return offset_; }
  // Where the next line starts.
  std::uint64_t position() const { return position_; }
  // The bytes of the file, or 0 if unknown.
  std::uint64_t size() const { return size_; }
  // Why reading failed ("Input/output error"), or empty if it did not.
  const std::string& read_error() const { return read_error_; }
  // Continues at `offset`, the start of line `number`.
  void Seek(std::uint64_t offset, std::uint64_t number);

 private:
  std::ifstream in_;
  std::string open_error_;
  std::string read_error_;
  std::uint64_t number_ = 0, offset_ = 0, position_ = 0, size_ = 0;
};

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
    kAttributes,
    kColumns
  };
  static constexpr std::array<std::string_view, kColumns> kColumnNames = {
      "order_id", "buyer_id",     "product",  "quantity",
      "amount",   "purchased_at", "timezone", "attributes"};

  // Validates the header row; the error names what is missing or unknown.
  static StatusOr<PurchaseRowParser> FromHeader(const std::vector<std::string>& header,
                                                const Rules& rules);

  // Parses one row into `out`, checked as the API checks a purchase
  // (planner/purchase_check.h). On failure returns "field 'NAME': PROBLEM".
  std::optional<std::string> Parse(const std::vector<std::string>& fields, Purchase& out);

 private:
  explicit PurchaseRowParser(const Rules& rules) : rules_(&rules) {}
  const Rules* rules_;
  std::array<int, kColumns> index_{};
  std::size_t width_ = 0;
  std::unordered_map<std::string, bool> zone_ok_;
};

// Reads engagement event rows once the header has told where each column
// is; checked as the API checks an event (planner/event_check.h).
class EventRowParser {
 public:
  enum Column { kEventId, kBuyerId, kType, kAt, kTouchpointId, kColumns };
  static constexpr std::array<std::string_view, kColumns> kColumnNames = {
      "event_id", "buyer_id", "type", "at", "touchpoint_id"};

  static StatusOr<EventRowParser> FromHeader(const std::vector<std::string>& header,
                                             const Rules& rules);
  // On failure returns "field 'NAME': PROBLEM".
  std::optional<std::string> Parse(const std::vector<std::string>& fields, EngagementEvent& out);

 private:
  explicit EventRowParser(const Rules& rules) : rules_(&rules) {}
  const Rules* rules_;
  std::array<int, kColumns> index_{};
  std::size_t width_ = 0;
};

}  // namespace tp
