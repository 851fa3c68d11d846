// Routes in-process: a route table with the context the daemon gives its
// routes (a failed store call answered as the daemon answers it: 503 with
// Retry-After for want of space, else 500), on a fake clock and the brief's
// rules with two push sinks added, no HTTP server and no database: each
// test hands the routes fakes of the storage interfaces they take.
#pragma once

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>

#include "api/http_json.h"
#include "api/route_context.h"
#include "api/router.h"
#include "config/rules_in_force.h"
#include "harness.h"

namespace tp::testing {

class RouteTest : public ::testing::Test {
 protected:
  static std::shared_ptr<const Rules> RouteRules() {
    std::string yaml(kBriefConfig);
    yaml += "  - {name: events, type: redis, url: \"redis://127.0.0.1:9/0\"}\n";
    yaml += "  - {name: crm, type: redis, url: \"redis://127.0.0.1:9/1\"}\n";
    return MustLoad(yaml);
  }

  // The answer to one request, once the io_context has run what the route
  // posted to it.
  HttpResponse Send(std::string method, std::string target, std::string body = "") {
    std::optional<HttpResponse> answer;
    router_.Route(
        HttpRequest{std::move(method), std::move(target), "application/json", "", std::move(body)},
        [&](HttpResponse r) { answer = std::move(r); });
    io_.restart();
    io_.run();
    EXPECT_TRUE(answer.has_value()) << "the route never answered";
    return answer.value_or(HttpResponse{0, ""});
  }

  static nlohmann::json Body(const HttpResponse& r) {
    return nlohmann::json::parse(r.body, nullptr, false);
  }
  static std::optional<std::string> Header(const HttpResponse& r, std::string_view name) {
    for (const auto& [key, value] : r.headers) {
      if (key == name) return value;
    }
    return std::nullopt;
  }

  boost::asio::io_context io_;
  FakeClock clock_{At("2026-11-01T10:00:00+08:00")};
  RulesInForce rules_{RouteRules()};
  api::RouteContext context_{clock_, rules_, [](const Status& failed, const std::string& what) {
                               if (failed.unavailable()) {
                                 return api::Unavailable(what + ": " + failed.message());
                               }
                               return api::ErrorResponse(500, what + ": " + failed.message());
                             }};
  api::Router router_;
};

}  // namespace tp::testing
