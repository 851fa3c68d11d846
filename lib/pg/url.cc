#include "pg/url.h"

#include <libpq-fe.h>

#include <algorithm>
#include <cctype>
#include <charconv>

namespace tp::pg {

std::string UrlParameter(const std::string& url, std::string_view key) {
  std::string value;
  PQconninfoOption* parsed = PQconninfoParse(url.c_str(), nullptr);
  if (parsed == nullptr) return value;
  for (const PQconninfoOption* o = parsed; o->keyword != nullptr; ++o) {
    if (o->val != nullptr && key == o->keyword) value = o->val;
  }
  PQconninfoFree(parsed);
  return value;
}

bool IsUrl(std::string_view location) {
  return location.starts_with("postgresql://") || location.starts_with("postgres://");
}

namespace {

// `key` with its %XX escapes decoded, as libpq decodes a URL's keys,
// and in lower case.
std::string DecodedKey(std::string_view key) {
  std::string out;
  for (std::size_t i = 0; i < key.size(); ++i) {
    char c = key[i];
    unsigned value = 0;
    if (c == '%' && i + 2 < key.size() &&
        std::from_chars(key.data() + i + 1, key.data() + i + 3, value, 16).ptr ==
            key.data() + i + 3) {
      c = static_cast<char>(value);
      i += 2;
    }
    out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

// `url` with the value of each query parameter whose key names a password
// (`password`, `sslpassword`, spelt with escapes or not) replaced.
std::string RedactQuery(std::string_view url) {
  const std::size_t query = url.find('?');
  if (query == std::string_view::npos) return std::string(url);
  std::string out(url.substr(0, query + 1));
  std::string_view rest = url.substr(query + 1);
  while (true) {
    const std::size_t amp = rest.find('&');
    const std::string_view param = rest.substr(0, amp);
    const std::size_t eq = param.find('=');
    if (eq != std::string_view::npos && DecodedKey(param.substr(0, eq)).ends_with("password")) {
      out.append(param.substr(0, eq + 1)).append("***");
    } else {
      out.append(param);
    }
    if (amp == std::string_view::npos) break;
    out += '&';
    rest = rest.substr(amp + 1);
  }
  return out;
}

}  // namespace

std::string Redacted(std::string_view url) { return RedactQuery(RedactUserinfo(url)); }

std::string RedactUserinfo(std::string_view url) {
  const std::size_t scheme = url.find("://");
  if (scheme == std::string_view::npos) return std::string(url);
  const std::size_t start = scheme + 3;
  // The last '@' before the query: a password may hold '/' or '@' (then
  // it is not a valid URL, but a message may still quote it).
  const std::size_t at = url.substr(0, url.find('?', start)).rfind('@');
  if (at == std::string_view::npos || at < start) return std::string(url);
  const std::size_t colon = url.find(':', start);
  if (colon == std::string_view::npos || colon > at) return std::string(url);
  return std::string(url.substr(0, colon + 1)) + "***" + std::string(url.substr(at));
}

}  // namespace tp::pg
