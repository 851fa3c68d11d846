#include "api/ingest_routes.h"

#include <utility>

#include "api/event_json.h"
#include "api/http_json.h"
#include "api/purchase_json.h"

namespace tp::api {
namespace {

HttpResponse Refused(const BodyError& e) {
  return JsonResponse(400, {{"error", e.error},
                            {"index", e.index ? Json(*e.index) : Json(nullptr)},
                            {"field", e.field.empty() ? Json(nullptr) : Json(e.field)}});
}

}  // namespace

void IngestRoutes::AddTo(Router& router) {
  router.Add("POST", "/v1/purchases",
             [this](const HttpRequest& req, const RouteParams&, HttpRespond respond) {
               if (auto closed = closed_()) return respond(std::move(*closed));
               ParsedPurchases parsed = ParsePurchases(req.body, *context_.rules);
               if (parsed.error) return respond(Refused(*parsed.error));
               purchases_(std::move(parsed.items), std::move(respond));
             });
  router.Add("POST", "/v1/events",
             [this](const HttpRequest& req, const RouteParams&, HttpRespond respond) {
               if (auto closed = closed_()) return respond(std::move(*closed));
               ParsedEvents parsed = ParseEvents(req.body, *context_.rules);
               if (parsed.error) return respond(Refused(*parsed.error));
               events_(std::move(parsed.items), std::move(respond));
             });
}

}  // namespace tp::api
