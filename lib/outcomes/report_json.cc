#include "outcomes/report_json.h"

namespace tp {
namespace {

using Json = nlohmann::ordered_json;

Json Maybe(const std::optional<double>& v) { return v ? Json(*v) : Json(nullptr); }

}  // namespace

Json ReportJson(const OutcomeReport& report) {
  const ReportOptions& o = report.options();
  Json rows = Json::array();
  if (o.by == ReportBy::kTier || o.by == ReportBy::kProduct) {
    for (const auto& [key, r] : report.purchase_rows()) {
      rows.push_back({{"key", key},
                      {"purchases", r.purchases},
                      {"open", r.open},
                      {"trust_open", r.trust_open},
                      {"trust_built", r.trust_built},
                      {"trust_rate", Maybe(r.TrustRate())},
                      {"repurchased", r.repurchased},
                      {"repurchase_rate", Maybe(r.RepurchaseRate())},
                      {"median_days_to_repurchase", Maybe(r.MedianDaysToRepurchase())}});
    }
  } else {
    for (const auto& [key, r] : report.fire_rows()) {
      rows.push_back({{"key", key},
                      {"fired", r.fired},
                      {"engaged", r.engaged},
                      {"engagement_rate", Maybe(r.EngagementRate())},
                      {"repurchases", r.repurchases},
                      {"revenue", r.revenue}});
    }
  }
  return {{"as_of", FormatRfc3339(o.as_of, UtcZone())},
          {"from", FormatRfc3339(o.from, UtcZone())},
          {"to", FormatRfc3339(o.to, UtcZone())},
          {"by", std::string(ReportByName(o.by))},
          {"rows", std::move(rows)}};
}

}  // namespace tp
