// What every /v1 request passes before its route: the bearer token when
// the config has tokens (401 with WWW-Authenticate; docs/api.md,
// "Authentication"), and a JSON body for a POST that has one (415).
#pragma once

#include <cstddef>
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

// The largest bodies (past them, a 413). POST /v1/purchases and /v1/events:
// a request is written in one transaction, on SQLite on the daemon's loop,
// which 1,000 purchases hold for about 50 ms, plus 5 ms per MiB of
// attributes (300 ms at 32 MiB).
inline constexpr std::size_t kMaxIngestBody = 4 * 1024 * 1024;
// Every other route: none takes more than an ack's 10,000 receipts (about
// 400 KB), and each is parsed on the loop.
inline constexpr std::size_t kMaxOtherBody = 1024 * 1024;
// The largest body `req` may have, by its method and path, as the router
// matches it.
std::size_t BodyLimit(const HttpRequest& req);

// For a request that changes something (not GET or HEAD): what says a
// browser sent it from another site's page (Sec-Fetch-Site other than
// same-origin or none; without it, as over plain HTTP to another host than
// localhost, an Origin that is neither the Host's nor X-Forwarded-Host's),
// or nullopt. Such a page can send a POST without a body, which needs no
// CORS preflight, to a daemon on loopback; a program sends neither header.
std::optional<std::string> CrossSite(const HttpRequest& req);

// For a daemon without auth: the Host of a request that a page of another
// site may have sent after making its own name resolve to the daemon's
// address (DNS rebinding; to the browser the page and the daemon are then
// one origin, so it reads answers and sends changes alike), or nullopt.
// Passed: a Host that is an IP address, localhost or a name under
// .localhost (browsers resolve those themselves), or one of
// `allowed_hosts` (lowercase names, no port; "*": any); and no Host at all
// (HTTP/1.0: not a browser). An X-Forwarded-Host, when sent, must pass
// too: behind a proxy that rewrites Host to the daemon's address, it is
// the name the page used. (A page can add that header, but only to be
// refused.)
std::optional<std::string> ForeignHost(const HttpRequest& req,
                                       std::span<const std::string> allowed_hosts);

// What of CheckV1() needs no body: the host, cross-site and token checks.
// The server asks it before it reads a body (HttpServer::SetHeaderCheck).
std::optional<HttpResponse> CheckV1Header(const HttpRequest& req,
                                          std::span<const std::string> tokens,
                                          std::span<const std::string> allowed_hosts = {});

// The refusal for a /v1 request that may not reach its route, or nullopt:
// without tokens, a Host that is not the daemon's (403: ForeignHost()); a
// cross-site request (403, before the token: CrossSite()), a missing or
// wrong token (401), a POST body that is not JSON (415). `tokens`: the
// config's auth tokens (none: no token needed); `allowed_hosts`: its
// http.allowed_hosts.
std::optional<HttpResponse> CheckV1(const HttpRequest& req, std::span<const std::string> tokens,
                                    std::span<const std::string> allowed_hosts = {});

}  // namespace tp::api
