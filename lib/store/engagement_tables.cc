#include "store/engagement_tables.h"

#include <SQLiteCpp/SQLiteCpp.h>

#include "core/ids.h"

namespace tp {

using sql::BindText;
using sql::BindTextOrNull;
using sql::FromMs;
using sql::Guard;
using sql::JsonStrings;
using sql::Ms;
using sql::Text;
using sql::TextView;

EngagementTables::EngagementTables(Database& db, RowWriter& rows)
    : db_(db),
      rows_(rows),
      match_(db.sql(),
             "SELECT b.buyer_id, e.type, e.at, e.touchpoint_id, e.attributes FROM events e "
             "JOIN buyers b ON b.id = e.buyer WHERE e.event_id = ?"),
      // A buyer's touchpoints, most recently fired first: an event names one
      // it just received far more often than an old one.
      touchpoints_of_(db.sql(),
                      "SELECT t.id, t.cadence, t.purchase, t.fire_at, p.order_id, t.step FROM "
                      "touchpoints t JOIN purchases p ON p.id = t.purchase WHERE t.buyer = ? "
                      "ORDER BY t.fire_at IS NULL, t.fire_at DESC, t.id DESC"),
      // From touchpoints_fired alone: the latest first, ties to the one
      // recorded last.
      fired_before_(db.sql(),
                    "SELECT id, cadence, purchase, fire_at FROM touchpoints INDEXED BY "
                    "touchpoints_fired WHERE buyer = ? AND state IN (1, 5) AND fire_at < ? "
                    "ORDER BY fire_at DESC, id DESC LIMIT 1"),
      zone_of_(db.sql(), "SELECT zone FROM purchases WHERE id = ?"),
      insert_(db.sql(),
              "INSERT INTO events (event_id, buyer, type, at, touchpoint_id, credited, "
              "attributes, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
              "ON CONFLICT (event_id) DO NOTHING"),
      cancel_(db.sql(),
              "UPDATE touchpoints SET state = 2, reason = ?1 WHERE buyer = ?2 AND state = 0 AND "
              "cadence IN (SELECT value FROM json_each(?3)) AND purchase IN (SELECT id FROM "
              "purchases WHERE buyer = ?2 AND purchased_at <= ?4) RETURNING id, cadence"),
      first_engagement_(
          db.sql(),
          "SELECT e.type, e.at FROM touchpoints t JOIN purchases p ON p.id = t.purchase "
          "JOIN events e ON e.buyer = t.buyer AND e.at >= p.purchased_at AND e.at <= ?2 "
          "WHERE t.id = ?1 AND e.type IN (SELECT value FROM json_each(?3)) "
          "ORDER BY e.at, e.id LIMIT 1"),
      // By events_by_buyer, from `since` on: usually nothing (a purchase
      // is reported before its buyer answers).
      first_events_since_(db.sql(),
                          "SELECT type, MIN(at) FROM events WHERE buyer = (SELECT id FROM buyers "
                          "WHERE buyer_id = ?1) AND at >= ?2 AND type IN (SELECT value FROM "
                          "json_each(?3)) GROUP BY type") {}

TouchpointRef EngagementTables::Ref(SQLite::Statement& q) {
  TouchpointRef ref;
  ref.handle = static_cast<std::uint64_t>(q.getColumn(0).getInt64());
  ref.cadence = q.getColumn(1).getString();
  if (!q.getColumn(3).isNull()) ref.fire_at = FromMs(q.getColumn(3).getInt64());
  // The purchase's zone (UTC if the purchase is gone), for the row kept only.
  zone_of_.tryReset();
  zone_of_.bind(1, q.getColumn(2).getInt64());
  ref.zone = zone_of_.executeStep() ? zones_.Named(TextView(zone_of_.getColumn(0))) : UtcZone();
  zone_of_.tryReset();
  return ref;
}

StatusOr<EventMatch> EngagementTables::Match(const EngagementEvent& event) {
  return Guard("match event", [&]() -> StatusOr<EventMatch> {
    auto& q = match_;
    q.tryReset();
    BindText(q, 1, event.event_id);
    if (!q.executeStep()) return EventMatch{};
    EngagementEvent stored;
    stored.event_id = event.event_id;
    stored.buyer_id = q.getColumn(0).getString();
    stored.type = q.getColumn(1).getString();
    stored.at = FromMs(q.getColumn(2).getInt64());
    stored.touchpoint_id = Text(q.getColumn(3));
    stored.attributes = Text(q.getColumn(4));
    q.tryReset();
    const std::string_view differs = stored.FirstDifference(event);
    if (differs.empty()) return EventMatch{EventMatch::Kind::kSame};
    return EventMatch{EventMatch::Kind::kConflict, std::string(differs)};
  });
}

StatusOr<BuyerTouchpoint> EngagementTables::FindTouchpoint(std::string_view buyer_id,
                                                           std::string_view touchpoint_id) {
  return Guard("find the event's touchpoint", [&]() -> StatusOr<BuyerTouchpoint> {
    BuyerTouchpoint found;
    auto buyer = rows_.FindBuyer(buyer_id);
    if (!buyer) return found;
    found.buyer = static_cast<std::uint64_t>(*buyer);
    // Ids are digests of (order, cadence, step), not stored: each of the
    // buyer's is made until one matches.
    auto& q = touchpoints_of_;
    q.tryReset();
    q.bind(1, *buyer);
    while (q.executeStep()) {
      if (TouchpointId(TextView(q.getColumn(4)), TextView(q.getColumn(1)),
                       TextView(q.getColumn(5))) == touchpoint_id) {
        found.touchpoint = Ref(q);
        break;
      }
    }
    q.tryReset();
    return found;
  });
}

StatusOr<BuyerTouchpoint> EngagementTables::LastFiredBefore(std::string_view buyer_id, Instant at) {
  return Guard("find the last touchpoint fired", [&]() -> StatusOr<BuyerTouchpoint> {
    BuyerTouchpoint found;
    auto buyer = rows_.FindBuyer(buyer_id);
    if (!buyer) return found;
    found.buyer = static_cast<std::uint64_t>(*buyer);
    auto& q = fired_before_;
    q.tryReset();
    q.bind(1, *buyer);
    q.bind(2, Ms(at));
    if (q.executeStep()) found.touchpoint = Ref(q);
    q.tryReset();
    return found;
  });
}

StatusOr<bool> EngagementTables::Add(const EngagementEvent& event, std::uint64_t buyer,
                                     std::uint64_t credited, Instant now) {
  bool added = false;
  Status s = db_.Atomically("record event", [&] {
    const std::int64_t row =
        buyer != 0 ? static_cast<std::int64_t>(buyer) : rows_.EnsureBuyer(event.buyer_id, now);
    auto& q = insert_;
    q.tryReset();
    BindText(q, 1, event.event_id);
    q.bind(2, row);
    BindText(q, 3, event.type);
    q.bind(4, Ms(event.at));
    BindTextOrNull(q, 5, event.touchpoint_id);
    if (credited != 0) {
      q.bind(6, static_cast<std::int64_t>(credited));
    } else {
      q.bind(6);
    }
    BindTextOrNull(q, 7, event.attributes);
    q.bind(8, Ms(now));
    added = q.exec() > 0;
  });
  if (!s.ok()) return s;
  return added;
}

StatusOr<CadenceCounts> EngagementTables::CancelCadences(std::string_view buyer_id,
                                                         std::span<const std::string> cadences,
                                                         Instant up_to, Instant now,
                                                         std::string_view reason) {
  CadenceCounts counts;
  Status s = db_.Atomically("stop cadences", [&] {
    auto buyer = rows_.FindBuyer(buyer_id);
    if (!buyer) return;
    auto& q = cancel_;
    q.tryReset();
    BindText(q, 1, reason);
    q.bind(2, *buyer);
    BindText(q, 3, JsonStrings(cadences));
    q.bind(4, Ms(up_to));
    rows_.FinishReturned(q, now, TouchpointState::kCancelled, reason, counts);
  });
  if (!s.ok()) return s;
  return counts;
}

StatusOr<std::vector<EngagementEvent>> EngagementTables::FirstEventsSince(
    std::string_view buyer_id, Instant since, std::span<const std::string> types) {
  return Guard("read the buyer's events", [&]() -> StatusOr<std::vector<EngagementEvent>> {
    std::vector<EngagementEvent> found;
    if (types.empty()) return found;
    auto& q = first_events_since_;
    q.tryReset();
    BindText(q, 1, buyer_id);
    q.bind(2, Ms(since));
    BindText(q, 3, JsonStrings(types));
    while (q.executeStep()) {
      EngagementEvent& e = found.emplace_back();
      e.buyer_id = std::string(buyer_id);
      e.type = q.getColumn(0).getString();
      e.at = FromMs(q.getColumn(1).getInt64());
    }
    q.tryReset();
    return found;
  });
}

StatusOr<std::optional<EngagementEvent>> EngagementTables::FirstEngagement(
    const DueTouchpoint& due, std::span<const std::string> types, Instant until) {
  return Guard("look for engagement", [&]() -> StatusOr<std::optional<EngagementEvent>> {
    std::optional<EngagementEvent> found;
    auto& q = first_engagement_;
    q.tryReset();
    q.bind(1, static_cast<std::int64_t>(due.handle));
    q.bind(2, Ms(until));
    BindText(q, 3, JsonStrings(types));
    if (q.executeStep()) {
      found.emplace();
      found->buyer_id = std::string(due.view.buyer_id);
      found->type = q.getColumn(0).getString();
      found->at = FromMs(q.getColumn(1).getInt64());
    }
    q.tryReset();
    return found;
  });
}

}  // namespace tp
