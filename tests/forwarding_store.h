// A ScheduleStore that hands every call to another: a test overrides what
// it watches or breaks (the conformance suite's Recorder, FireLoop's
// failing store) and leaves the rest to a real store.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "scheduler/store.h"

namespace tp::testing {

class ForwardingStore : public ScheduleStore {
 public:
  explicit ForwardingStore(ScheduleStore& inner) : inner_(inner) {}

  Status PrepareIngest(std::span<const Purchase> p) override { return inner_.PrepareIngest(p); }
  StatusOr<PurchaseMatch> MatchPurchase(const Purchase& p, const Zone* z) override {
    return inner_.MatchPurchase(p, z);
  }
  StatusOr<BuyerState> LoadBuyer(std::string_view b) override { return inner_.LoadBuyer(b); }
  Status AddPurchase(const Purchase& p, const Zone* z, int tier,
                     std::span<const PlannedTouchpoint> t, Instant now) override {
    return inner_.AddPurchase(p, z, tier, t, now);
  }
  StatusOr<CadenceCounts> CancelEarlier(std::string_view b, Instant up_to, std::string_view o,
                                        Instant now, std::string_view r) override {
    return inner_.CancelEarlier(b, up_to, o, now, r);
  }
  StatusOr<CadenceCounts> SetOptedOut(std::string_view b, bool o, Instant now) override {
    return inner_.SetOptedOut(b, o, now);
  }
  StatusOr<EventMatch> MatchEvent(const EngagementEvent& e) override {
    return inner_.MatchEvent(e);
  }
  StatusOr<BuyerTouchpoint> FindTouchpoint(std::string_view b, std::string_view t) override {
    return inner_.FindTouchpoint(b, t);
  }
  StatusOr<BuyerTouchpoint> LastFiredBefore(std::string_view b, Instant at) override {
    return inner_.LastFiredBefore(b, at);
  }
  StatusOr<bool> AddEvent(const EngagementEvent& e, std::uint64_t b, std::uint64_t c,
                          Instant now) override {
    return inner_.AddEvent(e, b, c, now);
  }
  StatusOr<CadenceCounts> CancelCadences(std::string_view b, std::span<const std::string> c,
                                         Instant up_to, Instant now, std::string_view r) override {
    return inner_.CancelCadences(b, c, up_to, now, r);
  }
  StatusOr<std::vector<EngagementEvent>> FirstEventsSince(std::string_view b, Instant since,
                                                          std::span<const std::string> t) override {
    return inner_.FirstEventsSince(b, since, t);
  }
  StatusOr<std::optional<EngagementEvent>> FirstEngagement(const DueTouchpoint& d,
                                                           std::span<const std::string> t,
                                                           Instant until) override {
    return inner_.FirstEngagement(d, t, until);
  }
  StatusOr<std::optional<Instant>> NextWakeup() override { return inner_.NextWakeup(); }
  std::int64_t HeldForOrder() const override { return inner_.HeldForOrder(); }
  StatusOr<std::vector<DueTouchpoint>> TakeDue(Instant now, std::size_t max) override {
    return inner_.TakeDue(now, max);
  }
  StatusOr<std::vector<FiredTouchpoint>> FiredBetween(const DueTouchpoint& d, Instant from,
                                                      Instant to, bool sinks) override {
    return inner_.FiredBetween(d, from, to, sinks);
  }
  Status ApplyOutcomes(std::span<const DueTouchpoint> due,
                       std::span<const FiringOutcome> outcomes) override {
    return inner_.ApplyOutcomes(due, outcomes);
  }

 private:
  ScheduleStore& inner_;
};

}  // namespace tp::testing
