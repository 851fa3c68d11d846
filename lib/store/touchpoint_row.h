// A touchpoint as the store reads it from its tables (with its purchase
// and buyer joined): as due, for the scheduler, or as fired, for its event.
// The rows and columns serve every backend; ReadDue() and ReadRow() read
// SQLite's. Internal to lib/store.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "scheduler/store.h"
#include "store/values.h"

namespace SQLite {
class Statement;
}  // namespace SQLite

namespace tp {

// A due touchpoint's data, owned here while the scheduler decides it.
// A touchpoint as due (kDueColumns, read by ReadDue), or as fired for its
// event (kTouchpointColumns, read by ReadRow); joined by kTouchpointJoins.
struct DueRow {
  std::int64_t rowid = 0;
  std::string tp_id, buyer_id, order_id, cadence, step, topic, tier, product, attributes;
  const Zone* zone = nullptr;
  Instant due_at, next_at, ready_at;
  std::optional<Instant> fire_at;

  // Points into this row: valid while it lives and does not move.
  TouchpointView View() const {
    TouchpointView v;
    v.id = tp_id;
    v.buyer_id = buyer_id;
    v.order_id = order_id;
    v.cadence = cadence;
    v.step = step;
    v.topic = topic;
    v.tier = tier;
    v.product = product;
    v.zone = zone;
    v.due_at = due_at;
    v.next_at = next_at;
    v.ready_at = ready_at;
    v.fire_at = fire_at;
    return v;
  }
};
// A fired touchpoint's own tier, once pinned, wins over its purchase's.
inline constexpr const char* kTouchpointColumns =
    "t.id, t.step, b.buyer_id, p.order_id, t.cadence, t.topic, COALESCE(t.tier, p.tier), "
    "p.product, p.zone, t.due_at, t.next_at, p.attributes, t.fire_at";
inline constexpr const char* kTouchpointJoins =
    " FROM touchpoints t JOIN purchases p ON p.id = t.purchase JOIN buyers b ON b.id = t.buyer ";

// A due touchpoint as TakeDue() reads it, for ReadDue().
inline constexpr const char* kDueColumns =
    "t.id, b.buyer_id, t.cadence, p.zone, t.due_at, t.next_at, MAX(t.next_at, p.received_at), "
    "t.step";

// One row of kDueColumns: the rest of the row stays empty.
void ReadDue(SQLite::Statement& q, sql::ZoneCache& zones, DueRow& r);
// One row of kTouchpointColumns.
void ReadRow(SQLite::Statement& q, sql::ZoneCache& zones, DueRow& r);

}  // namespace tp
