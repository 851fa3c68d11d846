#include "simulate/csv.h"

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "core/json_parse.h"
#include "core/text.h"
#include "planner/event_check.h"
#include "planner/purchase_check.h"

namespace tp {

void AppendCsvField(std::string& out, std::string_view value) {
  const bool quote = value.find_first_of(",\"\r\n") != std::string_view::npos ||
                     (!value.empty() && (value.front() == ' ' || value.back() == ' '));
  if (!quote) {
    out += value;
    return;
  }
  out.push_back('"');
  for (char c : value) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
}

CsvLineReader::CsvLineReader(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    open_error_ = "cannot read " + path + ": it is a directory";
    return;
  }
  in_.open(path, std::ios::binary);
  if (!in_.is_open()) {
    open_error_ = "cannot read " + path + ": " + std::strerror(errno);
    return;
  }
  const auto size = std::filesystem::file_size(path, ec);
  size_ = ec ? 0 : static_cast<std::uint64_t>(size);
}

CsvLineReader::Read CsvLineReader::Next(std::string& line) {
  line.clear();
  offset_ = position_;
  std::streambuf* buf = in_.rdbuf();
  if (!open_error_.empty() || buf == nullptr) return Read::kEnd;
  bool too_long = false;
  bool any = false;
  for (;;) {
    int c = 0;
    try {
      c = buf->sbumpc();
    } catch (const std::exception&) {
      // libstdc++'s filebuf throws when read() fails (EIO): the file ends
      // here, with the system's reason, and the partial line is dropped.
      read_error_ = errno != 0 ? std::strerror(errno) : "read failed";
      line.clear();
      return Read::kEnd;
    }
    if (c == std::char_traits<char>::eof()) break;
    any = true;
    ++position_;
    if (c == '\n') break;
    if (line.size() < kMaxLine) {
      line.push_back(static_cast<char>(c));
    } else {
      too_long = true;
    }
  }
  if (!any) return Read::kEnd;
  ++number_;
  if (too_long) {
    line.clear();
    return Read::kTooLong;
  }
  if (!line.empty() && line.back() == '\r') line.pop_back();
  if (number_ == 1 && line.starts_with("\xEF\xBB\xBF")) line.erase(0, 3);
  return Read::kLine;
}

void CsvLineReader::Seek(std::uint64_t offset, std::uint64_t number) {
  in_.clear();
  in_.seekg(static_cast<std::streamoff>(offset));
  position_ = offset;
  number_ = number - 1;
}

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

namespace {

// Where each of `names` is in `header` (-1: absent); the first `required`
// names must be there.
template <std::size_t N>
Status IndexHeader(const std::vector<std::string>& header,
                   const std::array<std::string_view, N>& names, std::size_t required,
                   std::array<int, N>& index) {
  index.fill(-1);
  for (std::size_t i = 0; i < header.size(); ++i) {
    int column = -1;
    for (std::size_t c = 0; c < N; ++c) {
      if (names[c] == header[i]) column = static_cast<int>(c);
    }
    if (column < 0) {
      return Status::Error("unknown column '" + Excerpt(header[i]) + "' in the header");
    }
    if (index[static_cast<std::size_t>(column)] >= 0) {
      return Status::Error("column '" + header[i] + "' appears twice in the header");
    }
    index[static_cast<std::size_t>(column)] = static_cast<int>(i);
  }
  for (std::size_t c = 0; c < required; ++c) {
    if (index[c] < 0) {
      return Status::Error("the header lacks column '" + std::string(names[c]) + "'");
    }
  }
  return Status::Ok();
}

}  // namespace

StatusOr<PurchaseRowParser> PurchaseRowParser::FromHeader(const std::vector<std::string>& header,
                                                          const Rules& rules) {
  PurchaseRowParser parser(rules);
  parser.width_ = header.size();
  if (Status s = IndexHeader(header, kColumnNames, kTimezone, parser.index_); !s.ok()) return s;
  return parser;
}

StatusOr<EventRowParser> EventRowParser::FromHeader(const std::vector<std::string>& header,
                                                    const Rules& rules) {
  EventRowParser parser(rules);
  parser.width_ = header.size();
  if (Status s = IndexHeader(header, kColumnNames, kTouchpointId, parser.index_); !s.ok()) {
    return s;
  }
  return parser;
}

