#include "simulate/csv.h"

#include <charconv>
#include <cmath>

namespace tp {

std::optional<std::string> SplitCsvLine(std::string_view line, std::vector<std::string>& fields) {
  std::size_t count = 0;
  std::size_t i = 0;
  auto next_field = [&]() -> std::string& {
    if (fields.size() <= count) fields.emplace_back();
    std::string& f = fields[count++];
    f.clear();
    return f;
  };
  for (;;) {
    std::string& field = next_field();
    if (i < line.size() && line[i] == '"') {
      ++i;
      for (;;) {
        if (i >= line.size()) return "unterminated quoted field";
        if (line[i] == '"') {
          if (i + 1 < line.size() && line[i + 1] == '"') {
            field.push_back('"');
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        field.push_back(line[i++]);
      }
      if (i < line.size() && line[i] != ',') return "unexpected text after a closing quote";
    } else {
      const std::size_t end = line.find(',', i);
      const std::string_view raw = line.substr(i, end == std::string_view::npos ? end : end - i);
      if (raw.find('"') != std::string_view::npos) return "a quote inside an unquoted field";
      field.assign(raw);
      i += raw.size();
    }
    if (i >= line.size()) break;
    ++i;  // the comma
  }
  fields.resize(count);
  return std::nullopt;
}

StatusOr<PurchaseRowParser> PurchaseRowParser::FromHeader(const std::vector<std::string>& header,
                                                          const Rules& rules) {
  PurchaseRowParser parser(rules);
  parser.index_.fill(-1);
  parser.width_ = header.size();
  for (std::size_t i = 0; i < header.size(); ++i) {
    std::string_view name = header[i];
    int column = -1;
    for (int c = 0; c < kColumns; ++c) {
      if (kColumnNames[static_cast<std::size_t>(c)] == name) column = c;
    }
    if (column < 0) return Status::Error("unknown column '" + header[i] + "' in the header");
    if (parser.index_[static_cast<std::size_t>(column)] >= 0) {
      return Status::Error("column '" + header[i] + "' appears twice in the header");
    }
    parser.index_[static_cast<std::size_t>(column)] = static_cast<int>(i);
  }
  for (int c = 0; c < kTimezone; ++c) {
    if (parser.index_[static_cast<std::size_t>(c)] < 0) {
      return Status::Error("the header lacks column '" +
                           std::string(kColumnNames[static_cast<std::size_t>(c)]) + "'");
    }
  }
  return parser;
}

std::optional<std::string> PurchaseRowParser::Parse(const std::vector<std::string>& fields,
                                                    Purchase& out) {
  if (fields.size() != width_) {
    return "expected " + std::to_string(width_) + " fields, got " + std::to_string(fields.size());
  }
  auto field = [&](Column c) -> const std::string& {
    return fields[static_cast<std::size_t>(index_[static_cast<std::size_t>(c)])];
  };
  auto problem = [](Column c, const std::string& what) {
    return "field '" + std::string(kColumnNames[static_cast<std::size_t>(c)]) + "': " + what;
  };
  out.order_id = field(kOrderId);
  if (out.order_id.empty()) return problem(kOrderId, "must not be empty");
  out.buyer_id = field(kBuyerId);
  if (out.buyer_id.empty()) return problem(kBuyerId, "must not be empty");
  out.product = field(kProduct);
  if (rules_->ProductIndex(out.product) < 0) {
    return problem(kProduct, "unknown product '" + out.product + "'");
  }
  const std::string& q = field(kQuantity);
  auto [q_end, q_ec] = std::from_chars(q.data(), q.data() + q.size(), out.quantity);
  if (q_ec != std::errc() || q_end != q.data() + q.size() || out.quantity < 1 ||
      out.quantity > 1000000) {
    return problem(kQuantity, "must be an integer from 1 to 1000000, got '" + q + "'");
  }
  const std::string& a = field(kAmount);
  auto [a_end, a_ec] = std::from_chars(a.data(), a.data() + a.size(), out.amount);
  if (a_ec != std::errc() || a_end != a.data() + a.size() || !std::isfinite(out.amount) ||
      out.amount < 0) {
    return problem(kAmount, "must be a number >= 0, got '" + a + "'");
  }
  const auto at = ParseRfc3339(field(kPurchasedAt));
  if (!at) {
    return problem(kPurchasedAt,
                   "must be an RFC 3339 time with an offset, like "
                   "2026-11-01T15:30:00+08:00, got '" +
                       field(kPurchasedAt) + "'");
  }
  out.purchased_at = *at;
  out.timezone.clear();
  if (index_[kTimezone] >= 0) {
    out.timezone = field(kTimezone);
    if (!out.timezone.empty()) {
      auto [it, inserted] = zone_ok_.try_emplace(out.timezone, false);
      if (inserted) it->second = FindZone(out.timezone) != nullptr;
      if (!it->second) return problem(kTimezone, "unknown time zone '" + out.timezone + "'");
    }
  }
  return std::nullopt;
}

}  // namespace tp
