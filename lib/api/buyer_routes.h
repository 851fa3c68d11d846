// A buyer's routes (docs/api.md): GET /v1/buyers/{buyer} (purchases,
// touchpoints and their histories), POST /v1/buyers/{buyer}/opt-out and
// /opt-in. Called on the daemon's loop.
#pragma once

#include <string>

#include "api/route_context.h"
#include "api/router.h"
#include "scheduler/scheduler.h"
#include "store/report_store.h"

namespace tp::api {

class BuyerRoutes {
 public:
  BuyerRoutes(const RouteContext& context, ReportStore& reports, Scheduler& scheduler)
      : context_(context), reports_(reports), scheduler_(scheduler) {}

  void AddTo(Router& router);

 private:
  HttpResponse Get(const std::string& buyer);
  HttpResponse SetOptOut(const std::string& buyer, bool opt_out);
  // Whether `id`, though not an id ingest takes today, names a recorded
  // buyer (one recorded before ids were checked).
  bool Known(std::string_view id);

  const RouteContext& context_;
  ReportStore& reports_;
  Scheduler& scheduler_;
};

}  // namespace tp::api
