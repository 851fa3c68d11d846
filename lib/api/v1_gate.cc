#include "api/v1_gate.h"

#include <cctype>

#include "api/auth.h"
#include "api/http_json.h"
#include "core/text.h"

namespace tp::api {
namespace {

std::vector<std::string_view> PathSegments(std::string_view target) {
  return Segments(target.substr(0, target.find('?')));
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
  const auto lower = [](std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
  };
  // The Host the browser sent, or the one a proxy in front says it had (a
  // page cannot send X-Forwarded-Host to another site without a preflight,
  // which this daemon never allows).
  const std::string origin = lower(req.origin);
  for (const std::string& name : {req.host, req.forwarded_host}) {
    const std::string host = lower(name);
    if (!host.empty() && (origin == "http://" + host || origin == "https://" + host))
      return std::nullopt;
  }
  return "Origin: " + req.origin;
}

std::optional<HttpResponse> CheckV1Header(const HttpRequest& req,
                                          std::span<const std::string> tokens) {
  if (!IsV1(req.target)) return std::nullopt;
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

std::optional<HttpResponse> CheckV1(const HttpRequest& req, std::span<const std::string> tokens) {
  if (auto refused = CheckV1Header(req, tokens)) return refused;
  if (!IsV1(req.target)) return std::nullopt;
  if (req.method == "POST" && !req.body.empty() && !IsJson(req.content_type)) {
    return ErrorResponse(415,
                         "Content-Type must be application/json, got '" + req.content_type + "'");
  }
  return std::nullopt;
}

}  // namespace tp::api
