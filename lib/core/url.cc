#include "core/url.h"

#include <cctype>
#include <charconv>

#include "core/text.h"

namespace tp {
namespace {

// Splits HOST[:PORT] into `url`; `default_port` when no port is given.
Status ParseAuthority(std::string_view authority, std::uint16_t default_port, Url& url) {
  std::string_view host = authority;
  std::string_view port;
  if (authority.starts_with('[')) {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return Status::Error("unclosed '[' in the host");
    host = authority.substr(1, close - 1);
    const auto rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return Status::Error("unexpected text after ']' in the host");
      port = rest.substr(1);
    }
  } else if (const auto colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      return Status::Error("an IPv6 address must be in brackets, like [::1]");
    }
  }
  if (host.empty()) return Status::Error("no host");
  for (char c : host) {
    if (std::isspace(static_cast<unsigned char>(c)) || c == '/' || c == '?' || c == '#') {
      return Status::Error("invalid character in the host");
    }
  }
  url.host = std::string(host);
  url.port = default_port;
  if (!port.empty()) {
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535) {
      return Status::Error("the port must be a number from 1 to 65535");
    }
    url.port = static_cast<std::uint16_t>(value);
  }
  return Status::Ok();
}

std::uint16_t DefaultPort(std::string_view scheme) {
  if (scheme == "https") return 443;
  if (scheme == "redis") return 6379;
  return 80;
}

// Splits "SCHEME://REST"; the scheme lowercased.
bool SplitScheme(std::string_view text, std::string& scheme, std::string_view& rest) {
  const auto sep = text.find("://");
  if (sep == std::string_view::npos || sep == 0) return false;
  scheme = AsciiLower(text.substr(0, sep));
  rest = text.substr(sep + 3);
  return true;
}

}  // namespace

std::string Url::Authority() const {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::string Url::HostHeader() const {
  const bool v6 = host.find(':') != std::string::npos;
  std::string out = v6 ? "[" + host + "]" : host;
  // Appended piecewise: GCC 12 at -O3 warns (-Wrestrict, a false positive,
  // GCC bug 105329) on `":" + std::to_string(port)` here.
  if (port != DefaultPort(scheme)) {
    out += ':';
    out += std::to_string(port);
  }
  return out;
}

StatusOr<Url> ParseHttpUrl(std::string_view text) {
  Url url;
  std::string_view rest;
  if (!SplitScheme(text, url.scheme, rest) || (url.scheme != "http" && url.scheme != "https")) {
    return Status::Error("must start with http:// or https://");
  }
  if (rest.find('#') != std::string_view::npos) return Status::Error("must not have a #fragment");
  const auto path_start = rest.find_first_of("/?");
  const auto authority = rest.substr(0, path_start);
  if (authority.find('@') != std::string_view::npos) {
    return Status::Error("must not carry credentials (user@host); the signature authenticates");
  }
  if (Status s = ParseAuthority(authority, DefaultPort(url.scheme), url); !s.ok()) return s;
  url.target = path_start == std::string_view::npos ? "/" : std::string(rest.substr(path_start));
  if (url.target.front() == '?') url.target.insert(url.target.begin(), '/');
  for (char c : url.target) {
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) {
      return Status::Error("the path must not contain spaces or control characters");
    }
  }
  return url;
}

StatusOr<Url> ParseRedisUrl(std::string_view text) {
  Url url;
  std::string_view rest;
  if (!SplitScheme(text, url.scheme, rest) || url.scheme != "redis") {
    return Status::Error("must start with redis://");
  }
  const auto slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  if (const auto at = authority.rfind('@'); at != std::string_view::npos) {
    const auto userinfo = authority.substr(0, at);
    authority = authority.substr(at + 1);
    const auto colon = userinfo.find(':');
    if (colon == std::string_view::npos) {
      url.password = std::string(userinfo);
    } else {
      url.user = std::string(userinfo.substr(0, colon));
      url.password = std::string(userinfo.substr(colon + 1));
    }
  }
  if (Status s = ParseAuthority(authority, DefaultPort(url.scheme), url); !s.ok()) return s;
  if (slash != std::string_view::npos && slash + 1 < rest.size()) {
    const auto db = rest.substr(slash + 1);
    int value = 0;
    const auto [end, ec] = std::from_chars(db.data(), db.data() + db.size(), value);
    if (ec != std::errc() || end != db.data() + db.size() || value < 0) {
      return Status::Error("the database after '/' must be a number, like redis://host:6379/0");
    }
    url.database = value;
  }
  return url;
}

std::string RedactedUrl(std::string_view text) {
  std::string scheme;
  std::string_view rest = text;
  if (!SplitScheme(text, scheme, rest)) rest = text;  // no scheme: the whole text
  const std::size_t start = text.size() - rest.size();
  const std::size_t at = rest.rfind('@');
  if (at == std::string_view::npos) return std::string(text);
  const std::size_t colon = rest.substr(0, at).find(':');
  const std::size_t hidden = colon == std::string_view::npos ? 0 : colon + 1;
  return std::string(text.substr(0, start + hidden)) + "***" + std::string(rest.substr(at));
}

}  // namespace tp
