// Plain-text tables and values for touchpointctl's human output.
#pragma once

#include <cstddef>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "core/time.h"

namespace tp {

// Columns as wide as their widest cell (a header row first), separated by
// two spaces; the last column is not padded. Width counts what a terminal
// shows: a UTF-8 character is one column, an East Asian wide one two.
class Table {
 public:
  explicit Table(std::vector<std::string> header) { rows_.push_back(std::move(header)); }
  void Add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  std::size_t rows() const { return rows_.size() - 1; }
  // Each line starts with `indent`.
  void Print(std::ostream& out, std::string_view indent = "") const;

 private:
  std::vector<std::vector<std::string>> rows_;
};

// The columns `text` takes on a terminal.
std::size_t DisplayWidth(std::string_view text);

// `rfc3339` shown in `zone` as "2026-11-02 15:30:00 +08:00" (seconds, no
// fraction); "-" for an empty or unparsable time.
std::string DisplayTime(std::string_view rfc3339, const Zone* zone);

// `text` with every RFC 3339 time in it (as the API writes them in reasons,
// e.g. "waiting until 2026-11-02T09:00:00+08:00: ...") shown as DisplayTime().
std::string DisplayTimesIn(std::string_view text, const Zone* zone);

// An amount as a plain decimal: 99999.99, 1234567, 0.5 (never an exponent).
std::string DisplayAmount(double amount);

}  // namespace tp
