// POST /v1/purchases (docs/api.md): the body checked completely
// (api/purchase_json.h), then handed to the group commit that records it and
// answers. Called on the daemon's loop.
#pragma once

#include <functional>
#include <optional>
#include <vector>

#include "api/route_context.h"
#include "api/router.h"
#include "core/model.h"

namespace tp::api {

class PurchaseRoutes {
 public:
  // The answer while no purchases are taken at all (stopping), or nullopt.
  using Closed = std::function<std::optional<HttpResponse>()>;
  // Records a request's purchases and answers it (daemon/ingest_batcher.h).
  using Submit = std::function<void(std::vector<Purchase> items, HttpRespond respond)>;

  PurchaseRoutes(const RouteContext& context, Closed closed, Submit submit)
      : context_(context), closed_(std::move(closed)), submit_(std::move(submit)) {}

  void AddTo(Router& router);

 private:
  const RouteContext& context_;
  Closed closed_;
  Submit submit_;
};

}  // namespace tp::api
