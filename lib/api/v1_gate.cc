#include "api/v1_gate.h"

#include "api/auth.h"
#include "api/http_json.h"

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

std::optional<HttpResponse> CheckV1(const HttpRequest& req, std::span<const std::string> tokens) {
  if (!IsV1(req.target)) return std::nullopt;
  if (!tokens.empty() && !BearerAuthorized(req.authorization, tokens)) {
    HttpResponse r = ErrorResponse(401, req.authorization.empty()
                                            ? "this API needs an Authorization: Bearer token"
                                            : "the bearer token is not valid");
    r.headers.emplace_back("WWW-Authenticate", R"(Bearer realm="touchpoint")");
    return r;
  }
  if (req.method == "POST" && !req.body.empty() && !IsJson(req.content_type)) {
    return ErrorResponse(415,
                         "Content-Type must be application/json, got '" + req.content_type + "'");
  }
  return std::nullopt;
}

}  // namespace tp::api
