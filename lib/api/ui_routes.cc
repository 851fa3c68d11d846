#include "api/ui_routes.h"

#include <array>

#include "api/http_json.h"
#include "web/assets.h"

namespace tp::api {
namespace {

// What /ui/ serves, by the name in its address.
constexpr std::array<std::string_view, 5> kUiFiles = {"ui.html", "ui.js", "common.js",
                                                      "touchpoint.css", "chart.min.js"};

HttpResponse UiFile(std::string_view name) {
  const Asset* asset = nullptr;
  for (std::string_view allowed : kUiFiles) {
    if (allowed == name) asset = FindAsset(name);
  }
  if (asset == nullptr) return ErrorResponse(404, "no such file in /ui/");
  HttpResponse r;
  r.status = 200;
  r.body = std::string(asset->body);
  r.content_type = std::string(asset->content_type);
  r.headers = {{"Content-Security-Policy", kUiContentSecurityPolicy},
               {"X-Content-Type-Options", "nosniff"},
               {"Referrer-Policy", "no-referrer"},
               // The files change with the binary: ask each time.
               {"Cache-Control", "no-cache"}};
  return r;
}

}  // namespace

void AddUiRoutes(Router& router) {
  // The router sees "/ui" and "/ui/" alike: the page is served at the
  // second only, so that its relative addresses resolve under /ui/.
  router.Add("GET", "/ui", [](const HttpRequest& req, const RouteParams&, HttpRespond respond) {
    const std::string_view path = std::string_view(req.target).substr(0, req.target.find('?'));
    if (path == "/ui/") return respond(UiFile("ui.html"));
    HttpResponse r;
    r.status = 308;
    r.content_type = "text/plain; charset=utf-8";
    r.body = "the status page is at /ui/\n";
    r.headers = {{"Location", "ui/"}};
    respond(std::move(r));
  });
  router.Add("GET", "/ui/{file}",
             [](const HttpRequest&, const RouteParams& params, HttpRespond respond) {
               respond(UiFile(params[0]));
             });
}

}  // namespace tp::api
