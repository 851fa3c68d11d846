#include "scheduler/memory_store.h"

#include <date/tz.h>

#include <algorithm>
#include <cstring>
#include <tuple>

namespace tp {
namespace {

// FNV-1a over the purchase's content, its zone's name for its timezone;
// identity is the order id itself.
std::uint64_t Fingerprint(const Purchase& p, const Zone* zone) {
  std::uint64_t h = 1469598103934665603ULL;
  auto mix = [&h](const void* data, std::size_t n) {
    const auto* bytes = static_cast<const unsigned char*>(data);
    for (std::size_t i = 0; i < n; ++i) {
      h ^= bytes[i];
      h *= 1099511628211ULL;
    }
    const unsigned char separator = 0x1f;
    h ^= separator;
    h *= 1099511628211ULL;
  };
  mix(p.buyer_id.data(), p.buyer_id.size());
  mix(p.product.data(), p.product.size());
  mix(&p.quantity, sizeof p.quantity);
  std::uint64_t amount_bits;
  std::memcpy(&amount_bits, &p.amount, sizeof amount_bits);
  mix(&amount_bits, sizeof amount_bits);
  const auto at = p.purchased_at.time_since_epoch().count();
  mix(&at, sizeof at);
  const std::string_view zone_name = zone != nullptr ? zone->name() : std::string_view(p.timezone);
  mix(zone_name.data(), zone_name.size());
  mix(p.attributes.data(), p.attributes.size());
  return h;
}

// How far back the frequency caps' periods containing now may begin: a
// day (25 hours at most), an ISO week, a calendar month (the week that
// contains its first day may begin 6 days earlier), with a day to spare.
Millis FiresToKeep(const Rules& rules) {
  Millis keep{0};
  for (const FrequencyCap& cap : rules.frequency_caps) {
    const int days = cap.per == FrequencyCap::Per::kDay    ? 3
                     : cap.per == FrequencyCap::Per::kWeek ? 9
                                                           : 33;
    keep = std::max<Millis>(keep, std::chrono::hours(24 * days));
  }
  return keep;
}

// A slot in `items`: a released one if any, else a new one at the end.
template <typename T>
std::uint32_t Allocate(std::vector<T>& items, std::vector<std::uint32_t>& released) {
  if (released.empty()) {
    items.emplace_back();
    return static_cast<std::uint32_t>(items.size() - 1);
  }
  const std::uint32_t slot = released.back();
  released.pop_back();
  return slot;
}

}  // namespace

bool MemoryStore::HeapEntry::operator<(const HeapEntry& o) const {
  if (next_at != o.next_at) return next_at > o.next_at;
  if (due_at != o.due_at) return due_at > o.due_at;
  if (buyer != o.buyer) return buyer > o.buyer;
  if (cadence != o.cadence) return cadence > o.cadence;
  if (step != o.step) return step > o.step;
  return seq > o.seq;
}

MemoryStore::HeapEntry MemoryStore::EntryOf(std::uint32_t slot) const {
  const TouchpointRec& t = touchpoints_[slot];
  const std::uint32_t buyer = purchases_[t.purchase].buyer;
  return HeapEntry{t.next_at, t.due_at, t.cadence, t.step, buyer, t.seq, slot, t.generation};
}

MemoryStore::MemoryStore(std::shared_ptr<const Rules> rules, Observer* observer)
    : rules_(std::move(rules)), keep_fires_(FiresToKeep(*rules_)), observer_(observer) {
  for (const Cadence& c : rules_->cadences) {
    auto& steps = sinks_of_.emplace_back();
    for (const Step& step : c.steps) steps.push_back(rules_->SinkList(rules_->SinksOf(c, step)));
  }
}

StatusOr<PurchaseMatch> MemoryStore::MatchPurchase(const Purchase& purchase, const Zone* zone) {
  auto it = orders_.find(purchase.order_id);
  if (it == orders_.end()) return PurchaseMatch{};
  // A fingerprint cannot say which field differs.
  return PurchaseMatch{it->second == Fingerprint(purchase, zone) ? PurchaseMatch::Kind::kSame
                                                                 : PurchaseMatch::Kind::kConflict};
}

std::uint32_t MemoryStore::BuyerIndex(std::string_view buyer_id) {
  auto it = buyer_index_.find(buyer_id);
  if (it != buyer_index_.end()) return it->second;
  const auto index = static_cast<std::uint32_t>(buyers_.size());
  buyers_.push_back(BuyerRec{std::string(buyer_id), false, {}, {}, {}, {}, {}});
  buyer_index_.emplace(std::string(buyer_id), index);
  return index;
}

StatusOr<BuyerState> MemoryStore::LoadBuyer(std::string_view buyer_id) {
  auto it = buyer_index_.find(buyer_id);
  if (it == buyer_index_.end()) return BuyerState{};
  const BuyerRec& b = buyers_[it->second];
  return BuyerState{b.opted_out, b.history};
}

bool MemoryStore::IsLive(SlotRef ref) const {
  const TouchpointRec& t = touchpoints_[ref.slot];
  return t.generation == ref.generation && t.state == TouchpointState::kPending;
}

Status MemoryStore::AddPurchase(const Purchase& purchase, const Zone* zone, int tier,
                                std::span<const PlannedTouchpoint> touchpoints, Instant now) {
  for (const PlannedTouchpoint& planned : touchpoints) {
    if (planned.id.size() != std::tuple_size_v<decltype(TouchpointRec::id)>) {
      return Status::Error("malformed touchpoint id " + planned.id);
    }
  }
  if (!orders_.emplace(purchase.order_id, Fingerprint(purchase, zone)).second) {
    return Status::Error("order " + purchase.order_id + " is already recorded");
  }
  const int product = rules_->ProductIndex(purchase.product);
  const std::uint32_t buyer = BuyerIndex(purchase.buyer_id);
  BuyerRec& b = buyers_[buyer];
  const auto place =
      std::upper_bound(b.history.begin(), b.history.end(), purchase.purchased_at,
                       [](Instant t, const PastPurchase& p) { return t < p.purchased_at; });
  b.history.insert(place, PastPurchase{purchase.purchased_at, product, purchase.amount,
                                       purchase.quantity, zone});
  std::erase_if(b.pending, [this](SlotRef r) { return !IsLive(r); });

  const std::uint32_t p_index = Allocate(purchases_, free_purchases_);
  PurchaseRec& p = purchases_[p_index];
  p.order_id = purchase.order_id;
  p.buyer = buyer;
  p.product = product;
  p.tier = tier;
  p.live = 0;
  p.zone = zone;
  p.purchased_at = purchase.purchased_at;
  p.received_at = now;

  std::uint32_t tracked = 0;
  for (const PlannedTouchpoint& planned : touchpoints) {
    if (track_) {
      buyers_[buyer].tracked.push_back(
          {TouchpointKey(planned.id).value_or(0), TouchpointRest(planned.id), zone, Instant::max(),
           static_cast<std::uint16_t>(planned.cadence), static_cast<std::uint16_t>(planned.step)});
      tracked = static_cast<std::uint32_t>(buyers_[buyer].tracked.size());
    }
    if (planned.state != TouchpointState::kPending) {
      if (observer_ != nullptr) {
        TouchpointView v = NamedView(p, planned.cadence, planned.step);
        v.id = planned.id;
        v.due_at = planned.due_at;
        v.next_at = planned.next_at;
        v.state = planned.state;
        v.reason = planned.reason;
        observer_->OnFinal(v);
      }
      continue;
    }
    const std::uint32_t slot = Allocate(touchpoints_, free_touchpoints_);
    TouchpointRec& t = touchpoints_[slot];
    std::copy(planned.id.begin(), planned.id.end(), t.id.begin());
    t.purchase = p_index;
    ++t.generation;
    t.cadence = static_cast<std::uint16_t>(planned.cadence);
    t.step = static_cast<std::uint16_t>(planned.step);
    t.cancel_on_repurchase = planned.cancel_on_repurchase;
    t.state = TouchpointState::kPending;
    t.due_at = planned.due_at;
    t.next_at = planned.next_at;
    t.seq = next_seq_++;
    t.tracked = tracked;
    heap_.push(EntryOf(slot));
    buyers_[buyer].pending.push_back(SlotRef{slot, t.generation});
    ++p.live;
    ++pending_count_;
  }
  if (p.live == 0) ReleasePurchaseRef(p_index);
  return Status::Ok();
}

void MemoryStore::ReleasePurchaseRef(std::uint32_t purchase) {
  PurchaseRec& p = purchases_[purchase];
  if (p.live > 0) --p.live;
  if (p.live == 0) free_purchases_.push_back(purchase);
}

TouchpointView MemoryStore::NamedView(const PurchaseRec& p, int cadence, int step) const {
  const Cadence& c = rules_->cadences[static_cast<std::size_t>(cadence)];
  TouchpointView v;
  v.buyer_id = buyers_[p.buyer].id;
  v.order_id = p.order_id;
  v.cadence = c.name;
  v.step = c.steps[static_cast<std::size_t>(step)].id;
  v.topic = c.steps[static_cast<std::size_t>(step)].topic;
  v.tier = rules_->tiers[static_cast<std::size_t>(p.tier)].name;
  v.product = rules_->products[static_cast<std::size_t>(p.product)].name;
  v.zone = p.zone;
  return v;
}

TouchpointView MemoryStore::View(std::uint32_t slot) const {
  const TouchpointRec& t = touchpoints_[slot];
  TouchpointView v = NamedView(purchases_[t.purchase], t.cadence, t.step);
  v.id = std::string_view(t.id.data(), t.id.size());
  v.due_at = t.due_at;
  v.next_at = t.next_at;
  v.ready_at = std::max(t.next_at, purchases_[t.purchase].received_at);
  v.state = t.state;
  return v;
}

void MemoryStore::Finish(std::uint32_t slot, TouchpointState state, std::optional<Instant> fire_at,
                         std::string_view reason) {
  TouchpointRec& t = touchpoints_[slot];
  t.state = state;
  if (observer_ != nullptr) {
    TouchpointView v = View(slot);
    v.fire_at = fire_at;
    v.reason = reason;
    observer_->OnFinal(v);
  }
  --pending_count_;
  // The strings stay in place until the slot is reused by AddPurchase, so
  // views handed out by TakeDue stay valid as documented.
  free_touchpoints_.push_back(slot);
  ReleasePurchaseRef(t.purchase);
}

StatusOr<CadenceCounts> MemoryStore::CancelEarlier(std::string_view buyer_id, Instant up_to,
                                                   std::string_view except_order, Instant /*now*/,
                                                   std::string_view reason) {
  CadenceCounts counts;
  auto it = buyer_index_.find(buyer_id);
  if (it == buyer_index_.end()) return counts;
  BuyerRec& b = buyers_[it->second];
  for (const SlotRef ref : b.pending) {
    if (!IsLive(ref)) continue;
    const TouchpointRec& t = touchpoints_[ref.slot];
    const PurchaseRec& p = purchases_[t.purchase];
    if (t.cancel_on_repurchase && p.purchased_at <= up_to && p.order_id != except_order) {
      ++counts[rules_->cadences[t.cadence].name];
      Finish(ref.slot, TouchpointState::kCancelled, std::nullopt, reason);
    }
  }
  std::erase_if(b.pending, [this](SlotRef r) { return !IsLive(r); });
  return counts;
}

StatusOr<CadenceCounts> MemoryStore::SetOptedOut(std::string_view buyer_id, bool opted_out,
                                                 Instant /*now*/) {
  CadenceCounts counts;
  BuyerRec& b = buyers_[BuyerIndex(buyer_id)];
  b.opted_out = opted_out;
  if (!opted_out) return counts;
  for (const SlotRef ref : b.pending) {
    if (!IsLive(ref)) continue;
    ++counts[rules_->cadences[touchpoints_[ref.slot].cadence].name];
    Finish(ref.slot, TouchpointState::kSuppressed, std::nullopt, "opted out");
  }
  b.pending.clear();
  return counts;
}

StatusOr<std::optional<Instant>> MemoryStore::NextWakeup() {
  while (!heap_.empty()) {
    const HeapEntry& top = heap_.top();
    if (IsLive(SlotRef{top.slot, top.generation}) &&
        touchpoints_[top.slot].next_at == top.next_at) {
      return std::optional<Instant>(top.next_at);
    }
    heap_.pop();  // stale: cancelled, suppressed or rescheduled since pushed
  }
  return std::optional<Instant>();
}

StatusOr<std::vector<DueTouchpoint>> MemoryStore::TakeDue(Instant now, std::size_t max) {
  std::vector<DueTouchpoint> due;
  while (!heap_.empty() && due.size() < max) {
    const HeapEntry top = heap_.top();
    const bool live =
        IsLive(SlotRef{top.slot, top.generation}) && touchpoints_[top.slot].next_at == top.next_at;
    if (live && top.next_at > now) break;
    heap_.pop();
    if (live) due.push_back(DueTouchpoint{top.slot, View(top.slot)});
  }
  return due;
}

StatusOr<std::vector<FiredTouchpoint>> MemoryStore::FiredBetween(const DueTouchpoint& due,
                                                                 Instant from, Instant to,
                                                                 bool sinks) {
  const TouchpointRec& t = touchpoints_[static_cast<std::uint32_t>(due.handle)];
  std::vector<FiredTouchpoint> out;
  for (const RecentFire& f : buyers_[purchases_[t.purchase].buyer].recent_fires) {
    if (f.at < from || f.at >= to) continue;
    FiredTouchpoint& fired = out.emplace_back(FiredTouchpoint{f.at});
    if (sinks) fired.sinks = sinks_of_[f.cadence][f.step];
  }
  return out;
}

Status MemoryStore::ApplyOutcomes(std::span<const DueTouchpoint> due,
                                  std::span<const FiringOutcome> outcomes) {
  if (due.size() != outcomes.size()) return Status::Error("one outcome per due touchpoint");
  for (std::size_t i = 0; i < due.size(); ++i) {
    const auto slot = static_cast<std::uint32_t>(due[i].handle);
    const FiringOutcome& o = outcomes[i];
    TouchpointRec& t = touchpoints_[slot];
    switch (o.kind) {
      case FiringOutcome::Kind::kFired: {
        if (keep_fires_ > Millis(0)) {
          auto& fires = buyers_[purchases_[t.purchase].buyer].recent_fires;
          std::erase_if(fires, [&](const RecentFire& f) { return f.at < o.at - keep_fires_; });
          fires.push_back({o.at, t.cadence, t.step});
        }
        if (t.tracked != 0) {
          buyers_[purchases_[t.purchase].buyer].tracked[t.tracked - 1].fire_at = o.at;
        }
        Finish(slot, TouchpointState::kFired, o.at, {});
        break;
      }
      case FiringOutcome::Kind::kDeferred:
        if (o.capped && observer_ != nullptr) observer_->OnCapDeferred(View(slot), o.at, o.reason);
        t.next_at = o.at;
        heap_.push(EntryOf(slot));
        break;
      case FiringOutcome::Kind::kSkipped:
        Finish(slot, TouchpointState::kSkipped, std::nullopt, o.reason);
        break;
    }
  }
  return Status::Ok();
}

void MemoryStore::ForEachPending(const std::function<void(const TouchpointView&)>& visit) const {
  std::vector<HeapEntry> live;
  for (std::uint32_t slot = 0; slot < touchpoints_.size(); ++slot) {
    const TouchpointRec& t = touchpoints_[slot];
    // Released slots are never kPending: Finish() sets the final state first.
    if (t.state == TouchpointState::kPending && t.generation != 0) {
      live.push_back(EntryOf(slot));
    }
  }
  // operator< orders "fires later" first; sort so the earliest comes first.
  std::sort(live.begin(), live.end(), [](const HeapEntry& a, const HeapEntry& b) { return b < a; });
  for (const HeapEntry& e : live) visit(View(e.slot));
}

}  // namespace tp
