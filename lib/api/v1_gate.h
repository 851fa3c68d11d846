// What every /v1 request passes before its route: the bearer token when
// the config has tokens (401 with WWW-Authenticate; docs/api.md,
// "Authentication"), and a JSON body for a POST that has one (415).
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "http/server.h"

namespace tp::api {

// Whether `target` (path and query) is under /v1/.
bool IsV1(std::string_view target);
// Whether `target` is the purchases ingest route, /v1/purchases.
bool IsPurchases(std::string_view target);

// For a request that changes something (not GET or HEAD): what says a
// browser sent it from another site's page (Sec-Fetch-Site other than
// same-origin or none; without it, as over plain HTTP to another host than
// localhost, an Origin that is neither the Host's nor X-Forwarded-Host's),
// or nullopt. Such a page can send a POST without a body, which needs no
// CORS preflight, to a daemon on loopback; a program sends neither header.
std::optional<std::string> CrossSite(const HttpRequest& req);

// What of CheckV1() needs no body: the cross-site check and the token. The
// server asks it before it reads a body (HttpServer::SetHeaderCheck).
std::optional<HttpResponse> CheckV1Header(const HttpRequest& req,
                                          std::span<const std::string> tokens);

// The refusal for a /v1 request that may not reach its route, or nullopt:
// a cross-site request (403, before the token: CrossSite()), a missing or
// wrong token (401), a POST body that is not JSON (415). `tokens`: the
// config's auth tokens (none: no token needed).
std::optional<HttpResponse> CheckV1(const HttpRequest& req, std::span<const std::string> tokens);

}  // namespace tp::api
