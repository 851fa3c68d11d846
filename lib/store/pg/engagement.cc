// Engagement events in PostgreSQL: recording one with its credit, the
// cadences a type stops, and the trust signal a step's `when` looks for.
#include "core/ids.h"
#include "store/pg/tables.h"

namespace tp::pgstore {

using sql::FromMs;
using sql::Ms;

namespace {

const pg::Statement kMatchEvent(
    "SELECT b.buyer_id, e.type, e.at, e.touchpoint_id, e.attributes FROM events e "
    "JOIN buyers b ON b.id = e.buyer WHERE e.event_id = $1");
// A buyer's touchpoints, most recently fired first: an event names one it
// just received far more often than an old one.
const pg::Statement kBuyersTouchpoints(
    "SELECT t.id, t.cadence, p.zone, t.fire_at, p.order_id, t.step FROM touchpoints t "
    "JOIN purchases p ON p.id = t.purchase WHERE t.buyer = $1 "
    "ORDER BY t.fire_at DESC NULLS LAST, t.id DESC");
// From touchpoints_fired: the latest first, ties to the one recorded last.
const pg::Statement kFiredBefore(
    "SELECT t.id, t.cadence, p.zone, t.fire_at FROM touchpoints t "
    "JOIN purchases p ON p.id = t.purchase WHERE t.buyer = $1 AND t.state IN (1, 5) "
    "AND t.fire_at < $2 ORDER BY t.fire_at DESC, t.id DESC LIMIT 1");
const pg::Statement kInsert(
    "INSERT INTO events (event_id, buyer, type, at, touchpoint_id, credited, attributes, "
    "received_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (event_id) DO NOTHING");
const pg::Statement kStopCadences(
    "UPDATE touchpoints SET state = 2, reason = $1 WHERE buyer = $2 AND state = 0 AND "
    "cadence = ANY($3::text[]) AND purchase IN (SELECT id FROM purchases WHERE buyer = $2 AND "
    "purchased_at <= $4) RETURNING id, cadence");
// By events_by_buyer, from `since` on: usually nothing (a purchase is
// reported before its buyer answers).
const pg::Statement kFirstEventsSince(
    "SELECT e.type, min(e.at) FROM events e WHERE e.buyer = (SELECT id FROM buyers WHERE "
    "buyer_id = $1) AND e.at >= $2 AND e.type = ANY($3::text[]) GROUP BY e.type");
// The buyer's pending touchpoints, locked: a claim of any of them (TakeDue
// locks the rows it decides) is waited for. In id order, as everywhere.
const pg::Statement kWaitForTheBuyersClaims(
    "SELECT id FROM touchpoints WHERE buyer = $1 AND state = 0 ORDER BY id FOR NO KEY UPDATE");
const pg::Statement kFirstEngagement(
    "SELECT e.type, e.at FROM touchpoints t JOIN purchases p ON p.id = t.purchase "
    "JOIN events e ON e.buyer = t.buyer AND e.at >= p.purchased_at AND e.at <= $2 "
    "WHERE t.id = $1 AND e.type = ANY($3::text[]) ORDER BY e.at, e.id LIMIT 1");

}  // namespace

StatusOr<EventMatch> Tables::MatchEvent(const EngagementEvent& event) {
  return session_.Read("match event", [&]() -> StatusOr<EventMatch> {
    pg::Result r = session_.conn().Run(kMatchEvent, pg::Params().Add(event.event_id));
    if (r.rows() == 0) return EventMatch{};
    EngagementEvent stored;
    stored.event_id = event.event_id;
    stored.buyer_id = std::string(r.Text(0, 0));
    stored.type = std::string(r.Text(0, 1));
    stored.at = FromMs(r.Int64(0, 2));
    if (!r.IsNull(0, 3)) stored.touchpoint_id = std::string(r.Text(0, 3));
    if (!r.IsNull(0, 4)) stored.attributes = std::string(r.Text(0, 4));
    const std::string_view differs = stored.FirstDifference(event);
    if (differs.empty()) return EventMatch{EventMatch::Kind::kSame};
    return EventMatch{EventMatch::Kind::kConflict, std::string(differs)};
  });
}

namespace {

// A TouchpointRef from columns id, cadence, zone, fire_at of row `i`.
TouchpointRef Ref(const pg::Result& r, int i, sql::ZoneCache& zones) {
  TouchpointRef ref;
  ref.handle = static_cast<std::uint64_t>(r.Int64(i, 0));
  ref.cadence = std::string(r.Text(i, 1));
  ref.zone = zones.Named(r.Text(i, 2));
  if (!r.IsNull(i, 3)) ref.fire_at = FromMs(r.Int64(i, 3));
  return ref;
}

}  // namespace

StatusOr<BuyerTouchpoint> Tables::FindTouchpoint(std::string_view buyer_id,
                                                 std::string_view touchpoint_id) {
  BuyerTouchpoint found;
  Status s = session_.Atomically("find the event's touchpoint", [&] {
    auto buyer = FindBuyer(buyer_id, Instant{}, /*create=*/false);
    if (!buyer) return;
    found.buyer = static_cast<std::uint64_t>(*buyer);
    // Ids are digests of (order, cadence, step), not stored: each of the
    // buyer's is made until one matches.
    pg::Result r = session_.conn().Run(kBuyersTouchpoints, pg::Params().Add(*buyer));
    for (int i = 0; i < r.rows(); ++i) {
      if (TouchpointId(r.Text(i, 4), r.Text(i, 1), r.Text(i, 5)) == touchpoint_id) {
        found.touchpoint = Ref(r, i, zones_);
        break;
      }
    }
  });
  if (!s.ok()) return s;
  return found;
}

StatusOr<BuyerTouchpoint> Tables::LastFiredBefore(std::string_view buyer_id, Instant at) {
  BuyerTouchpoint found;
  Status s = session_.Atomically("find the last touchpoint fired", [&] {
    auto buyer = FindBuyer(buyer_id, Instant{}, /*create=*/false);
    if (!buyer) return;
    found.buyer = static_cast<std::uint64_t>(*buyer);
    pg::Result r = session_.conn().Run(kFiredBefore, pg::Params().Add(*buyer).Add(Ms(at)));
    if (r.rows() > 0) found.touchpoint = Ref(r, 0, zones_);
  });
  if (!s.ok()) return s;
  return found;
}

StatusOr<bool> Tables::AddEvent(const EngagementEvent& event, std::uint64_t buyer,
                                std::uint64_t credited, Instant now) {
  bool added = false;
  // What the group read of the buyer's events ahead no longer holds.
  if (Ahead* a = Current()) a->events.erase(event.buyer_id);
  Status s = session_.Atomically("record event", [&] {
    const std::int64_t row = buyer != 0 ? static_cast<std::int64_t>(buyer)
                                        : *FindBuyer(event.buyer_id, now, /*create=*/true);
    pg::Params p;
    p.Add(event.event_id).Add(row).Add(event.type).Add(Ms(event.at));
    p.AddTextOrNull(event.touchpoint_id);
    if (credited != 0) {
      p.Add(static_cast<std::int64_t>(credited));
    } else {
      p.AddNull();
    }
    p.AddTextOrNull(event.attributes).Add(Ms(now));
    // A trust signal waits for a claim under way of the buyer's due rows,
    // whose `when` it could decide: recorded (and answered) after that
    // claim read the buyer's signals and before it committed, the step
    // would fire as if the buyer had not answered. (The rows it locks are
    // passed over by claims until its group commits.)
    const Rules& rules = *rules_;
    const int type = rules.EngagementTypeIndex(event.type);
    if (type >= 0 && rules.engagement_types[static_cast<std::size_t>(type)].trust &&
        AnyWhen(rules)) {
      session_.conn().Run(kWaitForTheBuyersClaims, pg::Params().Add(row));
    }
    added = session_.conn().Run(kInsert, p).affected() > 0;
  });
  if (!s.ok()) return s;
  return added;
}

StatusOr<CadenceCounts> Tables::CancelCadences(std::string_view buyer_id,
                                               std::span<const std::string> cadences, Instant up_to,
                                               Instant now, std::string_view reason) {
  CadenceCounts counts;
  Status s = session_.Atomically("stop cadences", [&] {
    auto buyer = FindBuyer(buyer_id, now, /*create=*/false);
    if (!buyer) return;
    pg::Result r = session_.conn().Run(
        kStopCadences, pg::Params()
                           .Add(reason)
                           .Add(*buyer)
                           .AddArray(std::vector<std::string>(cadences.begin(), cadences.end()))
                           .Add(Ms(up_to)));
    FinishReturned(r, now, TouchpointState::kCancelled, reason, counts);
  });
  if (!s.ok()) return s;
  return counts;
}

StatusOr<std::vector<EngagementEvent>> Tables::FirstEventsSince(
    std::string_view buyer_id, Instant since, std::span<const std::string> types) {
  if (types.empty()) return std::vector<EngagementEvent>();
  if (Ahead* a = Current()) {
    if (const auto* read = a->FindEvents(buyer_id, since)) return *read;
  }
  return session_.Read("read the buyer's events", [&]() -> StatusOr<std::vector<EngagementEvent>> {
    std::vector<EngagementEvent> found;
    pg::Result r = session_.conn().Run(kFirstEventsSince,
                                       pg::Params().Add(buyer_id).Add(Ms(since)).AddArray(
                                           std::vector<std::string>(types.begin(), types.end())));
    for (int i = 0; i < r.rows(); ++i) {
      EngagementEvent& e = found.emplace_back();
      e.buyer_id = std::string(buyer_id);
      e.type = std::string(r.Text(i, 0));
      e.at = FromMs(r.Int64(i, 1));
    }
    return found;
  });
}

StatusOr<std::optional<EngagementEvent>> Tables::FirstEngagement(const DueTouchpoint& due,
                                                                 std::span<const std::string> types,
                                                                 Instant until) {
  return session_.Read("look for engagement", [&]() -> StatusOr<std::optional<EngagementEvent>> {
    std::optional<EngagementEvent> found;
    pg::Result r = session_.conn().Run(
        kFirstEngagement, pg::Params()
                              .Add(static_cast<std::int64_t>(due.handle))
                              .Add(Ms(until))
                              .AddArray(std::vector<std::string>(types.begin(), types.end())));
    if (r.rows() > 0) {
      found.emplace();
      found->buyer_id = std::string(due.view.buyer_id);
      found->type = std::string(r.Text(0, 0));
      found->at = FromMs(r.Int64(0, 1));
    }
    return found;
  });
}

}  // namespace tp::pgstore
