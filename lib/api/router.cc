#include "api/router.h"

#include <utility>

#include "api/http_json.h"

namespace tp::api {
namespace {

bool IsParam(std::string_view segment) {
  return segment.size() >= 2 && segment.front() == '{' && segment.back() == '}';
}

}  // namespace

void Router::Add(std::string method, std::string_view pattern, RouteHandler handler) {
  Entry e{std::move(method), {}, std::move(handler)};
  for (std::string_view s : Segments(pattern)) e.segments.emplace_back(s);
  routes_.push_back(std::move(e));
}

void Router::Route(const HttpRequest& req, HttpRespond respond) const {
  const std::string_view target = req.target;
  const auto parts = Segments(target.substr(0, target.find('?')));
  // Both sides string_views: "GET" : req.method would make a temporary
  // std::string that dies at the semicolon.
  const std::string_view method =
      req.method == "HEAD" ? std::string_view("GET") : std::string_view(req.method);
  std::string allow;
  RouteParams params;
  for (const Entry& e : routes_) {
    if (e.segments.size() != parts.size()) continue;
    params.clear();
    bool match = true;
    for (std::size_t i = 0; i < parts.size() && match; ++i) {
      if (IsParam(e.segments[i])) {
        params.push_back(parts[i]);
      } else {
        match = e.segments[i] == parts[i];
      }
    }
    if (!match) continue;
    if (e.method == method) return e.handler(req, params, std::move(respond));
    if (allow.find(e.method) == std::string::npos) allow += (allow.empty() ? "" : ", ") + e.method;
  }
  if (allow.empty()) return respond(ErrorResponse(404, "no such endpoint"));
  HttpResponse r =
      ErrorResponse(405, "method " + req.method + " not allowed here (use " + allow + ")");
  r.headers.emplace_back("Allow", allow);
  respond(std::move(r));
}

}  // namespace tp::api
