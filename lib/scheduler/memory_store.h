// ScheduleStore in memory, for `simulate` and tests.
//
// Memory is bounded by the live state, not by history: a touchpoint's record
// is released as soon as it is final (the observer has seen it), a purchase's
// once none of its touchpoints is pending. What stays per purchase is its
// order id with a 64-bit fingerprint of its content (for idempotency), and
// per buyer the (time, product, amount) history the planner needs. With
// TrackTouchpoints() (simulate with events, or its report) each touchpoint's
// 40-byte record stays too, and every event: history, then, by design.
// The schedule is in memory_store.cc, the events and crediting in
// memory_engagement.cc. Not thread-safe.
#pragma once

#include <array>
#include <functional>
#include <memory>
#include <queue>
#include <string>
#include <unordered_map>
#include <vector>

#include "config/rules.h"
#include "scheduler/store.h"

namespace tp {

class MemoryStore final : public ScheduleStore {
 private:
  // Lets maps keyed by std::string be searched with a string_view.
  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  template <typename V>
  using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;

 public:
  // Sees every touchpoint once, when it reaches a final state (born-final ones
  // included), in the order that happens. The view is valid during the call.
  class Observer {
   public:
    virtual ~Observer() = default;
    virtual void OnFinal(const TouchpointView& touchpoint) = 0;
    // A frequency cap held the touchpoint back to `until` (its next_at is
    // still when it came due); it stays pending.
    virtual void OnCapDeferred(const TouchpointView& /*touchpoint*/, Instant /*until*/,
                               std::string_view /*reason*/) {}
  };

  // `observer`, if any, must outlive *this.
  explicit MemoryStore(std::shared_ptr<const Rules> rules, Observer* observer = nullptr);

  StatusOr<PurchaseMatch> MatchPurchase(const Purchase& purchase, const Zone* zone) override;
  StatusOr<BuyerState> LoadBuyer(std::string_view buyer_id) override;
  Status AddPurchase(const Purchase& purchase, const Zone* zone, int tier,
                     std::span<const PlannedTouchpoint> touchpoints, Instant now) override;
  StatusOr<CadenceCounts> CancelEarlier(std::string_view buyer_id, Instant up_to,
                                        std::string_view except_order, Instant now,
                                        std::string_view reason) override;
  StatusOr<CadenceCounts> SetOptedOut(std::string_view buyer_id, bool opted_out,
                                      Instant now) override;
  StatusOr<std::optional<Instant>> NextWakeup() override;
  StatusOr<std::vector<DueTouchpoint>> TakeDue(Instant now, std::size_t max) override;
  StatusOr<std::vector<FiredTouchpoint>> FiredBetween(const DueTouchpoint& due, Instant from,
                                                      Instant to, bool sinks) override;
  Status ApplyOutcomes(std::span<const DueTouchpoint> due,
                       std::span<const FiringOutcome> outcomes) override;
  StatusOr<EventMatch> MatchEvent(const EngagementEvent& event) override;
  // Without TrackTouchpoints(), no touchpoint is found.
  StatusOr<BuyerTouchpoint> FindTouchpoint(std::string_view buyer_id,
                                           std::string_view touchpoint_id) override;
  StatusOr<BuyerTouchpoint> LastFiredBefore(std::string_view buyer_id, Instant at) override;
  StatusOr<bool> AddEvent(const EngagementEvent& event, std::uint64_t buyer, std::uint64_t credited,
                          Instant now) override;
  StatusOr<CadenceCounts> CancelCadences(std::string_view buyer_id,
                                         std::span<const std::string> cadences, Instant up_to,
                                         Instant now, std::string_view reason) override;
  StatusOr<std::vector<EngagementEvent>> FirstEventsSince(
      std::string_view buyer_id, Instant since, std::span<const std::string> types) override;
  StatusOr<std::optional<EngagementEvent>> FirstEngagement(const DueTouchpoint& due,
                                                           std::span<const std::string> types,
                                                           Instant until) override;

  // Keeps every touchpoint's id (a 64-bit digest) and fire time per buyer
  // from now on, so events can name them and be credited to them (about 40
  // bytes a touchpoint; simulate does it only when given events).
  void TrackTouchpoints() { track_ = true; }
  // A touchpoint id's key among its buyer's (its digest's first 64 bits),
  // or nullopt for no id of ours.
  static std::optional<std::uint64_t> TouchpointKey(std::string_view id);
  // The second half of the id's digest (0 for no id of ours).
  static std::uint64_t TouchpointRest(std::string_view id);
  // A buyer's index (a TouchpointRef's handle is the index << 32 | n), if
  // the buyer is known; indices run from 0 to buyer_count() - 1.
  std::optional<std::uint32_t> BuyerIndexOf(std::string_view buyer_id) const;
  std::uint32_t buyer_count() const { return static_cast<std::uint32_t>(buyers_.size()); }
  // With TrackTouchpoints(): the touchpoints of buyer `buyer` that fired,
  // in the order they were planned (as a store's row ids run), into `out`.
  struct Fired {
    std::uint64_t handle = 0;  // as a TouchpointRef's
    Instant fire_at;
    std::uint16_t cadence = 0, step = 0;  // indices into the rules
    const Zone* zone = nullptr;
  };
  void FiredOf(std::uint32_t buyer, std::vector<Fired>& out) const;

