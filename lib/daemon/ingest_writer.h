// Writes a group of ingest requests (POST /v1/purchases, POST /v1/events,
// and a buyer's POST /v1/buyers/{id}/opt-out and /opt-in, which take the
// buyer's turn as purchases do) in one transaction, each request in a
// savepoint of its own so that a bad one rolls back alone
// (daemon/ingest_batcher.h groups them). What it returns is all the
// daemon's loop needs afterwards: an answer per request, the counts and
// what the scheduler decided (for the metrics, from a group that committed
// only), and whether a store call failed as Unavailable.
//
// Calls nothing of the daemon's: it runs on the loop over the loop's store
// (SQLite), or on a thread of its own over a session of its own
// (PostgreSQL). Not thread-safe: one thread at a time.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "config/rules_in_force.h"
#include "core/clock.h"
#include "core/model.h"
#include "daemon/observer_log.h"
#include "http/server.h"
#include "scheduler/scheduler.h"
#include "scheduler/store.h"
#include "store/transactions.h"

namespace tp {

// A buyer's opt-out or opt-in.
struct OptChange {
  std::string buyer_id;
  bool opt_out = true;
};

using IngestItems = std::variant<std::vector<Purchase>, std::vector<EngagementEvent>, OptChange>;

// What a group recorded, counted once it commits.
struct IngestCounts {
  std::int64_t accepted = 0, duplicates = 0, conflicts = 0;
  // Events by (type, outcome).
  std::map<std::pair<std::string, std::string>, std::int64_t> events;
};

struct WrittenGroup {
  std::vector<HttpResponse> responses;  // one per request, in order
  IngestCounts counts;
  std::vector<ObserverLog::Seen> observed;  // empty unless committed
  bool committed = false;
  bool unavailable = false;  // a store call failed as Unavailable
};

class IngestWriter {
 public:
  // `store` and `schedule` are one store's two faces; `rules` are read at
  // each group (the caller swaps them between groups, not during one).
  IngestWriter(Transactions& store, ScheduleStore& schedule, const Clock& clock,
               const RulesInForce& rules);

  WrittenGroup Write(const std::vector<const IngestItems*>& group);

 private:
  // One request in its savepoint; `counts` grows only if it is released.
  HttpResponse RecordOne(const IngestItems& items, IngestCounts& counts, WrittenGroup& written);
  // A request's items, inside its savepoint: the answer, with
  // `rolled_back` set when the request must be rolled back (a conflict, an
  // unknown touchpoint, a failed write).
  HttpResponse RecordPurchases(const std::vector<Purchase>& items, IngestCounts& counts,
                               bool& rolled_back, WrittenGroup& written);
  HttpResponse RecordEvents(const std::vector<EngagementEvent>& items, IngestCounts& counts,
                            bool& rolled_back, WrittenGroup& written);
  HttpResponse RecordOptChange(const OptChange& change, bool& rolled_back, WrittenGroup& written);
  // api::StoreFailed(), noting an Unavailable failure in `written`.
  static HttpResponse Failed(const Status& failed, const std::string& what, WrittenGroup& written);

  Transactions& store_;
  const RulesInForce& rules_;
  ObserverLog log_;
  Scheduler scheduler_;
};

}  // namespace tp
