// What every /v1 request passes before its route, in-process.
#include "api/v1_gate.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace tp::api {
namespace {

using ::testing::HasSubstr;

HttpRequest Request(std::string method, std::string target, std::string content_type = "",
                    std::string authorization = "", std::string body = "") {
  return {std::move(method), std::move(target), std::move(content_type), std::move(authorization),
          std::move(body)};
}

const std::vector<std::string> kTokens = {"s3cret-token-for-tests-0123456789"};

TEST(V1GateTest, TokensGuardOnlyV1) {
  auto missing = CheckV1(Request("GET", "/v1/buyers/lin"), kTokens);
  ASSERT_TRUE(missing.has_value());
  EXPECT_EQ(missing->status, 401);
  EXPECT_THAT(missing->body, HasSubstr("needs an Authorization: Bearer token"));
  ASSERT_EQ(missing->headers.size(), 1u);
  EXPECT_EQ(missing->headers[0].first, "WWW-Authenticate");

  auto wrong = CheckV1(Request("GET", "/v1/buyers/lin", "", "Bearer guess"), kTokens);
  ASSERT_TRUE(wrong.has_value());
  EXPECT_EQ(wrong->status, 401);
  EXPECT_THAT(wrong->body, HasSubstr("not valid"));

  EXPECT_FALSE(
      CheckV1(Request("GET", "/v1/buyers/lin", "", "bearer " + kTokens[0]), kTokens).has_value());
  EXPECT_FALSE(CheckV1(Request("GET", "/healthz"), kTokens).has_value());
  EXPECT_FALSE(CheckV1(Request("GET", "/metrics?x=/v1/"), kTokens).has_value());
  EXPECT_FALSE(CheckV1(Request("GET", "/v1/buyers/lin"), {}).has_value());  // no auth configured
}

TEST(V1GateTest, APostWithABodyMustBeJson) {
  auto form = CheckV1(Request("POST", "/v1/purchases", "text/plain", "", "order_id=1"), {});
  ASSERT_TRUE(form.has_value());
  EXPECT_EQ(form->status, 415);
  EXPECT_EQ(nlohmann::json::parse(form->body)["error"],
            "Content-Type must be application/json, got 'text/plain'");
  EXPECT_FALSE(
      CheckV1(Request("POST", "/v1/purchases", "application/json; charset=utf-8", "", "{}"), {})
          .has_value());
  // No body, nothing to judge (a replay of one dead letter, an opt-out).
  EXPECT_FALSE(CheckV1(Request("POST", "/v1/buyers/lin/opt-out"), {}).has_value());
  // The token is checked first: a stranger learns nothing of the route.
  EXPECT_EQ(CheckV1(Request("POST", "/v1/purchases", "text/plain", "", "x"), kTokens)->status, 401);
}

// A page of another site may POST without a body (no CORS preflight) to a
// daemon on loopback: refused, whatever the route; the status page's own
// requests and programs' (which send neither header) pass.
TEST(V1GateTest, RefusesChangesSentFromAnotherSitesPage) {
  auto from = [](std::string method, std::string fetch_site, std::string origin) {
    HttpRequest r = Request(std::move(method), "/v1/buyers/lin/opt-out");
    r.host = "127.0.0.1:8787";
    r.fetch_site = std::move(fetch_site);
    r.origin = std::move(origin);
    return CheckV1(r, {});
  };
  for (const char* site : {"cross-site", "same-site"}) {
    auto refused = from("POST", site, "");
    ASSERT_TRUE(refused.has_value()) << site;
    EXPECT_EQ(refused->status, 403);
    EXPECT_THAT(refused->body, HasSubstr(site));
  }
  // A browser without Sec-Fetch-Site: the Origin decides.
  EXPECT_EQ(from("POST", "", "https://evil.example")->status, 403);
  EXPECT_EQ(from("POST", "", "null")->status, 403);
  EXPECT_EQ(from("POST", "", "http://127.0.0.1:8788")->status, 403);
  // Refused before the token is looked at.
  HttpRequest with_token = Request("POST", "/v1/buyers/lin/opt-out", "", "Bearer " + kTokens[0]);
  with_token.fetch_site = "cross-site";
  EXPECT_EQ(CheckV1(with_token, kTokens)->status, 403);

  EXPECT_FALSE(from("POST", "same-origin", "http://127.0.0.1:8787").has_value());
  EXPECT_FALSE(from("POST", "none", "").has_value());  // typed in, or a bookmark
  EXPECT_FALSE(from("POST", "", "http://127.0.0.1:8787").has_value());
  EXPECT_FALSE(from("POST", "", "HTTP://127.0.0.1:8787").has_value());
  EXPECT_FALSE(from("POST", "", "").has_value());  // curl, a program
  // Reading is not refused: another site's page cannot read the answer.
  EXPECT_FALSE(from("GET", "cross-site", "https://evil.example").has_value());
}

// Without auth, a page of another site that made its own name resolve to
// the daemon (DNS rebinding) is one origin with it: /v1/ answers only a
// Host that is an address, localhost or an allowed name.
TEST(V1GateTest, WithoutAuthOnlyTheDaemonsOwnHostsReachV1) {
  const std::vector<std::string> allowed = {"touchpoint.internal"};
  auto to = [&](std::string host, std::span<const std::string> tokens = {}) {
    HttpRequest r =
        Request("GET", "/v1/buyers/lin", "", tokens.empty() ? "" : "Bearer " + tokens[0]);
    r.host = std::move(host);
    return CheckV1(r, tokens, allowed);
  };
  for (const char* host : {"127.0.0.1:8787", "127.0.0.1", "10.1.2.3:80", "[::1]:8787", "[::1]",
                           "localhost:8787", "LOCALHOST", "localhost.:8787", "app.localhost:3000",
                           "touchpoint.internal:8787", "Touchpoint.Internal", "::1:8787", "::1",
                           "[fe80::1%25eth0]:8787", "[::ffff:127.0.0.1]", ""}) {
    EXPECT_FALSE(to(host).has_value()) << host;
  }
  for (const char* host :
       {"evil.example:8787", "evil.example", "touchpoint.internal.evil.example",
        "localhost.evil.example", "127.0.0.1.evil.example", "[evil]:8787", "internal", "a:b:c",
        "[::1]evil.example", "[::1]:80:80", "1::2:evil", ":", "[", "[]", "127.0.0.1:junk",
        "localhost:80x", "[::1%]", "[::1%a:b]", "1::2%x:evil"}) {
    auto refused = to(host);
    ASSERT_TRUE(refused.has_value()) << host;
    EXPECT_EQ(refused->status, 403) << host;
    EXPECT_THAT(nlohmann::json::parse(refused->body)["error"].get<std::string>(),
                HasSubstr("Host '" + std::string(host) +
                          "' is refused: without auth, /v1/ answers only requests to an IP "
                          "address, localhost or a name in http.allowed_hosts"));
  }
  // Behind a proxy that rewrites Host to the daemon's address, the name
  // the page used comes as X-Forwarded-Host.
  HttpRequest proxied = Request("GET", "/v1/buyers/lin");
  proxied.host = "127.0.0.1:8787";
  proxied.forwarded_host = "evil.example";
  EXPECT_EQ(CheckV1(proxied, {}, allowed)->status, 403);
  proxied.forwarded_host = "touchpoint.internal";
  EXPECT_FALSE(CheckV1(proxied, {}, allowed).has_value());
  // Proxies in a chain: every name must pass.
  proxied.forwarded_host = "touchpoint.internal, 10.0.0.5:8787";
  EXPECT_FALSE(CheckV1(proxied, {}, allowed).has_value());
  proxied.forwarded_host = "touchpoint.internal, evil.example";
  EXPECT_EQ(CheckV1(proxied, {}, allowed)->status, 403);
  proxied.forwarded_host = "touchpoint.internal, ";
  EXPECT_FALSE(CheckV1(proxied, {}, allowed).has_value());
  // With auth the token guards it: a page cannot have it.
  EXPECT_FALSE(to("evil.example:8787", kTokens).has_value());
  // Outside /v1/, nothing to guard; "*" lets every name in.
  HttpRequest health = Request("GET", "/healthz");
  health.host = "evil.example";
  EXPECT_FALSE(CheckV1(health, {}, allowed).has_value());
  HttpRequest any = Request("POST", "/v1/buyers/lin/opt-out");
  any.host = "evil.example";
  EXPECT_EQ(CheckV1(any, {}, allowed)->status, 403);  // before the body is read
  EXPECT_EQ(CheckV1Header(any, {}, allowed)->status, 403);
  const std::vector<std::string> star = {"*"};
  EXPECT_FALSE(CheckV1(any, {}, star).has_value());
}

TEST(V1GateTest, TellsTheIngestRouteApart) {
  EXPECT_TRUE(IsPurchases("/v1/purchases"));
  EXPECT_TRUE(IsPurchases("/v1/purchases?x=1"));
  EXPECT_TRUE(IsPurchases("//v1//purchases/"));
  EXPECT_FALSE(IsPurchases("/v1/purchases/x"));
  EXPECT_FALSE(IsPurchases("/v2/purchases"));
  EXPECT_TRUE(IsV1("/v1"));
  EXPECT_FALSE(IsV1("/v10/x"));
  EXPECT_FALSE(IsV1("/"));
}

// Bodies of a megabyte or more only for the ingest routes, as the router
// matches them.
TEST(V1GateTest, OnlyTheIngestRoutesTakeLargeBodies) {
  const auto limit = [](std::string method, std::string target) {
    return BodyLimit(Request(std::move(method), std::move(target)));
  };
  EXPECT_EQ(limit("POST", "/v1/purchases"), kMaxIngestBody);
  EXPECT_EQ(limit("POST", "//v1/events/?x=1"), kMaxIngestBody);
  EXPECT_GT(kMaxIngestBody, kMaxOtherBody);
  EXPECT_EQ(limit("PUT", "/v1/purchases"), kMaxOtherBody);
  EXPECT_EQ(limit("POST", "/v1/queues/outbox/ack"), kMaxOtherBody);
  EXPECT_EQ(limit("POST", "/v1/events/x"), kMaxOtherBody);
  EXPECT_EQ(limit("POST", "/v2/purchases"), kMaxOtherBody);
}

}  // namespace
}  // namespace tp::api
