#include "api/purchase_routes.h"

#include <utility>

#include "api/http_json.h"
#include "api/purchase_json.h"

namespace tp::api {

void PurchaseRoutes::AddTo(Router& router) {
  router.Add("POST", "/v1/purchases",
             [this](const HttpRequest& req, const RouteParams&, HttpRespond respond) {
               if (auto closed = closed_()) return respond(std::move(*closed));
               ParsedPurchases parsed = ParsePurchases(req.body, *context_.rules);
               if (parsed.error) {
                 const PurchaseBodyError& e = *parsed.error;
                 return respond(JsonResponse(
                     400, {{"error", e.error},
                           {"index", e.index ? Json(*e.index) : Json(nullptr)},
                           {"field", e.field.empty() ? Json(nullptr) : Json(e.field)}}));
               }
               submit_(std::move(parsed.items), std::move(respond));
             });
}

}  // namespace tp::api
