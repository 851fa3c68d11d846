#include "api/report_routes.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>

#include "api/http_json.h"
#include "outcomes/report_json.h"
#include "planner/planner.h"
#include "planner/purchase_check.h"

namespace tp::api {

void ReportRoutes::AddTo(Router& router) {
  router.Add("GET", "/v1/reports/outcomes",
             [this](const HttpRequest& req, const RouteParams&, HttpRespond respond) {
               Outcomes(req, std::move(respond));
             });
}

void ReportRoutes::Outcomes(const HttpRequest& req, HttpRespond respond) {
  ReportOptions options;
  options.windows = context_.rules->outcomes;
  options.as_of = context_.clock.Now();
  options.from = kMinPurchasedAt;
  options.to = kMaxPurchasedAt;
  for (auto [key, out] : {std::pair{"from", &options.from}, std::pair{"to", &options.to},
                          std::pair{"as_of", &options.as_of}}) {
    auto text = QueryParam(req.target, key);
    if (!text) continue;
    auto at = ParseRfc3339(*text);
    if (!at || *at < kMinPurchasedAt || *at > kMaxPurchasedAt) {
      return respond(FieldError(400,
                                std::string(key) +
                                    " must be an RFC 3339 time from 2000 to 2100, like "
                                    "2026-11-01T00:00:00+08:00 (in a query string, '+' is %2B)",
                                key));
    }
    *out = *at;
  }
  if (options.from >= options.to) {
    return respond(FieldError(400, "from must be before to", "from"));
  }
  if (auto by = QueryParam(req.target, "by")) {
    auto parsed = ParseReportBy(*by);
    if (!parsed) {
      return respond(FieldError(400, "by must be tier, product, cadence or topic", "by"));
    }
    options.by = *parsed;
  }
  // Computed on the report threads; answered on the loop (store_failed
  // reacts on the loop). The work guard keeps the loop running (at a stop
  // too) until then.
  if (computing_) {
    return respond(Unavailable("another outcomes report is being computed; try again shortly"));
  }
  computing_ = true;
  // The rules in force now, kept alive for the reader's thread.
  OutcomeQuery query;
  query.options = options;
  const std::shared_ptr<const Rules> rules = context_.rules.shared();
  for (const EngagementType& t : rules->engagement_types) {
    if (t.trust) query.trust_types.push_back(t.name);
  }
  query.runout = [rules](Instant at, std::int64_t quantity, const std::string& product,
                         const Zone* zone) {
    const int p = rules->ProductIndex(product);
    // A product the rules no longer have: its runout is unknown, so its
    // repurchase window is the purchase's instant (never repurchased).
    if (p < 0) return at;
    return Runout(at, quantity, rules->products[static_cast<std::size_t>(p)], zone);
  };
  compute_(std::move(query), [this, work = boost::asio::make_work_guard(io_),
                              respond =
                                  std::move(respond)](StatusOr<OutcomeReport> report) mutable {
    boost::asio::post(work.get_executor(), [this, respond = std::move(respond),
                                            report = std::move(report)]() mutable {
      computing_ = false;
      respond(report.ok() ? JsonResponse(200, ReportJson(*report))
                          : context_.store_failed(report.status(), "cannot compute the report"));
    });
    work.reset();
  });
}

}  // namespace tp::api
