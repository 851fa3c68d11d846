#include "ctl/table.h"

#include <algorithm>
#include <array>
#include <charconv>

namespace tp {
namespace {

bool IsWide(char32_t cp) {
  return (cp >= 0x1100 && cp <= 0x115F) || (cp >= 0x2E80 && cp <= 0xA4CF && cp != 0x303F) ||
         (cp >= 0xAC00 && cp <= 0xD7A3) || (cp >= 0xF900 && cp <= 0xFAFF) ||
         (cp >= 0xFE30 && cp <= 0xFE4F) || (cp >= 0xFF00 && cp <= 0xFF60) ||
         (cp >= 0xFFE0 && cp <= 0xFFE6) || (cp >= 0x1F300 && cp <= 0x1F64F) ||
         (cp >= 0x20000 && cp <= 0x3FFFD);
}

}  // namespace

std::size_t DisplayWidth(std::string_view text) {
  std::size_t width = 0;
  for (std::size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    std::size_t n = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    if (i + n > text.size()) n = 1;
    char32_t cp = n == 1 ? c : (c & (0x7F >> n));
    for (std::size_t k = 1; k < n; ++k)
      cp = (cp << 6) | (static_cast<unsigned char>(text[i + k]) & 0x3F);
    width += IsWide(cp) ? 2 : 1;
    i += n;
  }
  return width;
}

void Table::Print(std::ostream& out, std::string_view indent) const {
  std::vector<std::size_t> widths;
  for (const auto& row : rows_) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (std::size_t c = 0; c < row.size(); ++c) {
      widths[c] = std::max(widths[c], DisplayWidth(row[c]));
    }
  }
  for (const auto& row : rows_) {
    std::string line(indent);
    for (std::size_t c = 0; c < row.size(); ++c) {
      line += row[c];
      if (c + 1 < row.size()) line.append(widths[c] - DisplayWidth(row[c]) + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out << line << '\n';
  }
}

std::string DisplayTime(std::string_view rfc3339, const Zone* zone) {
  const auto at = ParseRfc3339(rfc3339);
  if (!at) return "-";
  std::string text = FormatRfc3339(std::chrono::floor<std::chrono::seconds>(*at), zone);
  // 2026-11-02T15:30:00+08:00 or ...Z
  if (text.size() > 10 && text[10] == 'T') text[10] = ' ';
  if (!text.empty() && text.back() == 'Z') {
    text.back() = ' ';
    text += "+00:00";
  } else if (text.size() > 6) {
    text.insert(text.size() - 6, " ");
  }
  return text;
}

std::string DisplayTimesIn(std::string_view text, const Zone* zone) {
  // YYYY-MM-DDTHH:MM:SS, then an optional fraction, then Z or +hh:mm.
  const auto digits = [&](std::size_t at, std::size_t n) {
    if (at + n > text.size()) return false;
    for (std::size_t i = at; i < at + n; ++i) {
      if (text[i] < '0' || text[i] > '9') return false;
    }
    return true;
  };
  std::string out;
  std::size_t i = 0;
  while (i < text.size()) {
    const bool stamp = i + 19 <= text.size() && digits(i, 4) && text[i + 4] == '-' &&
                       digits(i + 5, 2) && text[i + 7] == '-' && digits(i + 8, 2) &&
                       i + 10 < text.size() && text[i + 10] == 'T' && digits(i + 11, 2) &&
                       text[i + 13] == ':' && digits(i + 14, 2) && text[i + 16] == ':' &&
                       digits(i + 17, 2);
    if (!stamp) {
      out += text[i++];
      continue;
    }
    std::size_t end = i + 19;
    if (end < text.size() && text[end] == '.') {
      ++end;
      while (end < text.size() && text[end] >= '0' && text[end] <= '9') ++end;
    }
    if (end < text.size() && text[end] == 'Z') {
      ++end;
    } else if (end < text.size() && (text[end] == '+' || text[end] == '-') && digits(end + 1, 2) &&
               end + 3 < text.size() && text[end + 3] == ':' && digits(end + 4, 2)) {
      end += 6;
    } else {
      out += text[i++];
      continue;
    }
    out += DisplayTime(text.substr(i, end - i), zone);
    i = end;
  }
  return out;
}

std::string DisplayAmount(double amount) {
  std::array<char, 64> buf{};
  auto [end, ec] =
      std::to_chars(buf.data(), buf.data() + buf.size(), amount, std::chars_format::fixed);
  if (ec != std::errc()) return "?";
  return std::string(buf.data(), end);
}

}  // namespace tp