std::optional<std::string> EventRowParser::Parse(const std::vector<std::string>& fields,
                                                 EngagementEvent& out) {
  if (fields.size() != width_) {
    return "expected " + std::to_string(width_) + " fields, got " + std::to_string(fields.size());
  }
  auto field = [&](Column c) -> const std::string& {
    return fields[static_cast<std::size_t>(index_[static_cast<std::size_t>(c)])];
  };
  auto check = [&](Column c, std::optional<std::string> what) -> std::optional<std::string> {
    if (!what) return std::nullopt;
    return "field '" + std::string(kColumnNames[static_cast<std::size_t>(c)]) + "': " + *what;
  };
  out.event_id = field(kEventId);
  if (auto e = check(kEventId, IdFieldProblem("event_id", out.event_id))) return e;
  out.buyer_id = field(kBuyerId);
  if (auto e = check(kBuyerId, IdFieldProblem("buyer_id", out.buyer_id))) return e;
  out.type = field(kType);
  if (auto e = check(kType, EventTypeProblem(out.type, *rules_))) return e;
  const auto at = ParseRfc3339(field(kAt));
  if (!at) {
    return check(kAt,
                 "at must be an RFC 3339 time with an offset, like "
                 "2026-11-01T15:30:00+08:00, got '" +
                     Excerpt(field(kAt)) + "'");
  }
  out.at = *at;
  if (auto e = check(kAt, EventAtProblem(out.at))) return e;
  out.touchpoint_id.clear();
  out.attributes.clear();
  if (index_[kTouchpointId] >= 0) {
    out.touchpoint_id = field(kTouchpointId);
    if (!out.touchpoint_id.empty()) {
      if (auto e = check(kTouchpointId, IdFieldProblem("touchpoint_id", out.touchpoint_id))) {
        return e;
      }
    }
  }
  return std::nullopt;
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
  auto check = [&](Column c, std::optional<std::string> what) -> std::optional<std::string> {
    if (!what) return std::nullopt;
    return problem(c, *what);
  };
  out.order_id = field(kOrderId);
  if (auto e = check(kOrderId, IdFieldProblem("order_id", out.order_id))) return e;
  out.buyer_id = field(kBuyerId);
  if (auto e = check(kBuyerId, IdFieldProblem("buyer_id", out.buyer_id))) return e;
  out.product = field(kProduct);
  if (auto e = check(kProduct, ProductProblem(out.product, *rules_))) return e;
  const std::string& q = field(kQuantity);
  auto [q_end, q_ec] = std::from_chars(q.data(), q.data() + q.size(), out.quantity);
  if (q_ec != std::errc() || q_end != q.data() + q.size()) {
    return problem(kQuantity, "quantity must be an integer from 1 to " +
                                  std::to_string(kMaxQuantity) + ", got '" + Excerpt(q) + "'");
  }
  if (auto e = check(kQuantity, QuantityProblem(out.quantity, out.product, *rules_))) return e;
  const std::string& a = field(kAmount);
  auto [a_end, a_ec] = std::from_chars(a.data(), a.data() + a.size(), out.amount);
  if (a_ec != std::errc() || a_end != a.data() + a.size()) {
    return problem(kAmount, "amount must be a number from 0 to 1e12, got '" + Excerpt(a) + "'");
  }
  if (auto e = check(kAmount, AmountProblem(out.amount))) return e;
  const auto at = ParseRfc3339(field(kPurchasedAt));
  if (!at) {
    return problem(kPurchasedAt,
                   "purchased_at must be an RFC 3339 time with an offset, like "
                   "2026-11-01T15:30:00+08:00, got '" +
                       Excerpt(field(kPurchasedAt)) + "'");
  }
  out.purchased_at = *at;
  if (auto e = check(kPurchasedAt, PurchasedAtProblem(out.purchased_at))) return e;
  out.timezone.clear();
  if (index_[kTimezone] >= 0) {
    out.timezone = field(kTimezone);
    if (!out.timezone.empty()) {
      auto [it, inserted] = zone_ok_.try_emplace(out.timezone, false);
      if (inserted) it->second = FindZone(out.timezone) != nullptr;
      if (!it->second) return check(kTimezone, TimezoneProblem(out.timezone));
    }
  }
  out.attributes.clear();
  if (index_[kAttributes] >= 0 && !field(kAttributes).empty()) {
    const std::string& text = field(kAttributes);
    ParsedJson parsed = ParseJson(text);
    if (!parsed.error && parsed.value.is_null())
      parsed.value = nlohmann::json::object();  // as the API
    if (parsed.error || !parsed.value.is_object()) {
      return problem(kAttributes,
                     "attributes must be a JSON object, like {\"style\":\"natural\"}, got '" +
                         Excerpt(text) + "'" +
                         (parsed.error ? " (" + parsed.error->message + ")" : ""));
    }
    // Canonical, as the API keeps it: keys sorted, no whitespace.
    if (!parsed.value.empty()) out.attributes = parsed.value.dump();
    if (auto e = check(kAttributes, AttributesProblem(out.attributes))) return e;
  }
  return std::nullopt;
}

}  // namespace tp
