// `simulate --report`: what the replay did, kept compactly (numbers and
// indices, about 32 bytes a record, only what the grouping needs), then
// handed to the outcomes report (outcomes/outcomes.h) one buyer at a time,
// as the daemon's reader streams its file.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "config/rules.h"
#include "core/model.h"
#include "outcomes/outcomes.h"
#include "scheduler/store.h"

namespace tp {

class ReportCollector {
 public:
  ReportCollector(const Rules& rules, ReportBy by);

  void OnPurchase(const Purchase& purchase, int tier, const Zone* zone);
  // A touchpoint fired (`key`: MemoryStore::TouchpointKey of its id).
  void OnFired(const TouchpointView& touchpoint, std::uint64_t key);
  // An event recorded, credited to the touchpoint `credited_key` (0: none).
  void OnEvent(const EngagementEvent& event, std::uint64_t credited_key);

  // The report over everything collected.
  OutcomeReport Report(const ReportOptions& options) const;

 private:
  struct PurchaseRec {
    std::uint32_t buyer;
    std::uint16_t tier, product;
    float amount;
    std::int64_t at_ms, runout_ms;
    const Zone* zone;
  };
  struct FireRec {
    std::uint32_t buyer;
    std::uint16_t cadence, step;
    std::int64_t at_ms;
    std::uint64_t key;
    const Zone* zone;
  };
  struct EventRec {
    std::uint32_t buyer;
    bool trust;
    std::int64_t at_ms;
    std::uint64_t credited;
  };
  std::uint32_t Buyer(std::string_view id);

  const Rules& rules_;
  const bool fires_wanted_;
  std::unordered_map<std::string, std::uint32_t> buyers_;
  std::vector<PurchaseRec> purchases_;
  std::vector<FireRec> fires_;
  std::vector<EventRec> events_;
};

}  // namespace tp
