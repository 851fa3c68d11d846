// A buyer's routes (docs/api.md): GET /v1/buyers/{buyer} (the last
// purchases, `?purchases=N`, their touchpoints and histories), POST /v1/buyers/{buyer}/opt-out and
// /opt-in. Called on the daemon's loop; opt-outs and opt-ins are written
// with the ingest groups (daemon/ingest_batcher.h), which take the buyer's
// turn off the loop.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>

#include "api/route_context.h"
#include "api/router.h"
#include "http/server.h"
#include "store/report_store.h"

namespace tp::api {

// A timeline's purchases: by default, and at most. A buyer with 10,000
// purchases (one id for walk-in sales) held the loop 1.2 s and had an
// answer of 29 MB; 1,000 of them still held it 150 ms.
inline constexpr std::int64_t kDefaultPurchasesShown = 100;
inline constexpr std::int64_t kMaxPurchasesShown = 500;

class BuyerRoutes {
 public:
  // Records the buyer's opt-out (or opt-in) and answers it:
  // {"buyer_id", "opted_out", and for an opt-out "suppressed"}.
  using SubmitOptChange =
      std::function<void(std::string buyer_id, bool opt_out, HttpRespond respond)>;

  BuyerRoutes(const RouteContext& context, ReportStore& reports, SubmitOptChange opt_change)
      : context_(context), reports_(reports), opt_change_(std::move(opt_change)) {}

  void AddTo(Router& router);

 private:
  HttpResponse Get(const std::string& buyer, std::string_view target);
  // Whether `id`, though not an id ingest takes today, names a recorded
  // buyer (one recorded before ids were checked); not when the store
  // cannot say.
  StatusOr<bool> Known(std::string_view id);

  const RouteContext& context_;
  ReportStore& reports_;
  SubmitOptChange opt_change_;
};

}  // namespace tp::api
