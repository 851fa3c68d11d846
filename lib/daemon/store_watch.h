// Whether the store can take writes, as the daemon watches it: a SQLite
// file's disk (SpaceWatch, daemon/space_watch.h) or a PostgreSQL server
// that may be unreachable (DatabaseWatch, daemon/database_watch.h). While
// it cannot, the daemon refuses purchases (503 with Retry-After) and
// pauses firing; leases, acks and deliveries go on as far as they can.
//
// Not thread-safe: the daemon's loop only.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "api/http_json.h"
#include "core/status.h"
#include "http/server.h"

namespace tp {

class StoreWatch {
 public:
  virtual ~StoreWatch() = default;

  // Checks now, then keeps watching.
  virtual void Start() = 0;
  virtual void Stop() = 0;
  // Checks now; `failed`: a store call just failed as Unavailable.
  virtual void Check(bool failed = false) = 0;
  // Whether ingest and firing are paused.
  virtual bool paused() const = 0;
  // Why, for a 503's message and /healthz; empty when not paused.
  virtual std::string reason() const = 0;
  // /healthz's "storage" object: "state" and what the backend can say.
  virtual nlohmann::json Health() const = 0;

  // A store call failed: 503 with Retry-After when Unavailable (checked at
  // once, so the daemon stops taking on more as soon as the check says the
  // store cannot), else 500; `what` says what could not be done.
  HttpResponse StoreFailed(const Status& failed, const std::string& what) {
    if (failed.unavailable()) Check(true);
    return api::StoreFailed(failed, what);
  }
};

}  // namespace tp
