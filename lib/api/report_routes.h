// GET /v1/reports/outcomes (docs/api.md, docs/outcomes.md): the query
// checked, the report computed off the loop (the StoreReader's thread
// streams the file), the answer sent from the loop. One at a time: another
// request meanwhile is a 503 with Retry-After.
#pragma once

// Boost 1.74's Asio needs <utility> before it under C++20.
#include <utility>
// (keep the blank line above: clang-format must not reorder this include)

#include <boost/asio/io_context.hpp>
#include <functional>

#include "api/route_context.h"
#include "api/router.h"
#include "outcomes/outcomes.h"
#include "store/outcome_rows.h"

namespace tp::api {

class ReportRoutes {
 public:
  using Done = std::function<void(StatusOr<OutcomeReport>)>;
  // Computes the report (StoreReader::Outcomes); `done` may run on another
  // thread.
  using Compute = std::function<void(OutcomeQuery query, Done done)>;

  ReportRoutes(const RouteContext& context, boost::asio::io_context& io, Compute compute)
      : context_(context), io_(io), compute_(std::move(compute)) {}

  void AddTo(Router& router);

 private:
  void Outcomes(const HttpRequest& req, HttpRespond respond);

  const RouteContext& context_;
  boost::asio::io_context& io_;
  Compute compute_;
  // One report at a time: it runs on threads and connections of its own
  // (one per core, up to four), which more at once would share.
  bool computing_ = false;
};

}  // namespace tp::api
