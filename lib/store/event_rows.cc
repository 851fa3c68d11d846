#include "store/event_rows.h"

#include <spdlog/spdlog.h>

#include <utility>
#include <vector>

#include "scheduler/event.h"

namespace tp {

using sql::BindText;
using sql::Guard;

EventRows::EventRows(SQLite::Database& db)
    : stored_left_(db.execAndGet("SELECT EXISTS (SELECT 1 FROM queue_events)").getInt() != 0),
      stored_(db,
              "SELECT touchpoint, event FROM queue_events WHERE touchpoint IN "
              "(SELECT value FROM json_each(?1))"),
      rows_(db, std::string("SELECT ") + kTouchpointColumns + kTouchpointJoins +
                    "WHERE t.id IN (SELECT value FROM json_each(?1))") {}

std::unordered_map<std::int64_t, std::string> EventRows::Make(
    std::span<const std::int64_t> touchpoints, bool stored) {
  std::unordered_map<std::int64_t, std::string> events;
  if (touchpoints.empty()) return events;
  sql::IdList list;
  for (const std::int64_t id : touchpoints) list.Add(id);
  const std::string& ids = list.Close();
  if (stored && stored_left_) {
    stored_.tryReset();
    BindText(stored_, 1, ids);
    while (stored_.executeStep()) {
      events.emplace(stored_.getColumn(0).getInt64(), stored_.getColumn(1).getString());
    }
    stored_.tryReset();
  }
  if (events.size() < touchpoints.size()) {
    rows_.tryReset();
    BindText(rows_, 1, ids);
    while (rows_.executeStep()) {
      ReadRow(rows_, zones_, row_);
      if (!row_.fire_at || events.count(row_.rowid) != 0) continue;
      events.emplace(row_.rowid, TouchpointEventJson(row_.View(), *row_.fire_at, row_.attributes,
                                                     *row_.fire_at));
    }
    rows_.tryReset();
  }
  return events;
}

Status EventRows::Fill(std::span<LeasedRow> leased, std::string_view queue) {
  return Guard("make leased events", [&] {
    std::vector<std::int64_t> touchpoints;
    touchpoints.reserve(leased.size());
    for (const LeasedRow& r : leased) touchpoints.push_back(r.touchpoint);
    auto events = Make(touchpoints, /*stored=*/true);
    for (LeasedRow& r : leased) {
      if (auto it = events.find(r.touchpoint); it != events.end()) {
        r.message.event = std::move(it->second);
        continue;
      }
      spdlog::error(
          "queue {}: message {} has no event (touchpoint row {} is gone); handing out null", queue,
          r.id, r.touchpoint);
      r.message.event = "null";
    }
    return Status::Ok();
  });
}

}  // namespace tp
