// What the read routes and /metrics need from storage: a buyer's timeline,
// and the counts the gauges report. SqliteStore implements it (and its
// StoreReader reads the gauges on a thread of its own).
//
// Threading: called on the thread that owns the store. Errors: a Status.
#pragma once

#include <chrono>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/model.h"
#include "core/status.h"
#include "core/time.h"
#include "scheduler/store.h"

namespace tp {

// A transition of one touchpoint, as kept in its history.
struct Transition {
  Instant at;
  TouchpointState state = TouchpointState::kPending;  // the state after it
  std::string reason;
};

struct PurchaseRecord {
  Purchase purchase;
  std::string zone;  // the zone it was planned in (the default if none given)
  std::string tier;  // the tier it was planned at
  Instant received_at;
};

struct TouchpointRecord {
  std::string id;
  std::string order_id;
  std::string cadence;
  std::string step;
  std::string topic;
  std::string tier;
  std::string product;
  std::string zone;
  Instant due_at;
  Instant next_at;
  std::optional<Instant> fire_at;
  TouchpointState state = TouchpointState::kPending;
  std::string reason;
  std::vector<Transition> history;
};

struct BuyerReport {
  std::string buyer_id;
  std::string tier;  // at the buyer's latest purchase; empty if none
  bool opted_out = false;
  std::vector<PurchaseRecord> purchases;      // by purchased_at
  std::vector<TouchpointRecord> touchpoints;  // by due_at, then cadence and step order
  // The buyer's earlier purchases left out (GetBuyer's `last_purchases`),
  // with their touchpoints.
  std::int64_t earlier_purchases = 0;
};

// The counts /metrics reports from the file.
struct StoreGauges {
  std::int64_t pending = 0;  // pending touchpoints
  // Per queue asked for: its messages. Per push sink asked for, and per
  // sink no longer configured that has any: its dead letters. Per sink
  // with entries waiting in the outbox (sinks no longer configured too):
  // how many.
  std::vector<std::pair<std::string, std::int64_t>> queue_messages, dead_letters, outbox;
  // Whether any of them is an estimate (PostgreSQL, past a bound:
  // store/pg/gauges.h); SQLite counts exactly.
  bool estimated = false;
};

// Pending touchpoints by when they may next fire (GET /v1/status): per
// span [boundaries[i], boundaries[i + 1]), a count per cadence (its index
// in the rules the touchpoint was planned under); `before` counts those
// due before the first boundary, `later` those from the last on.
// `took`: how long counting them took on the reader's thread.
struct PendingDays {
  std::vector<std::map<int, std::int64_t>> days;
  std::int64_t before = 0;
  std::int64_t later = 0;
  std::chrono::steady_clock::duration took{};
};

class ReportStore {
 public:
  virtual ~ReportStore() = default;

  // A buyer's last `last_purchases` purchases (by purchased_at) and their
  // touchpoints with their histories, or nullopt if the buyer is unknown.
  // Its cost grows with the purchases and touchpoints shown, and with the
  // buyer's touchpoints read to find theirs.
  virtual StatusOr<std::optional<BuyerReport>> GetBuyer(std::string_view buyer_id,
                                                        std::int64_t last_purchases) = 0;
  // Every purchase.
  StatusOr<std::optional<BuyerReport>> GetBuyer(std::string_view buyer_id) {
    return GetBuyer(buyer_id, std::numeric_limits<std::int64_t>::max());
  }
  // Touchpoints waiting to fire, of every buyer.
  virtual StatusOr<std::int64_t> PendingCount() = 0;
};

}  // namespace tp
