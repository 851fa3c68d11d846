// The frequency caps as the scheduler applies them while it decides one
// RunDue(): which caps a touchpoint counts against (by the sinks it goes
// to), the buyer-local periods they count in, and the buyer's fires in
// those periods, read from the store once per buyer per batch (again only
// if a touchpoint in another zone needs them from earlier) and kept with
// the batch's own fires (docs/config.md, "frequency_cap").
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
  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  // The caps a touchpoint that went to `sinks` (Rules::SinkList) counts
  // against: those naming no sinks, and those naming one of these.
  Mask MaskOfSinks(std::string_view sinks);
  // The caps a touchpoint of `step` of `cadence` counts against, by where
  // the rules in force send it (every cap for one they do not have).
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
  // Sink lists seen so far -> their mask (few: a routing per step).
  std::unordered_map<std::string, Mask, StringHash, std::equal_to<>> masks_;
  // With scoped caps: cadence name -> (step id, mask) for each step.
  std::unordered_map<std::string, std::vector<std::pair<std::string, Mask>>, StringHash,
                     std::equal_to<>>
      step_masks_;
  std::vector<std::pair<const Zone*, std::vector<Period>>> periods_;
  std::unordered_map<std::string_view, BuyerFires> buyers_;
};

}  // namespace tp
