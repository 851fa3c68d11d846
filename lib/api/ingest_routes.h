// POST /v1/purchases and POST /v1/events (docs/api.md): the body checked
// completely (api/purchase_json.h, api/event_json.h), then handed to the
// group commit that records it and answers. Called on the daemon's loop.
#pragma once

#include <functional>
#include <optional>
#include <vector>

#include "api/route_context.h"
#include "api/router.h"
#include "core/model.h"

namespace tp::api {

class IngestRoutes {
 public:
  // The answer while nothing is taken at all (stopping), or nullopt.
  using Closed = std::function<std::optional<HttpResponse>()>;
  // Records a request's items and answers it (daemon/ingest_batcher.h).
  using SubmitPurchases = std::function<void(std::vector<Purchase> items, HttpRespond respond)>;
  using SubmitEvents = std::function<void(std::vector<EngagementEvent> items, HttpRespond respond)>;

  IngestRoutes(const RouteContext& context, Closed closed, SubmitPurchases purchases,
               SubmitEvents events)
      : context_(context),
        closed_(std::move(closed)),
        purchases_(std::move(purchases)),
        events_(std::move(events)) {}

  void AddTo(Router& router);

 private:
  const RouteContext& context_;
  Closed closed_;
  SubmitPurchases purchases_;
  SubmitEvents events_;
};

}  // namespace tp::api
