// `simulate --report`: what the replay did, kept compactly (numbers and
// indices, about 32 bytes a record, only what the grouping needs), then
// handed to the outcomes report (outcomes/outcomes.h) one buyer at a time,
// as the daemon's reader streams its file. Buyers are the store's (by its
// indices), and the fires are those it tracks (MemoryStore::
// TrackTouchpoints(), which the replay must turn on), not kept twice.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "config/rules.h"
#include "core/model.h"
#include "outcomes/outcomes.h"
#include "scheduler/memory_store.h"

namespace tp {

class ReportCollector {
 public:
  // `store` (which must outlive *this) tracks its touchpoints. Report()
  // may then group by any of `by`.
  ReportCollector(const Rules& rules, std::initializer_list<ReportBy> by, const MemoryStore& store);

  // A purchase the store recorded.
  void OnPurchase(const Purchase& purchase, int tier, const Zone* zone);
  // An event recorded, credited to the touchpoint `credited` (a handle; 0:
  // none).
  void OnEvent(const EngagementEvent& event, std::uint64_t credited);

  // The report over everything collected.
  OutcomeReport Report(const ReportOptions& options) const;
  // By topic, but each fire keyed by its step ("cadence/step") instead:
  // what each step achieved (simulate --html; the daemon's report has no
  // such grouping).
  OutcomeReport ReportBySteps(ReportOptions options) const;

 private:
  struct PurchaseRec {
    std::uint32_t buyer;
    std::uint16_t tier, product;
    float amount;
    std::int64_t at_ms, runout_ms;
    const Zone* zone;
  };
  struct EventRec {
    std::uint32_t buyer;
    bool trust;
    std::int64_t at_ms;
    std::uint64_t credited;
  };
  const Rules& rules_;
  bool purchases_wanted_ = false;  // by tier or product
  bool fires_wanted_ = false;      // by cadence or topic
  OutcomeReport Collect(const ReportOptions& options, bool by_step) const;

  const MemoryStore& store_;
  std::vector<PurchaseRec> purchases_;
  std::vector<EventRec> events_;
};

}  // namespace tp
