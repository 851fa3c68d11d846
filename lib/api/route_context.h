// What every group of routes takes from the daemon that serves them.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "config/rules.h"
#include "config/rules_in_force.h"
#include "core/clock.h"
#include "core/status.h"
#include "http/server.h"

namespace tp::api {

struct RouteContext {
  const Clock& clock;
  // The rules in force, read at each request: a reload swaps them.
  const RulesInForce& rules;
  // A store call failed: 503 with Retry-After when storage is full for now
  // (the daemon then stops taking on more), else 500; `what` says what
  // could not be done.
  std::function<HttpResponse(const Status& failed, const std::string& what)> store_failed;
};

}  // namespace tp::api
