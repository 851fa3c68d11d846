// MemoryStore's engagement events and the touchpoints they are credited to
// (ScheduleStore's event calls, scheduler/store.h); the schedule itself is
// in memory_store.cc.
#include <algorithm>
#include <string>

#include "scheduler/memory_store.h"  // IWYU pragma: associated

namespace tp {
namespace {

// An event's content, its id aside.
std::uint64_t Fingerprint(const EngagementEvent& e) {
  std::uint64_t h = 1469598103934665603ULL;
  auto mix = [&h](std::string_view bytes) {
    for (unsigned char c : bytes) {
      h ^= c;
      h *= 1099511628211ULL;
    }
    h ^= 0x1f;
    h *= 1099511628211ULL;
  };
  mix(e.buyer_id);
  mix(e.type);
  mix(std::to_string(e.at.time_since_epoch().count()));
  mix(e.touchpoint_id);
  mix(e.attributes);
  return h;
}

// 16 lowercase hex digits as a number, or nullopt.
std::optional<std::uint64_t> Hex64(std::string_view hex) {
  std::uint64_t value = 0;
  for (char c : hex) {
    const int digit = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (digit < 0) return std::nullopt;
    value = value << 4 | static_cast<std::uint64_t>(digit);
  }
  return value;
}

bool IsTouchpointId(std::string_view id) { return id.size() == 35 && id.starts_with("tp_"); }

}  // namespace

// The id's first 16 hex digits after "tp_", as a number: with the second
// 16 (TouchpointRest), its identity among one buyer's touchpoints.
std::optional<std::uint64_t> MemoryStore::TouchpointKey(std::string_view id) {
  if (!IsTouchpointId(id) || !Hex64(id.substr(19))) return std::nullopt;
  return Hex64(id.substr(3, 16));
}

std::uint64_t MemoryStore::TouchpointRest(std::string_view id) {
  if (!IsTouchpointId(id)) return 0;
  return Hex64(id.substr(19)).value_or(0);
}

std::optional<std::uint32_t> MemoryStore::BuyerIndexOf(std::string_view buyer_id) const {
  auto it = buyer_index_.find(buyer_id);
  if (it == buyer_index_.end()) return std::nullopt;
  return it->second;
}

void MemoryStore::FiredOf(std::uint32_t buyer, std::vector<Fired>& out) const {
  out.clear();
  if (buyer >= buyers_.size()) return;
  const auto& tracked = buyers_[buyer].tracked;
  for (std::size_t i = 0; i < tracked.size(); ++i) {
    const Tracked& t = tracked[i];
    if (t.fire_at == Instant::max()) continue;
    out.push_back({std::uint64_t{buyer} << 32 | (i + 1), t.fire_at, t.cadence, t.step, t.zone});
  }
}

StatusOr<EventMatch> MemoryStore::MatchEvent(const EngagementEvent& event) {
  auto it = events_.find(event.event_id);
  if (it == events_.end()) return EventMatch{};
  // A fingerprint cannot say which field differs.
  return EventMatch{it->second == Fingerprint(event) ? EventMatch::Kind::kSame
                                                     : EventMatch::Kind::kConflict};
}

std::optional<TouchpointRef> MemoryStore::RefOf(std::uint32_t buyer, std::size_t index,
                                                const Tracked& t, const Rules& rules) {
  TouchpointRef ref;
  ref.handle = std::uint64_t{buyer} << 32 | (index + 1);
  ref.cadence = rules.cadences[t.cadence].name;
  ref.zone = t.zone;
  if (t.fire_at != Instant::max()) ref.fire_at = t.fire_at;
  return ref;
}

StatusOr<BuyerTouchpoint> MemoryStore::FindTouchpoint(std::string_view buyer_id,
                                                      std::string_view touchpoint_id) {
  BuyerTouchpoint found;
  auto it = buyer_index_.find(buyer_id);
  if (it == buyer_index_.end()) return found;
  found.buyer = std::uint64_t{it->second} + 1;
  const auto key = TouchpointKey(touchpoint_id);
  const std::uint64_t rest = TouchpointRest(touchpoint_id);
  if (!key) return found;
  const auto& tracked = buyers_[it->second].tracked;
  for (std::size_t i = 0; i < tracked.size(); ++i) {
    if (tracked[i].key == *key && tracked[i].rest == rest) {
      found.touchpoint = RefOf(it->second, i, tracked[i], *rules_);
      break;
    }
  }
  return found;
}

StatusOr<BuyerTouchpoint> MemoryStore::LastFiredBefore(std::string_view buyer_id, Instant at) {
  BuyerTouchpoint found;
  auto it = buyer_index_.find(buyer_id);
  if (it == buyer_index_.end()) return found;
  found.buyer = std::uint64_t{it->second} + 1;
  const auto& tracked = buyers_[it->second].tracked;
  std::optional<std::size_t> last;
  for (std::size_t i = 0; i < tracked.size(); ++i) {
    const Instant f = tracked[i].fire_at;
    if (f < at && (!last || f >= tracked[*last].fire_at)) last = i;
  }
  if (last) found.touchpoint = RefOf(it->second, *last, tracked[*last], *rules_);
  return found;
}

StatusOr<bool> MemoryStore::AddEvent(const EngagementEvent& event, std::uint64_t buyer,
                                     std::uint64_t /*credited*/, Instant /*now*/) {
  const int type = rules_->EngagementTypeIndex(event.type);
  if (type < 0) return Status::Error("unknown event type " + event.type);
  // The buyer first, as the stores make its row even for an event seen
  // before: buyers are numbered alike, and fire alike at one instant.
  const std::uint32_t index =
      buyer != 0 ? static_cast<std::uint32_t>(buyer - 1) : BuyerIndex(event.buyer_id);
  if (!events_.emplace(event.event_id, Fingerprint(event)).second) return false;
  auto& events = buyers_[index].events;
  const auto place = std::upper_bound(events.begin(), events.end(), event.at,
                                      [](Instant t, const EventRec& e) { return t < e.at; });
  events.insert(place, EventRec{event.at, static_cast<std::uint16_t>(type)});
  return true;
}

StatusOr<CadenceCounts> MemoryStore::CancelCadences(std::string_view buyer_id,
                                                    std::span<const std::string> cadences,
                                                    Instant up_to, Instant /*now*/,
                                                    std::string_view reason) {
  CadenceCounts counts;
  auto it = buyer_index_.find(buyer_id);
  if (it == buyer_index_.end()) return counts;
  BuyerRec& b = buyers_[it->second];
  for (const SlotRef ref : b.pending) {
    if (!IsLive(ref)) continue;
    const TouchpointRec& t = touchpoints_[ref.slot];
    const std::string& name = rules_->cadences[t.cadence].name;
    if (purchases_[t.purchase].purchased_at <= up_to &&
        std::find(cadences.begin(), cadences.end(), name) != cadences.end()) {
      ++counts[name];
      Finish(ref.slot, TouchpointState::kCancelled, std::nullopt, reason);
    }
  }
  std::erase_if(b.pending, [this](SlotRef r) { return !IsLive(r); });
  return counts;
}

StatusOr<std::vector<EngagementEvent>> MemoryStore::FirstEventsSince(
    std::string_view buyer_id, Instant since, std::span<const std::string> types) {
  std::vector<EngagementEvent> found;
  auto b = buyer_index_.find(buyer_id);
  if (b == buyer_index_.end()) return found;
  const BuyerRec& buyer = buyers_[b->second];
  auto e = std::lower_bound(buyer.events.begin(), buyer.events.end(), since,
                            [](const EventRec& r, Instant at) { return r.at < at; });
  for (; e != buyer.events.end() && found.size() < types.size(); ++e) {
    const std::string& name = rules_->engagement_types[e->type].name;
    if (std::find(types.begin(), types.end(), name) == types.end()) continue;
    if (std::any_of(found.begin(), found.end(),
                    [&](const EngagementEvent& f) { return f.type == name; })) {
      continue;
    }
    EngagementEvent first;
    first.buyer_id = buyer.id;
    first.type = name;
    first.at = e->at;
    found.push_back(std::move(first));
  }
  return found;
}

StatusOr<std::optional<EngagementEvent>> MemoryStore::FirstEngagement(
    const DueTouchpoint& due, std::span<const std::string> types, Instant until) {
  const TouchpointRec& t = touchpoints_[static_cast<std::uint32_t>(due.handle)];
  const PurchaseRec& p = purchases_[t.purchase];
  const auto& events = buyers_[p.buyer].events;
  auto e = std::lower_bound(events.begin(), events.end(), p.purchased_at,
                            [](const EventRec& r, Instant at) { return r.at < at; });
  for (; e != events.end() && e->at <= until; ++e) {
    const std::string& name = rules_->engagement_types[e->type].name;
    if (std::find(types.begin(), types.end(), name) != types.end()) {
      EngagementEvent found;
      found.buyer_id = buyers_[p.buyer].id;
      found.type = name;
      found.at = e->at;
      return std::optional<EngagementEvent>(std::move(found));
    }
  }
  return std::optional<EngagementEvent>();
}

}  // namespace tp
