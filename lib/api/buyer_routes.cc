#include "api/buyer_routes.h"

#include <optional>
#include <utility>

#include "api/http_json.h"
#include "core/text.h"

namespace tp::api {
namespace {

const Zone* ZoneOrUtc(const std::string& name) {
  const Zone* zone = FindZone(name);
  return zone != nullptr ? zone : UtcZone();
}

Json BuyerJson(const BuyerReport& r) {
  Json purchases = Json::array();
  for (const PurchaseRecord& p : r.purchases) {
    const Zone* zone = ZoneOrUtc(p.zone);
    purchases.push_back({
        {"order_id", p.purchase.order_id},
        {"product", p.purchase.product},
        {"quantity", p.purchase.quantity},
        {"amount", p.purchase.amount},
        {"purchased_at", FormatRfc3339(p.purchase.purchased_at, zone)},
        {"timezone", p.zone},
        {"tier", p.tier},
        {"attributes",
         p.purchase.attributes.empty() ? Json::object() : Json::parse(p.purchase.attributes)},
        {"received_at", FormatRfc3339(p.received_at, UtcZone())},
    });
  }
  Json touchpoints = Json::array();
  for (const TouchpointRecord& t : r.touchpoints) {
    const Zone* zone = ZoneOrUtc(t.zone);
    Json history = Json::array();
    for (const Transition& h : t.history) {
      history.push_back({{"at", FormatRfc3339(h.at, zone)},
                         {"status", std::string(StateName(h.state))},
                         {"reason", h.reason}});
    }
    Json item = {
        {"id", t.id},
        {"buyer_id", r.buyer_id},
        {"order_id", t.order_id},
        {"cadence", t.cadence},
        {"step", t.step},
        {"topic", t.topic},
        {"tier", t.tier},
        {"product", t.product},
        {"due_at", FormatRfc3339(t.due_at, zone)},
        {"fire_at", t.fire_at ? Json(FormatRfc3339(*t.fire_at, zone)) : Json(nullptr)},
        {"status", std::string(StateName(t.state))},
    };
    if (t.state == TouchpointState::kPending) {
      item["next_at"] = FormatRfc3339(t.next_at, zone);
      item["reason"] = t.next_at == t.due_at
                           ? "waiting until due_at"
                           : "waiting until " + FormatRfc3339(t.next_at, zone) +
                                 (t.history.empty() ? ": due outside the send window"
                                                    : " (" + t.history.back().reason + ")");
    } else if (t.state != TouchpointState::kFired) {
      item["reason"] = t.reason;
    }
    item["history"] = std::move(history);
    touchpoints.push_back(std::move(item));
  }
  return {{"buyer_id", r.buyer_id},
          {"tier", r.tier.empty() ? Json(nullptr) : Json(r.tier)},
          {"opted_out", r.opted_out},
          {"purchases", std::move(purchases)},
          {"earlier_purchases", r.earlier_purchases},
          {"touchpoints", std::move(touchpoints)}};
}

}  // namespace

void BuyerRoutes::AddTo(Router& router) {
  // The id in the path: the same rules as a purchase's buyer_id, so no one
  // else can exist, but for buyers recorded before ids were checked
  // (control characters were let in then): they can still be looked up and
  // opted out.
  auto with_buyer = [this](auto then) {
    return [this, then](const HttpRequest& req, const RouteParams& params, HttpRespond respond) {
      auto buyer = PercentDecode(params[0]);
      if (!buyer) return respond(ErrorResponse(400, "malformed percent-encoding in the buyer id"));
      if (auto problem = IdProblem(*buyer)) {
        auto known = Known(*buyer);
        if (!known.ok()) {
          return respond(context_.store_failed(known.status(), "cannot look the buyer up"));
        }
        if (!*known) {
          return respond(FieldError(400, "the buyer id in the path " + *problem, "buyer_id"));
        }
      }
      then(std::move(*buyer), req, std::move(respond));
    };
  };
  router.Add("GET", "/v1/buyers/{buyer}",
             with_buyer([this](const std::string& buyer, const HttpRequest& req,
                               HttpRespond respond) { respond(Get(buyer, req.target)); }));
  router.Add("POST", "/v1/buyers/{buyer}/opt-out",
             with_buyer([this](std::string buyer, const HttpRequest&, HttpRespond respond) {
               opt_change_(std::move(buyer), true, std::move(respond));
             }));
  router.Add("POST", "/v1/buyers/{buyer}/opt-in",
             with_buyer([this](std::string buyer, const HttpRequest&, HttpRespond respond) {
               opt_change_(std::move(buyer), false, std::move(respond));
             }));
}

StatusOr<bool> BuyerRoutes::Known(std::string_view id) {
  if (id.empty() || id.size() > kMaxIdBytes || InvalidUtf8At(id)) return false;
  auto report = reports_.GetBuyer(id, 0);
  if (!report.ok()) return report.status();
  return report->has_value();
}

HttpResponse BuyerRoutes::Get(const std::string& buyer, std::string_view target) {
  std::int64_t shown = kDefaultPurchasesShown;
  if (auto v = QueryParam(target, "purchases")) {
    auto n = WholeNumber(*v);
    if (!n || *n < 1 || *n > kMaxPurchasesShown) {
      return FieldError(
          400, "purchases must be an integer from 1 to " + std::to_string(kMaxPurchasesShown),
          "purchases");
    }
    shown = *n;
  }
  auto report = reports_.GetBuyer(buyer, shown);
  if (!report.ok()) return context_.store_failed(report.status(), "cannot read the buyer");
  if (!report->has_value()) return ErrorResponse(404, "unknown buyer '" + buyer + "'");
  return JsonResponse(200, BuyerJson(**report));
}

}  // namespace tp::api
