// The dead letters' routes (docs/webhooks.md): GET /v1/dead-letters,
// POST /v1/dead-letters/replay (all, or one sink's) and
// POST /v1/dead-letters/{id}/replay. Called on the daemon's loop.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "api/route_context.h"
#include "api/router.h"
#include "store/outbox_store.h"

namespace tp::api {

inline constexpr int kDefaultDeadLetterLimit = 100;
inline constexpr int kMaxDeadLetterLimit = 1000;

class DeadLetterRoutes {
 public:
  // `wake`: tells the dispatcher that replayed letters wait in an outbox.
  DeadLetterRoutes(const RouteContext& context, OutboxStore& outbox, std::function<void()> wake)
      : context_(context), outbox_(outbox), wake_(std::move(wake)) {}

  void AddTo(Router& router);

 private:
  bool IsPushSink(std::string_view name) const;
  HttpResponse List(std::string_view target);
  HttpResponse ReplayOne(std::string_view id_text);
  // Which dead letters must be said: {"all": true}, or {"sink": NAME} for
  // one sink's. A bare POST replays nothing.
  HttpResponse ReplayAll(const std::string& body);

  const RouteContext& context_;
  OutboxStore& outbox_;
  std::function<void()> wake_;
};

}  // namespace tp::api
