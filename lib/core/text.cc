#include "core/text.h"

#include <algorithm>
#include <cstdint>

namespace tp {
namespace {

// The length of the UTF-8 sequence at `i` and its code point, or 0 if the
// bytes there are not a well-formed sequence.
std::size_t Sequence(std::string_view s, std::size_t i, char32_t& cp) {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const auto cont = [&](std::size_t k) { return i + k < s.size() && (b(k) & 0xC0) == 0x80; };
  const unsigned char c = b(0);
  if (c < 0x80) {
    cp = c;
    return 1;
  }
  if (c >= 0xC2 && c <= 0xDF && cont(1)) {
    cp = (char32_t(c & 0x1F) << 6) | (b(1) & 0x3F);
    return 2;
  }
  if (c >= 0xE0 && c <= 0xEF && cont(1) && cont(2)) {
    cp = (char32_t(c & 0x0F) << 12) | (char32_t(b(1) & 0x3F) << 6) | (b(2) & 0x3F);
    if (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;  // overlong, surrogate
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4 && cont(1) && cont(2) && cont(3)) {
    cp = (char32_t(c & 0x07) << 18) | (char32_t(b(1) & 0x3F) << 12) | (char32_t(b(2) & 0x3F) << 6) |
         (b(3) & 0x3F);
    if (cp < 0x10000 || cp > 0x10FFFF) return 0;
    return 4;
  }
  return 0;
}

bool IsControl(char32_t cp) { return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F); }

}  // namespace

std::optional<std::size_t> InvalidUtf8At(std::string_view text) {
  char32_t cp = 0;
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t n = Sequence(text, i, cp);
    if (n == 0) return i;
    i += n;
  }
  return std::nullopt;
}

std::optional<std::size_t> ControlCharacterAt(std::string_view text) {
  char32_t cp = 0;
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t n = Sequence(text, i, cp);
    if (n == 0) return std::nullopt;  // not UTF-8: InvalidUtf8At's to say
    if (IsControl(cp)) return i;
    i += n;
  }
  return std::nullopt;
}

std::optional<std::string> IdProblem(std::string_view id) {
  if (id.empty()) return "must not be empty";
  if (id.size() > kMaxIdBytes) {
    return "must be at most " + std::to_string(kMaxIdBytes) + " bytes, got " +
           std::to_string(id.size());
  }
  if (auto at = InvalidUtf8At(id)) {
    return "must be UTF-8 (byte " + std::to_string(*at) + " is not): '" + Excerpt(id) + "'";
  }
  if (auto at = ControlCharacterAt(id)) {
    return "must not hold control characters (one at byte " + std::to_string(*at) + "): '" +
           Excerpt(id) + "'";
  }
  return std::nullopt;
}

std::string Excerpt(std::string_view text, std::size_t max) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  char32_t cp = 0;
  for (std::size_t i = 0; i < text.size();) {
    if (out.size() >= max) {
      out += "...";
      break;
    }
    const std::size_t n = Sequence(text, i, cp);
    if (n == 0 || IsControl(cp)) {
      for (std::size_t k = 0; k < (n == 0 ? 1 : n); ++k) {
        const auto c = static_cast<unsigned char>(text[i + k]);
        out += "\\x";
        out += kHex[c >> 4];
        out += kHex[c & 15];
      }
      i += n == 0 ? 1 : n;
      continue;
    }
    out.append(text.substr(i, n));
    i += n;
  }
  return out;
}

std::string Printable(std::string_view text, std::size_t max) {
  static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD
  std::string out;
  char32_t cp = 0;
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t n = Sequence(text, i, cp);
    const std::string_view piece = n == 0 ? kReplacement : IsControl(cp) ? " " : text.substr(i, n);
    if (out.size() + piece.size() > max) {
      out += "...";
      break;
    }
    out.append(piece);
    i += n == 0 ? 1 : n;
  }
  return out;
}

std::string ValidUtf8(std::string_view text) {
  if (!InvalidUtf8At(text) && text.find('\0') == std::string_view::npos) return std::string(text);
  std::string out;
  out.reserve(text.size() + 8);
  char32_t cp = 0;
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t n = Sequence(text, i, cp);
    if (n == 0 || cp == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
      continue;
    }
    out.append(text.substr(i, n));
    i += n;
  }
  return out;
}

std::string Plural(long long n, std::string_view noun) {
  std::string out = std::to_string(n) + " " + std::string(noun);
  if (n != 1) out += 's';
  return out;
}

std::string AsciiLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool IsName(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  auto ok = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.';
  };
  return std::all_of(s.begin(), s.end(), ok) && s.front() != '-' && s.front() != '.';
}

}  // namespace tp
