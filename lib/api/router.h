// The HTTP API's route table: a method and a path pattern per handler.
// A pattern's segments are literals or "{name}", which matches any one
// segment (as sent: still percent-encoded, the handler decodes it). GET
// routes answer HEAD too (the server sends no body). A path no pattern
// matches is 404 "no such endpoint"; one that matches with another method,
// 405 with Allow.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "http/server.h"

namespace tp::api {

// The "{name}" segments of the matched pattern, in order.
using RouteParams = std::vector<std::string_view>;
using RouteHandler =
    std::function<void(const HttpRequest& req, const RouteParams& params, HttpRespond respond)>;

class Router {
 public:
  // Adds a route; `pattern` is a path such as "/v1/buyers/{buyer}/opt-out".
  void Add(std::string method, std::string_view pattern, RouteHandler handler);
  // Answers `req` with its route's handler, or 404 / 405.
  void Route(const HttpRequest& req, HttpRespond respond) const;

 private:
  struct Entry {
    std::string method;
    std::vector<std::string> segments;  // "{...}" for a parameter
    RouteHandler handler;
  };
  std::vector<Entry> routes_;
};

}  // namespace tp::api
