#include "api/v1_gate.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>

#include "api/auth.h"
#include "api/http_json.h"
#include "core/text.h"

namespace tp::api {
namespace {

std::vector<std::string_view> PathSegments(std::string_view target) {
  return Segments(target.substr(0, target.find('?')));
}

// An IPv6 address, with a zone ("%25eth0" in a URL, "%eth0") or not.
bool IsIpv6(std::string_view text) {
  const auto percent = text.find('%');
  if (percent != std::string_view::npos) {
    const std::string_view zone = text.substr(percent + 1);
    if (zone.empty() || !std::all_of(zone.begin(), zone.end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
        })) {
      return false;
    }
  }
  const std::string address(text.substr(0, percent));
  in6_addr v6{};
  return ::inet_pton(AF_INET6, address.c_str(), &v6) == 1;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// The names of an X-Forwarded-Host: proxies in a chain each add theirs,
// after a comma or on a line of its own (the server joins those).
std::vector<std::string_view> ForwardedHosts(std::string_view value) {
  std::vector<std::string_view> names;
  while (!value.empty()) {
    const auto comma = value.find(',');
    if (auto name = Trim(value.substr(0, comma)); !name.empty()) names.push_back(name);
    value = comma == std::string_view::npos ? std::string_view() : value.substr(comma + 1);
  }
  return names;
}

// Empty, or ':' and a port's digits.
bool IsPortOrNothing(std::string_view text) {
  if (text.empty()) return true;
  return text.size() >= 2 && text.size() <= 6 && text[0] == ':' &&
         std::all_of(text.begin() + 1, text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Whether one Host (or X-Forwarded-Host) value names the daemon itself: an
// IP address, localhost, or one of `allowed_hosts` (ForeignHost()).
bool OwnHost(std::string_view value, std::span<const std::string> allowed_hosts) {
  const std::string host = AsciiLower(Trim(value));
  if (host.empty()) return false;
  if (host.front() == '[') {  // an IPv6 address, with or without a port
    const auto close = host.find(']');
    return close != std::string::npos && IsIpv6(std::string_view(host).substr(1, close - 1)) &&
           IsPortOrNothing(std::string_view(host).substr(close + 1));
  }
  // Without brackets (older clients' Host for an IPv6 address), with or
  // without a port: no name has two colons.
  if (std::count(host.begin(), host.end(), ':') >= 2) {
    const auto colon = host.rfind(':');
    return IsIpv6(host) || (IsIpv6(std::string_view(host).substr(0, colon)) &&
                            IsPortOrNothing(std::string_view(host).substr(colon)));
  }
  const auto colon = std::min(host.rfind(':'), host.size());
  if (!IsPortOrNothing(std::string_view(host).substr(colon))) return false;
  std::string name = host.substr(0, colon);
  if (!name.empty() && name.back() == '.') name.pop_back();  // (fully qualified)
  in_addr v4{};
  if (::inet_pton(AF_INET, name.c_str(), &v4) == 1) return true;
  if (name == "localhost" || name.ends_with(".localhost")) return true;
  return std::any_of(allowed_hosts.begin(), allowed_hosts.end(),
                     [&](const std::string& a) { return a == "*" || a == name; });
}

}  // namespace

bool IsV1(std::string_view target) {
  const auto parts = PathSegments(target);
  return !parts.empty() && parts[0] == "v1";
}

bool IsPurchases(std::string_view target) {
  const auto parts = PathSegments(target);
  return parts.size() == 2 && parts[0] == "v1" && parts[1] == "purchases";
}

std::size_t BodyLimit(const HttpRequest& req) {
  if (req.method != "POST") return kMaxOtherBody;
  const auto parts = PathSegments(req.target);
  if (parts.size() == 2 && parts[0] == "v1" && (parts[1] == "purchases" || parts[1] == "events")) {
    return kMaxIngestBody;
  }
  return kMaxOtherBody;
}

std::optional<std::string> CrossSite(const HttpRequest& req) {
  if (req.method == "GET" || req.method == "HEAD") return std::nullopt;
  if (!req.fetch_site.empty()) {
    if (req.fetch_site == "same-origin" || req.fetch_site == "none") return std::nullopt;
    return "Sec-Fetch-Site: " + req.fetch_site;
  }
  if (req.origin.empty()) return std::nullopt;  // not from a browser's page
  // The Host the browser sent, or the one a proxy in front says it had (a
  // page cannot send X-Forwarded-Host to another site without a preflight,
  // which this daemon never allows).
  const std::string origin = AsciiLower(req.origin);
  std::vector<std::string_view> names = ForwardedHosts(req.forwarded_host);
  names.emplace_back(req.host);
  for (std::string_view name : names) {
    const std::string host = AsciiLower(name);
    if (!host.empty() && (origin == "http://" + host || origin == "https://" + host))
      return std::nullopt;
  }
  return "Origin: " + req.origin;
}

std::optional<std::string> ForeignHost(const HttpRequest& req,
                                       std::span<const std::string> allowed_hosts) {
  if (!req.host.empty() && !OwnHost(req.host, allowed_hosts)) return req.host;
  for (std::string_view name : ForwardedHosts(req.forwarded_host)) {
    if (!OwnHost(name, allowed_hosts)) return req.forwarded_host;
  }
  return std::nullopt;
}

std::optional<HttpResponse> CheckV1Header(const HttpRequest& req,
                                          std::span<const std::string> tokens,
                                          std::span<const std::string> allowed_hosts) {
  if (!IsV1(req.target)) return std::nullopt;
  if (tokens.empty()) {
    if (auto host = ForeignHost(req, allowed_hosts)) {
      return ErrorResponse(
          403, "Host '" + Excerpt(*host) +
                   "' is refused: without auth, /v1/ answers only requests to an IP address, "
                   "localhost or a name in http.allowed_hosts (a page of another site could "
                   "have made its own name point here); add the name there, or turn auth on");
    }
  }
  if (auto from = CrossSite(req)) {
    return ErrorResponse(403, "a request from another site's page is refused (" + Excerpt(*from) +
                                  "); call the API from a program");
  }
  if (!tokens.empty() && !BearerAuthorized(req.authorization, tokens)) {
    HttpResponse r = ErrorResponse(401, req.authorization.empty()
                                            ? "this API needs an Authorization: Bearer token"
                                            : "the bearer token is not valid");
    r.headers.emplace_back("WWW-Authenticate", R"(Bearer realm="touchpoint")");
    return r;
  }
  return std::nullopt;
}

std::optional<HttpResponse> CheckV1(const HttpRequest& req, std::span<const std::string> tokens,
                                    std::span<const std::string> allowed_hosts) {
  if (auto refused = CheckV1Header(req, tokens, allowed_hosts)) return refused;
  if (!IsV1(req.target)) return std::nullopt;
  if (req.method == "POST" && !req.body.empty() && !IsJson(req.content_type)) {
    return ErrorResponse(415,
                         "Content-Type must be application/json, got '" + req.content_type + "'");
  }
  return std::nullopt;
}

}  // namespace tp::api
