// The dead letters' routes (docs/webhooks.md): GET /v1/dead-letters,
// POST /v1/dead-letters/replay (all, or one sink's) and
// POST /v1/dead-letters/{id}/replay. Called on the daemon's loop.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
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
  // `later`: runs a function on the loop once what waits there has run
  // (a replay of them all goes in steps, the loop's other work between).
  using Later = std::function<void(std::function<void()>)>;
  DeadLetterRoutes(const RouteContext& context, OutboxStore& outbox, std::function<void()> wake,
                   Later later)
      : context_(context), outbox_(outbox), wake_(std::move(wake)), later_(std::move(later)) {}

  // Dead letters put back in one step of a replay of them all.
  static constexpr int kReplayStep = 1000;

  void AddTo(Router& router);
  // The daemon stops: a replay of them all under way answers after the
  // step in hand, with what it replayed (the same request replays the
  // rest).
  void Stop() { stopping_ = true; }

 private:
  bool IsPushSink(std::string_view name) const;
  HttpResponse List(std::string_view target);
  HttpResponse ReplayOne(std::string_view id_text);
  // Which dead letters must be said: {"all": true}, or {"sink": NAME} for
  // one sink's. A bare POST replays nothing.
  void ReplayAll(const std::string& body, HttpRespond respond);
  struct Replaying {
    std::string sink;  // empty: every sink's
    Instant dead_by;   // the replay's start: what dies later is not replayed
    std::int64_t after = 0;
    std::int64_t replayed = 0;
    HttpRespond respond;
  };
  // One step of ReplayAll, then the next, later, until one finds none.
  void ReplayStep(const std::shared_ptr<Replaying>& r);

  const RouteContext& context_;
  OutboxStore& outbox_;
  std::function<void()> wake_;
  Later later_;
  bool stopping_ = false;
};

}  // namespace tp::api