  // Visits every pending touchpoint in firing order.
  void ForEachPending(const std::function<void(const TouchpointView&)>& visit) const;
  std::size_t PendingCount() const { return pending_count_; }

 private:
  struct PurchaseRec {
    std::string order_id;
    std::uint32_t buyer = 0;
    std::int32_t product = 0;
    std::int32_t tier = 0;
    std::uint32_t live = 0;  // pending touchpoints
    const Zone* zone = nullptr;
    Instant purchased_at;
    Instant received_at;  // when AddPurchase() recorded it
  };
  struct TouchpointRec {
    std::array<char, 35> id;  // "tp_" + 32 hex digits, inline to save an allocation each
    std::uint32_t purchase = 0;
    std::uint32_t generation = 0;  // bumped when the slot is reused
    std::uint16_t cadence = 0;
    std::uint16_t step = 0;
    bool cancel_on_repurchase = false;
    TouchpointState state = TouchpointState::kPending;
    Instant due_at;
    Instant next_at;
    std::uint64_t seq = 0;      // arrival order, the last tie-breaker
    std::uint32_t tracked = 0;  // its BuyerRec::tracked index + 1; 0 if untracked
  };
  // A touchpoint as TrackTouchpoints() keeps it.
  struct Tracked {
    std::uint64_t key = 0;   // TouchpointKey() of its id: the first half of its digest
    std::uint64_t rest = 0;  // the second half
    const Zone* zone = nullptr;
    Instant fire_at = Instant::max();  // max: not fired
    std::uint16_t cadence = 0;
    std::uint16_t step = 0;
  };
  // An engagement event as the buyer's record keeps it.
  struct EventRec {
    Instant at;
    std::uint16_t type = 0;  // index into Rules::engagement_types
  };
  struct RecentFire {
    Instant at;
    std::uint16_t cadence = 0;  // indices into the rules
    std::uint16_t step = 0;
  };
  struct SlotRef {
    std::uint32_t slot;
    std::uint32_t generation;
  };
  struct BuyerRec {
    std::string id;
    bool opted_out = false;
    std::vector<PastPurchase> history;
    std::vector<SlotRef> pending;  // may hold stale refs; compacted as visited
    // The fires of the last keep_fires_: enough for FiredBetween, which
    // is asked only about the frequency caps' periods containing now (time
    // only moves forward here). None without caps.
    std::vector<RecentFire> recent_fires;
    std::vector<EventRec> events;  // by `at`, ties in arrival order
    std::vector<Tracked> tracked;
  };
  struct HeapEntry {
    Instant next_at;
    Instant due_at;
    std::uint16_t cadence;
    std::uint16_t step;
    std::uint32_t buyer;  // the touchpoints due at one instant by buyer, as the stores
    std::uint64_t seq;
    std::uint32_t slot;
    std::uint32_t generation;
    // std::priority_queue is a max-heap: "less" means "fires later".
    bool operator<(const HeapEntry& o) const;
  };
  // The touchpoint in `slot`'s place in firing order.
  HeapEntry EntryOf(std::uint32_t slot) const;

  std::uint32_t BuyerIndex(std::string_view buyer_id);
  bool IsLive(SlotRef ref) const;
  // The names (buyer, order, cadence, topic, tier, product) and zone.
  TouchpointView NamedView(const PurchaseRec& p, int cadence, int step) const;
  TouchpointView View(std::uint32_t slot) const;
  // Moves a pending touchpoint to a final state, tells the observer, releases it.
  void Finish(std::uint32_t slot, TouchpointState state, std::optional<Instant> fire_at,
              std::string_view reason);
  void ReleasePurchaseRef(std::uint32_t purchase);
  static std::optional<TouchpointRef> RefOf(std::uint32_t buyer, std::size_t index,
                                            const Tracked& t, const Rules& rules);

  std::shared_ptr<const Rules> rules_;
  Millis keep_fires_{0};  // how long recent_fires reaches back
  // [cadence][step]: where its touchpoints go (Rules::SinkList), for
  // FiredBetween; the rules never change under this store.
  std::vector<std::vector<std::string>> sinks_of_;
  Observer* observer_;
  StringMap<std::uint64_t> orders_;  // order id -> content fingerprint
  std::vector<PurchaseRec> purchases_;
  std::vector<std::uint32_t> free_purchases_;
  std::vector<BuyerRec> buyers_;
  StringMap<std::uint32_t> buyer_index_;
  std::vector<TouchpointRec> touchpoints_;
  std::vector<std::uint32_t> free_touchpoints_;
  std::priority_queue<HeapEntry> heap_;
  StringMap<std::uint64_t> events_;  // event id -> content fingerprint
  bool track_ = false;
  std::size_t pending_count_ = 0;
  std::uint64_t next_seq_ = 0;
};

}  // namespace tp
