// The frequency caps as the scheduler applies them while it decides one
// RunDue(): which caps a touchpoint counts against (by the sinks its step
// goes to), the buyer-local periods they count in, and the buyer's fires in
// those periods, read from the store once per buyer per batch and kept
// with the batch's own fires (docs/config.md, "frequency_cap").
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "config/rules.h"
#include "scheduler/store.h"

namespace tp {

class CapLedger {
 public:
  // `rules` and `store` must outlive *this; `now` is the instant decided at.
  CapLedger(const Rules& rules, ScheduleStore& store, Instant now);

  bool empty() const { return rules_.frequency_caps.empty(); }
  // Before each batch: the last batch's fires are in the store now, and
  // the views that keyed them are gone.
  void NewBatch() { buyers_.clear(); }
  // Why `due` may not fire now (the first cap it applies to that is full
  // for the current period), or nullopt.
  StatusOr<std::optional<std::string>> Check(const DueTouchpoint& due);
  // `due` fires now: it counts for the rest of the batch.
  void Count(const DueTouchpoint& due);

 private:
  using Mask = std::uint32_t;  // bit i: rules.frequency_caps[i]
  struct Fire {
    Instant at;
    Mask caps = 0;  // the caps it counts against
  };
  struct Period {
    Instant from, to;
  };
  struct BuyerFires {
    Instant from;              // the store was read from here on
    std::vector<Fire> stored;  // as the store had them
    std::vector<Fire> batch;   // this batch's, not in the store yet
  };
  // The caps a touchpoint of `step` of `cadence` counts against: those
  // without sinks, and those naming one of its step's sinks. A cadence or
  // step the rules no longer have counts against every cap.
  Mask MaskOf(std::string_view cadence, std::string_view step) const;
  // Each cap's period containing now in `zone`.
  const std::vector<Period>& PeriodsIn(const Zone* zone);
  // The buyer's fires, read from the store if this batch has not yet, or
  // not from as early as `from`.
  StatusOr<BuyerFires*> FiresOf(const DueTouchpoint& due, Instant from, Instant to);

  const Rules& rules_;
  ScheduleStore& store_;
  const Instant now_;
  const Mask all_;
  bool scoped_ = false;  // some cap names sinks
  // Cadence name -> (step id, mask) for each of its steps.
  std::unordered_map<std::string, std::vector<std::pair<std::string, Mask>>> masks_;
  std::vector<std::pair<const Zone*, std::vector<Period>>> periods_;
  std::unordered_map<std::string_view, BuyerFires> buyers_;
};

}  // namespace tp
