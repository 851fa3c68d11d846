// Group commit of POST /v1/purchases and POST /v1/events: requests that arrive while the loop is
// busy are written in one transaction, each in a savepoint of its own so a
// bad request rolls back alone, and every answer is sent only after the
// commit. A failure that may have ended the whole transaction (a full disk,
// an I/O error) answers every request of the group 5xx: none is recorded.
//
// Not thread-safe: the daemon's loop only.
#pragma once

// Boost 1.74's Asio needs <utility> before it under C++20.
#include <utility>
// (keep the blank line above: clang-format must not reorder this include)

#include <boost/asio/io_context.hpp>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "config/rules.h"
#include "config/rules_in_force.h"
#include "core/model.h"
#include "daemon/daemon_metrics.h"
#include "http/server.h"
#include "scheduler/scheduler.h"
#include "store/transactions.h"

namespace tp {

class IngestBatcher {
 public:
  struct Hooks {
    // Why purchases cannot be taken now (no room for them), or nullopt.
    std::function<std::optional<std::string>()> no_room;
    // A store call failed: the answer (503 when storage is full for now).
    std::function<HttpResponse(const Status& failed, const std::string& what)> store_failed;
    // A write failed for want of space.
    std::function<void()> storage_full;
    // A group committed: touchpoints may be due sooner.
    std::function<void()> committed;
  };

  IngestBatcher(boost::asio::io_context& io, Transactions& store, Scheduler& scheduler,
                DaemonMetrics& metrics, const RulesInForce& rules, Hooks hooks);

  // 503 while stopping, else nullopt (asked before the body is parsed).
  std::optional<HttpResponse> Closed() const;
  // Queues a request's purchases (or events) for the next group; answers
  // 503 at once when there is no room for them.
  void Submit(std::vector<Purchase> items, HttpRespond respond);
  void Submit(std::vector<EngagementEvent> items, HttpRespond respond);
  // Writes the group waiting now, if any (a reload records what was parsed
  // under the old rules first).
  void Flush();
  // No more requests (the daemon is stopping); those queued are written.
  void Stop() { stopping_ = true; }

 private:
  using Items = std::variant<std::vector<Purchase>, std::vector<EngagementEvent>>;
  struct Pending {
    Items items;
    HttpRespond respond;
  };
  // What a group recorded, counted once it commits.
  struct Counts {
    std::int64_t accepted = 0, duplicates = 0, conflicts = 0;
    // Events by (type, outcome).
    std::map<std::pair<std::string, std::string>, std::int64_t> events;
  };
  void Queue(Items items, HttpRespond respond);
  // One request in its savepoint; `counts` grows only if it is released.
  HttpResponse RecordOne(const Items& items, Counts& counts);
  // A request's items, inside its savepoint: the answer, with
  // `rolled_back` set when the request must be rolled back (a conflict, an
  // unknown touchpoint, a failed write).
  HttpResponse RecordPurchases(const std::vector<Purchase>& items, Counts& counts,
                               bool& rolled_back);
  HttpResponse RecordEvents(const std::vector<EngagementEvent>& items, Counts& counts,
                            bool& rolled_back);

  boost::asio::io_context& io_;
  Transactions& store_;
  Scheduler& scheduler_;
  DaemonMetrics& metrics_;
  const RulesInForce& rules_;
  Hooks hooks_;
  std::vector<Pending> pending_;
  bool flush_posted_ = false;
  bool stopping_ = false;
};

}  // namespace tp
